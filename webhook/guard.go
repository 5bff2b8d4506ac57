// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/guard"
	"github.com/keyward-io/keyward/internal/promreg"
	"github.com/keyward-io/keyward/scrubber"
)

// DefaultGuardLookupTimeout bounds all lookups (cache reads, the live
// Secret read and the custody metadata read) of one admission request.
const DefaultGuardLookupTimeout = 2 * time.Second

// Values of the decision label of keyward_guard_decisions_total. The set is
// closed: the three outcomes of guard.Decide, plus fail_open.
const (
	GuardDecisionPass          = "pass"
	GuardDecisionPassRewritten = "pass_rewritten"
	GuardDecisionVeto          = "veto"
	// GuardDecisionFailOpen counts requests allowed unmodified because the
	// guard could not decide (custody store unreachable or slow, cache not
	// synced, undecodable object). Worst case: one extra issuance.
	GuardDecisionFailOpen = "fail_open"
)

// CertificateGuard is the mutating admission handler for UPDATE of
// certificates/status (served at GuardPath). It stops the re-issue loop that
// an emptied tls.key causes in cert-manager; the decision is guard.Decide
// and what it reads is guard.Loader's policy, both documented in
// docs/guard.md. The handler only decodes, loads and decides through the
// Loader, and encodes the answer.
//
// Contract:
//   - Only updates that guard.Candidate selects are looked at (the
//     webhook's matchConditions, GuardMatchConditions, already filter the
//     rest); anything else is allowed unmodified.
//   - All lookups of one request share a timeout (default 2 s). Reads come
//     from an informer cache and the custody store's metadata (cached); the
//     one API call is the Loader's GET of the target Secret from the
//     apiserver's watch cache before a veto (WithGuardLiveReader).
//   - A veto or rewrite is returned as a JSON patch that replaces /status
//     with the status the decision computed and, when that status is the
//     stored one, also restores the stored metadata.managedFields, so that a
//     vetoed update stores nothing at all (see guard.Decision.Unchanged).
//   - Any internal error allows the update unmodified (fail open) and is
//     counted as decision="fail_open": the worst case is one extra issuance,
//     never a lost key.
//
// Metrics (on the injected registerer):
//   - keyward_guard_decisions_total{decision}: pass, pass_rewritten, veto, fail_open.
//   - keyward_guard_custody_lookups_total{result} (the Loader's).
//   - keyward_guard_admission_duration_seconds: time to answer a request.
type CertificateGuard struct {
	loader  *guard.Loader
	clock   clock.PassiveClock
	log     logr.Logger
	timeout time.Duration
	events  events.EventRecorder
	kept    keptEvents

	decisions *prometheus.CounterVec
	duration  prometheus.Histogram
}

var _ admission.Handler = (*CertificateGuard)(nil)

// guardConfig collects GuardOptions.
type guardConfig struct {
	timeout    time.Duration
	loader     []guard.LoaderOption
	sdsSecrets client.Reader
	events     events.EventRecorder
}

// GuardOption adjusts a CertificateGuard built by NewCertificateGuard.
type GuardOption func(*guardConfig)

// WithGuardLookupTimeout sets the bound on all lookups of one request
// (default DefaultGuardLookupTimeout). It should stay well below the
// webhook's timeoutSeconds so the guard answers (fail open) before the
// apiserver gives up on it.
func WithGuardLookupTimeout(d time.Duration) GuardOption {
	return func(c *guardConfig) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithGuardCacheTTL sets how long custody metadata answers are reused
// (guard.WithCacheTTL; default guard.DefaultCacheTTL).
func WithGuardCacheTTL(d time.Duration) GuardOption {
	return func(c *guardConfig) { c.loader = append(c.loader, guard.WithCacheTTL(d)) }
}

// WithGuardLiveReader makes the guard re-read the target Secret with r (an
// uncached API reader) before it vetoes (guard.WithLiveReader).
func WithGuardLiveReader(r client.Reader) GuardOption {
	return func(c *guardConfig) { c.loader = append(c.loader, guard.WithLiveReader(r)) }
}

// WithGuardSDSSecrets makes the guard also read target Secrets of type
// custody.SecretTypeSDS from r (the cache scrubber.NewSDSSecretCache makes),
// through a scrubber.SecretReader.
func WithGuardSDSSecrets(r client.Reader) GuardOption {
	return func(c *guardConfig) { c.sdsSecrets = r }
}

// WithGuardEvents makes the guard record a Normal event on the Certificate
// for each decision guard.EventFor names (a veto, a genuine reason let
// through, an issuance completed in custody), so `kubectl describe` and
// `keyward status` show why cert-manager's write was changed or not.
func WithGuardEvents(r events.EventRecorder) GuardOption {
	return func(c *guardConfig) { c.events = r }
}

// WithGuardOwnerIndex makes the guard list a Certificate's requests through
// guard.CertificateRequestOwnerIndex, which the reader's cache must have.
func WithGuardOwnerIndex() GuardOption {
	return func(c *guardConfig) { c.loader = append(c.loader, guard.WithOwnerIndex()) }
}

// NewCertificateGuard returns the certificates/status guard over a
// guard.Loader built from reader (an informer cache whose scheme knows
// cert-manager's types), store (asked for Metadata only), clk and reg
// (collectors already registered there are reused; nil leaves them
// unregistered). log is used when the request context carries no logger.
// SetupCustody builds and registers it for production.
func NewCertificateGuard(reader client.Reader, store custody.Store, clk clock.PassiveClock, reg prometheus.Registerer, log logr.Logger, opts ...GuardOption) (*CertificateGuard, error) {
	cfg := guardConfig{timeout: DefaultGuardLookupTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if cfg.sdsSecrets != nil {
		reader = scrubber.SecretReader{Main: reader, SDS: cfg.sdsSecrets}
	}
	loader, err := guard.NewLoader(reader, store, clk, reg, log, cfg.loader...)
	if err != nil {
		return nil, err
	}
	g := &CertificateGuard{loader: loader, clock: clk, log: log, timeout: cfg.timeout, events: cfg.events}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_guard_decisions_total",
		Help: "Custody guard answers to certificates/status updates, by decision (pass, pass_rewritten, veto, fail_open).",
	}, []string{"decision"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "keyward_guard_admission_duration_seconds",
		Help:    "Time the custody guard took to answer an admission request.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	})
	if g.decisions, err = promreg.Register(reg, decisions); err != nil {
		return nil, err
	}
	if g.duration, err = promreg.Register(reg, duration); err != nil {
		return nil, err
	}
	for _, d := range []string{GuardDecisionPass, GuardDecisionPassRewritten, GuardDecisionVeto, GuardDecisionFailOpen} {
		g.decisions.WithLabelValues(d)
	}
	return g, nil
}

// Prime records what a confirmed custody write put in the store, so that
// the first decision on the resulting placeholder needs no Vault read (see
// guard.Loader.Prime). Wire it to the Scrubber's OnCustodyWrite.
func (g *CertificateGuard) Prime(placeholder *corev1.Secret, meta custody.Metadata) {
	g.loader.Prime(placeholder, meta)
}

// Handle implements admission.Handler.
func (g *CertificateGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := g.clock.Now()
	resp, decision := g.handle(ctx, req)
	g.decisions.WithLabelValues(decision).Inc()
	g.duration.Observe(g.clock.Since(start).Seconds())
	return resp
}

func (g *CertificateGuard) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	if req.Kind.Group != cmapi.SchemeGroupVersion.Group || req.Kind.Kind != cmapi.CertificateKind ||
		req.Operation != admissionv1.Update || req.SubResource != "status" {
		return admission.Allowed("not a Certificate status update"), GuardDecisionPass
	}
	log := g.log
	if l, err := logr.FromContext(ctx); err == nil {
		log = l
	}
	log = log.WithValues("certificate", req.Namespace+"/"+req.Name)

	var oldCrt, newCrt cmapi.Certificate
	if err := json.Unmarshal(req.Object.Raw, &newCrt); err != nil {
		return g.failOpen(log, fmt.Errorf("decoding Certificate %s/%s: %w", req.Namespace, req.Name, err))
	}
	if err := json.Unmarshal(req.OldObject.Raw, &oldCrt); err != nil {
		return g.failOpen(log, fmt.Errorf("decoding the stored Certificate %s/%s: %w", req.Namespace, req.Name, err))
	}
	if newCrt.Namespace == "" {
		newCrt.Namespace = req.Namespace
	}
	if !guard.Candidate(&oldCrt, &newCrt) {
		return admission.Allowed("no redaction-sensitive transition"), GuardDecisionPass
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	d, err := g.loader.Decide(ctx, &oldCrt, &newCrt)
	if err != nil {
		return g.failOpen(log, err)
	}
	log.V(1).Info("custody guard decision", "decision", d.Outcome.String(), "reason", d.Reason, "message", d.Message)
	g.recordDecision(req, &newCrt, d)
	if d.Outcome == guard.Pass {
		return admission.Allowed(d.Reason), GuardDecisionPass
	}
	return g.patch(log, &oldCrt, &newCrt, d)
}

// patch encodes a veto or rewrite as a JSON patch of the status.
func (g *CertificateGuard) patch(log logr.Logger, oldCrt, newCrt *cmapi.Certificate, d guard.Decision) (admission.Response, string) {
	ops := []guardPatchOp{{Op: "add", Path: "/status", Value: d.Status}}
	if d.Unchanged {
		// The apiserver has already recorded the requester as owner of the
		// fields it tried to change; keep the stored ownership so that the
		// write is a true no-op and no watch event wakes the controllers.
		ops = append(ops, guardPatchOp{Op: "add", Path: "/metadata/managedFields", Value: oldCrt.ManagedFields})
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return g.failOpen(log, fmt.Errorf("encoding status patch for Certificate %s/%s: %w", newCrt.Namespace, newCrt.Name, err))
	}
	patchType := admissionv1.PatchTypeJSONPatch
	resp := admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed:   true,
		Patch:     patch,
		PatchType: &patchType,
		Result:    &metav1.Status{Code: 200, Message: d.Reason},
	}}
	if d.Outcome == guard.Veto {
		return resp.WithWarnings(fmt.Sprintf("keyward: Certificate %s/%s: status change dropped, the private key of Secret %q is held in Vault (%s)",
			newCrt.Namespace, newCrt.Name, newCrt.Spec.SecretName, d.Message)), GuardDecisionVeto
	}
	return resp.WithWarnings(fmt.Sprintf("keyward: Certificate %s/%s: %s", newCrt.Namespace, newCrt.Name, d.Message)), GuardDecisionPassRewritten
}

// recordDecision records the decision as an event on the Certificate
// (not for a dry run, which stores nothing). The recorder is asynchronous
// (it queues the event and writes it from its own goroutine, aggregating
// repeats into a series), so this adds no API call to the admission path.
// A veto is recorded once per Certificate and revision: cert-manager's
// controllers each look again after every issuance and are vetoed alike,
// and recording each repeat would cost an event write (the series update)
// per Certificate for nothing the first event does not say.
func (g *CertificateGuard) recordDecision(req admission.Request, crt *cmapi.Certificate, d guard.Decision) {
	if g.events == nil || (req.DryRun != nil && *req.DryRun) {
		return
	}
	reason, note, ok := guard.EventFor(d)
	if !ok || (d.Outcome == guard.Veto && !g.kept.first(crt)) {
		return
	}
	g.events.Eventf(crt, nil, corev1.EventTypeNormal, reason, "Guard", "%s", note)
}

// keptEventsLimit bounds keptEvents: past it the memory of recorded vetoes
// starts over (at worst one more event per Certificate).
const keptEventsLimit = 50000

// keptEvents remembers, per Certificate (namespace, name and UID), the
// revision whose veto was recorded.
type keptEvents struct {
	mu   sync.Mutex
	seen map[types.NamespacedName]keptRevision
}

type keptRevision struct {
	uid      types.UID
	revision int
}

// first reports whether crt's current revision has no recorded veto yet,
// and remembers it.
func (k *keptEvents) first(crt *cmapi.Certificate) bool {
	rev := 0
	if crt.Status.Revision != nil {
		rev = *crt.Status.Revision
	}
	key, now := types.NamespacedName{Namespace: crt.Namespace, Name: crt.Name}, keptRevision{crt.UID, rev}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen == nil || len(k.seen) >= keptEventsLimit {
		k.seen = map[types.NamespacedName]keptRevision{}
	}
	if k.seen[key] == now {
		return false
	}
	k.seen[key] = now
	return true
}

// guardPatchOp is one RFC 6902 operation.
type guardPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

func (g *CertificateGuard) failOpen(log logr.Logger, err error) (admission.Response, string) {
	log.Error(err, "custody guard could not decide; allowing the status update unmodified (fail open)")
	return admission.Allowed("keyward custody guard could not decide; allowed unmodified"), GuardDecisionFailOpen
}
