// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/guard"
	"github.com/keyward-io/keyward/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Defaults for the custody guard.
const (
	// DefaultGuardLookupTimeout bounds all lookups (cache reads and the
	// custody metadata read) of one admission request.
	DefaultGuardLookupTimeout = 2 * time.Second
	// DefaultGuardCacheTTL is how long a custody metadata answer is reused for
	// the same Secret, custody version, key fingerprint and serial.
	DefaultGuardCacheTTL = 30 * time.Second
	// DefaultGuardCacheSize bounds the number of cached custody answers.
	DefaultGuardCacheSize = 10000
)

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

// Values of the result label of keyward_guard_custody_lookups_total.
const (
	GuardLookupCacheHit = "cache_hit"
	GuardLookupStore    = "store"
	GuardLookupError    = "error"
	// GuardLookupStale: Vault did not answer and an expired answer for the
	// same record (version, key, serial) was used; see GuardStaleMax.
	GuardLookupStale = "stale"
	// GuardLookupPrimed counts answers put in the cache by the scrub
	// webhook's confirmed writes (Prime), not by a lookup.
	GuardLookupPrimed = "primed"
)

// CertificateGuard is the mutating admission handler for UPDATE of
// certificates/status (served at GuardPath). It stops the re-issue loop that
// an emptied tls.key causes in cert-manager; the decision itself is
// guard.Decide, documented in docs/guard.md.
//
// Contract:
//   - Only updates that guard.Candidate selects are looked at (the
//     webhook's matchConditions, GuardMatchConditions, already filter the
//     rest); anything else is allowed unmodified.
//   - All reads come from the injected client.Reader, which must be an
//     informer cache (no live API calls on the admission path), and from the
//     custody store's Metadata, cached per Secret and what it says about its
//     record (custody version, key fingerprint, serial) for a short TTL so
//     that steady state makes no Vault calls.
//     All lookups of one request share a timeout (default 2 s).
//   - A veto or rewrite is returned as a JSON patch that replaces /status
//     with the status guard.Decide computed and, when that status is the
//     stored one, also restores the stored metadata.managedFields, so that a
//     vetoed update stores nothing at all (see guard.Decision.Unchanged).
//   - Any internal error allows the update unmodified (fail open) and is
//     counted as decision="fail_open": the worst case is one extra issuance,
//     never a lost key.
//
// Metrics (on the injected registerer):
//   - keyward_guard_decisions_total{decision}: pass, pass_rewritten, veto, fail_open.
//   - keyward_guard_custody_lookups_total{result}: cache_hit, store, error.
//   - keyward_guard_admission_duration_seconds: time to answer a request.
type CertificateGuard struct {
	reader    client.Reader
	store     custody.Store
	clock     clock.PassiveClock
	log       logr.Logger
	timeout   time.Duration
	ttl       time.Duration
	cacheSize int

	decisions *prometheus.CounterVec
	lookups   *prometheus.CounterVec
	duration  prometheus.Histogram

	// ownerIndex: list requests through CertificateRequestOwnerIndex.
	ownerIndex bool
	// live, when set, re-reads the Secret from the API before a veto.
	live client.Reader

	mu    sync.Mutex
	cache map[guardCacheKey]guardCacheEntry
}

var _ admission.Handler = (*CertificateGuard)(nil)

// GuardOption adjusts a CertificateGuard built by NewCertificateGuard.
type GuardOption func(*CertificateGuard)

// WithGuardLookupTimeout sets the bound on all lookups of one request
// (default DefaultGuardLookupTimeout). It should stay well below the
// webhook's timeoutSeconds so the guard answers (fail open) before the
// apiserver gives up on it.
func WithGuardLookupTimeout(d time.Duration) GuardOption {
	return func(g *CertificateGuard) {
		if d > 0 {
			g.timeout = d
		}
	}
}

// WithGuardCacheTTL sets how long custody metadata answers are reused
// (default DefaultGuardCacheTTL). Zero or negative disables the cache.
func WithGuardCacheTTL(d time.Duration) GuardOption {
	return func(g *CertificateGuard) { g.ttl = d }
}

// CertificateRequestOwnerIndex is the cache index of CertificateRequests by
// the UID of the Certificate that controls them (see
// IndexCertificateRequestOwner).
const CertificateRequestOwnerIndex = "keyward.io/controller-uid"

// IndexCertificateRequestOwner adds CertificateRequestOwnerIndex to the
// cache behind indexer (mgr.GetFieldIndexer()). Call it before the manager
// starts and pass WithGuardOwnerIndex to the guard: its lookup of a
// Certificate's requests then touches that Certificate's requests only,
// not every request in the namespace.
func IndexCertificateRequestOwner(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &cmapi.CertificateRequest{}, CertificateRequestOwnerIndex, certificateRequestController); err != nil {
		return fmt.Errorf("indexing certificaterequests by controller for the custody guard: %w", err)
	}
	return nil
}

// certificateRequestController is the index function of
// CertificateRequestOwnerIndex: the UID of the controlling Certificate.
func certificateRequestController(o client.Object) []string {
	if ref := metav1.GetControllerOfNoCopy(o); ref != nil && ref.Kind == cmapi.CertificateKind {
		return []string{string(ref.UID)}
	}
	return nil
}

// WithGuardLiveReader makes the guard re-read the target Secret with r (an
// uncached API reader) before it vetoes, so a Secret that changed since the
// cache saw it (released by the custody audit, say) is decided on as it is.
func WithGuardLiveReader(r client.Reader) GuardOption {
	return func(g *CertificateGuard) { g.live = r }
}

// WithGuardOwnerIndex makes the guard list a Certificate's requests through
// CertificateRequestOwnerIndex, which the reader's cache must have.
func WithGuardOwnerIndex() GuardOption {
	return func(g *CertificateGuard) { g.ownerIndex = true }
}

// NewCertificateGuard returns the certificates/status guard.
//
//   - reader must be backed by an informer cache (mgr.GetCache()) whose
//     scheme knows cert-manager's types; it is used for the target Secret and
//     the Certificate's CertificateRequests.
//   - store is only asked for Metadata: the guard's Vault policy needs read
//     access to the KV v2 metadata path, never to the data path.
//   - clk drives the metadata cache and the decision time.
//   - reg receives the metrics (controller-runtime's metrics.Registry in
//     production); collectors already registered there are reused; nil
//     leaves them unregistered.
//   - log is used when the request context carries no logger.
//
// Register it with mgr.GetWebhookServer().Register(GuardPath,
// &webhook.Admission{Handler: g}), or use SetupCertificateGuard.
func NewCertificateGuard(reader client.Reader, store custody.Store, clk clock.PassiveClock, reg prometheus.Registerer, log logr.Logger, opts ...GuardOption) (*CertificateGuard, error) {
	if reader == nil || store == nil {
		return nil, errors.New("certificate guard needs a cache reader and a custody store")
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	g := &CertificateGuard{
		reader:    reader,
		store:     store,
		clock:     clk,
		log:       log,
		timeout:   DefaultGuardLookupTimeout,
		ttl:       DefaultGuardCacheTTL,
		cacheSize: DefaultGuardCacheSize,
		cache:     map[guardCacheKey]guardCacheEntry{},
	}
	for _, o := range opts {
		o(g)
	}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_guard_decisions_total",
		Help: "Custody guard answers to certificates/status updates, by decision (pass, pass_rewritten, veto, fail_open).",
	}, []string{"decision"})
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_guard_custody_lookups_total",
		Help: "Custody metadata lookups by the guard, by result (cache_hit, store, error, stale), and answers primed by the scrub webhook's writes (primed).",
	}, []string{"result"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "keyward_guard_admission_duration_seconds",
		Help:    "Time the custody guard took to answer an admission request.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	})
	var err error
	if g.decisions, err = promreg.Register(reg, decisions); err != nil {
		return nil, err
	}
	if g.lookups, err = promreg.Register(reg, lookups); err != nil {
		return nil, err
	}
	if g.duration, err = promreg.Register(reg, duration); err != nil {
		return nil, err
	}
	for _, d := range []string{GuardDecisionPass, GuardDecisionPassRewritten, GuardDecisionVeto, GuardDecisionFailOpen} {
		g.decisions.WithLabelValues(d)
	}
	for _, r := range []string{GuardLookupCacheHit, GuardLookupStore, GuardLookupError, GuardLookupStale, GuardLookupPrimed} {
		g.lookups.WithLabelValues(r)
	}
	return g, nil
}

// SetupCertificateGuard builds the guard on mgr's informer cache with metrics
// on controller-runtime's registry, starts the Secret and
// CertificateRequest informers without waiting (so the first request does
// not pay for the initial list), and registers the handler at GuardPath on
// mgr's webhook server. mgr's scheme must include cert-manager's types.
func SetupCertificateGuard(mgr ctrl.Manager, store custody.Store, opts ...GuardOption) (*CertificateGuard, error) {
	if err := IndexCertificateRequestOwner(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	opts = append([]GuardOption{WithGuardOwnerIndex(), WithGuardLiveReader(mgr.GetAPIReader())}, opts...)
	for _, obj := range []client.Object{&corev1.Secret{}, &cmapi.CertificateRequest{}} {
		if _, err := mgr.GetCache().GetInformer(context.Background(), obj, cache.BlockUntilSynced(false)); err != nil {
			return nil, fmt.Errorf("starting informer for the custody guard (%T): %w", obj, err)
		}
	}
	g, err := NewCertificateGuard(mgr.GetCache(), store, clock.RealClock{}, crmetrics.Registry, mgr.GetLogger().WithName("certificate-guard"), opts...)
	if err != nil {
		return nil, err
	}
	mgr.GetWebhookServer().Register(GuardPath, &ctrlwebhook.Admission{Handler: g})
	return g, nil
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
	in := guard.Input{Old: &oldCrt, New: &newCrt, Now: g.clock.Now()}
	// decide looks up what the Secret s says is in custody and decides.
	decide := func(s *corev1.Secret) (guard.Decision, error) {
		in.Secret, in.Custody, in.CurrentRequest, in.Requests = s, nil, nil, nil
		// Only a Secret in custody needs the custody record and the request.
		if s != nil && s.Labels[custody.LabelCustody] == custody.LabelCustodyVault {
			var err error
			if in.Custody, err = g.custody(ctx, s); err != nil {
				return guard.Decision{}, err
			}
			if in.Custody != nil {
				if in.CurrentRequest, in.Requests, err = g.requests(ctx, &newCrt); err != nil {
					return guard.Decision{}, err
				}
			}
		}
		return guard.Decide(in), nil
	}
	cached, err := g.secret(ctx, g.reader, newCrt.Namespace, newCrt.Spec.SecretName)
	if err != nil {
		return g.failOpen(log, err)
	}
	d, err := decide(cached)
	if err != nil {
		return g.failOpen(log, err)
	}
	// The write that ends an issuance comes right after cert-manager wrote
	// the new Secret, which the cache may not hold yet: when the cached one
	// does not let the guard complete the issuance, look at the live one.
	completing := d.Outcome == guard.Pass && guard.CompletesIssuance(&oldCrt, &newCrt)
	if (d.Outcome == guard.Veto || completing) && g.live != nil {
		// A veto stops an issuance, and cert-manager will not ask again
		// until something changes: decide on the Secret as it is now, not
		// as the cache last saw it (the custody audit may just have
		// released it). One GET, on vetoes and on issuance ends the
		// cached Secret could not complete, served from the
		// apiserver's watch cache (resourceVersion "0": no etcd read). That
		// cache is upstream of every informer, cert-manager's included, so
		// it already holds any Secret change cert-manager is reacting to.
		live, err := g.secret(ctx, g.live, newCrt.Namespace, newCrt.Spec.SecretName,
			&client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
		if err != nil {
			return g.failOpen(log, err)
		}
		if (live == nil) != (cached == nil) || (live != nil && live.ResourceVersion != cached.ResourceVersion) {
			if d, err = decide(live); err != nil {
				return g.failOpen(log, err)
			}
		}
	}
	log.V(1).Info("custody guard decision", "decision", d.Outcome.String(), "reason", d.Reason, "message", d.Message)
	if d.Outcome == guard.Pass {
		return admission.Allowed(d.Reason), GuardDecisionPass
	}
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

// secret reads the Certificate's target Secret from the cache; nil if it does
// not exist.
func (g *CertificateGuard) secret(ctx context.Context, r client.Reader, namespace, name string, opts ...client.GetOption) (*corev1.Secret, error) {
	if name == "" {
		return nil, nil
	}
	var s corev1.Secret
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s, opts...); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading secret %s/%s from the cache: %w", namespace, name, err)
	}
	return &s, nil
}

// requests returns the CertificateRequests controlled by crt and, among
// them, cert-manager's "current" one: the request whose revision annotation
// is crt's status.revision. More than one current request is an error
// (cert-manager itself refuses to proceed then).
func (g *CertificateGuard) requests(ctx context.Context, crt *cmapi.Certificate) (*cmapi.CertificateRequest, []*cmapi.CertificateRequest, error) {
	// The requests are only read: skip the cache's deep copy.
	listOpts := []client.ListOption{client.InNamespace(crt.Namespace), client.UnsafeDisableDeepCopy}
	if g.ownerIndex {
		listOpts = append(listOpts, client.MatchingFields{CertificateRequestOwnerIndex: string(crt.UID)})
	}
	var list cmapi.CertificateRequestList
	if err := g.reader.List(ctx, &list, listOpts...); err != nil {
		return nil, nil, fmt.Errorf("listing certificaterequests in %s from the cache: %w", crt.Namespace, err)
	}
	var (
		current *cmapi.CertificateRequest
		owned   []*cmapi.CertificateRequest
	)
	for i := range list.Items {
		cr := &list.Items[i]
		if !metav1.IsControlledBy(cr, crt) {
			continue
		}
		owned = append(owned, cr)
		if crt.Status.Revision == nil || cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] != strconv.Itoa(*crt.Status.Revision) {
			continue
		}
		if current != nil {
			return nil, nil, fmt.Errorf("certificate %s/%s has several CertificateRequests for revision %d", crt.Namespace, crt.Name, *crt.Status.Revision)
		}
		current = cr
	}
	return current, owned, nil
}

// guardCacheKey identifies one custody answer by what the Secret says about
// its record. The custody version changes whenever Keyward writes a new
// record version; the key fingerprint and serial change with every issuance
// even when a deleted record is re-created and its versions restart at 1. So
// a new issuance never reuses a stale answer.
type guardCacheKey struct {
	namespace, name, version, keySHA256, serial string
}

// guardKeyFor is the cache key of the record a Secret's custody annotations
// name.
func guardKeyFor(s *corev1.Secret) guardCacheKey {
	return guardCacheKey{
		namespace: s.Namespace,
		name:      s.Name,
		version:   s.Annotations[custody.AnnotationVersion],
		keySHA256: s.Annotations[custody.AnnotationKeySHA256],
		serial:    s.Annotations[custody.AnnotationSerial],
	}
}

type guardCacheEntry struct {
	meta    *custody.Metadata // nil: no record
	expires time.Time
}

// custody returns the custody record's metadata for s (nil if there is
// none), from the TTL cache or the store.
func (g *CertificateGuard) custody(ctx context.Context, s *corev1.Secret) (*custody.Metadata, error) {
	key := guardKeyFor(s)
	now := g.clock.Now()
	if g.ttl > 0 {
		g.mu.Lock()
		e, ok := g.cache[key]
		g.mu.Unlock()
		if ok && now.Before(e.expires) {
			g.lookups.WithLabelValues(GuardLookupCacheHit).Inc()
			return guardCopyMeta(e.meta), nil
		}
	}
	meta, err := g.store.Metadata(ctx, s.Namespace, s.Name)
	// A torn record is usually a write between its data and its metadata:
	// ask again a few times within the lookup budget rather than decide on
	// half a record.
	for retry := 0; err == nil && meta.Torn && retry < guardTornRetries; retry++ {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reading custody metadata for secret %s/%s: record still being written: %w", s.Namespace, s.Name, ctx.Err())
		case <-time.After(guardTornBackoff):
		}
		meta, err = g.store.Metadata(ctx, s.Namespace, s.Name)
	}
	var found *custody.Metadata
	switch {
	case errors.Is(err, custody.ErrNotFound):
	case err != nil:
		if stale := g.staleAnswer(key, now); stale != nil {
			// Vault is down or slow: the record the Secret names was seen
			// within GuardStaleMax, and nothing but Keyward writes it, so
			// a valid certificate keeps its Ready condition meanwhile.
			g.lookups.WithLabelValues(GuardLookupStale).Inc()
			g.log.V(1).Info("custody metadata unavailable; deciding on the last answer for the same record",
				"secret", s.Namespace+"/"+s.Name, "version", stale.Version, "error", err.Error())
			return stale, nil
		}
		g.lookups.WithLabelValues(GuardLookupError).Inc()
		return nil, fmt.Errorf("reading custody metadata for secret %s/%s: %w", s.Namespace, s.Name, err)
	default:
		found = &meta
	}
	g.lookups.WithLabelValues(GuardLookupStore).Inc()
	// A record that stayed torn is not remembered: it changes as soon as the
	// interrupted write is redone.
	if g.ttl > 0 && (found == nil || !found.Torn) {
		g.remember(key, found, now)
	}
	return guardCopyMeta(found), nil
}

// Prime records what a confirmed custody write put in the store, so that
// the first guard decision on the resulting placeholder needs no Vault read.
// placeholder is the redacted Secret the write produced (its custody
// annotations name the record) and meta the record's metadata with its
// version. Wire it to the Scrubber that runs in the same process
// (scrubber.Scrubber.OnCustodyWrite): the entry is exactly what a store read
// right after the write returns, and expires like any other answer. A
// placeholder that is never persisted only leaves an unused entry.
func (g *CertificateGuard) Prime(placeholder *corev1.Secret, meta custody.Metadata) {
	if g.ttl <= 0 || placeholder == nil || meta.Torn {
		return
	}
	key := guardKeyFor(placeholder)
	if key.namespace == "" || key.name == "" || key.version != strconv.Itoa(meta.Version) {
		return
	}
	g.remember(key, guardCopyMeta(&meta), g.clock.Now())
	g.lookups.WithLabelValues(GuardLookupPrimed).Inc()
}

// A torn custody record is read again guardTornRetries times,
// guardTornBackoff apart (within the lookup timeout).
const (
	guardTornRetries = 4
	guardTornBackoff = 50 * time.Millisecond
)

// GuardStaleMax is how long after its expiry a cached custody answer may
// still be used when Vault does not answer.
const GuardStaleMax = time.Hour

// staleAnswer returns the cached answer for key if it names an existing
// record and expired less than GuardStaleMax ago.
func (g *CertificateGuard) staleAnswer(key guardCacheKey, now time.Time) *custody.Metadata {
	if g.ttl <= 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.cache[key]
	if !ok || e.meta == nil || now.Sub(e.expires) > GuardStaleMax {
		return nil
	}
	return guardCopyMeta(e.meta)
}

func (g *CertificateGuard) remember(key guardCacheKey, meta *custody.Metadata, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.cache) >= g.cacheSize {
		// Drop what cannot serve at all, then what only serves stale.
		for _, limit := range []time.Duration{GuardStaleMax, 0} {
			for k, e := range g.cache {
				if now.Sub(e.expires) >= limit {
					delete(g.cache, k)
				}
			}
			if len(g.cache) < g.cacheSize {
				break
			}
		}
		if len(g.cache) >= g.cacheSize {
			// Everything is fresh and the cache is full: start over rather
			// than grow. Costs one store read per Secret seen again.
			clear(g.cache)
		}
	}
	g.cache[key] = guardCacheEntry{meta: meta, expires: now.Add(g.ttl)}
}

func guardCopyMeta(m *custody.Metadata) *custody.Metadata {
	if m == nil {
		return nil
	}
	c := *m
	return &c
}
