// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/keyward-io/keyward/custody"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// DefaultAuditPeriod is the recommended WatcherOptions.AuditPeriod and the
// default of --custody-audit-period: how often the watcher checks that every
// placeholder's custody record still exists.
const DefaultAuditPeriod = 5 * time.Minute

// DefaultWatcherWorkers is the default WatcherOptions.Workers. In the
// benchmark's burst of 200 exposed keys on 2 CPUs (docs/benchmarks.md), p99
// exposure fell from 666 ms at 8 workers to 392 ms at 16 and 191 ms at 32;
// 64 gave no more (200 ms), the machine's CPUs being the limit by then.
const DefaultWatcherWorkers = 32

// WatcherControllerName names the watcher's controller (logs, metrics).
const WatcherControllerName = "keyward-custody-watcher"

// Event reasons the watcher emits.
const (
	ReasonKeyMovedToCustody          = "KeyMovedToCustody"
	ReasonCustodyRejected            = "CustodyRejected"
	ReasonCustodyRecordMissing       = "CustodyRecordMissing"
	ReasonCustodyRecordMismatch      = "CustodyRecordMismatch"
	ReasonRotationPolicyNeverIgnored = "RotationPolicyNeverIgnored"
	ReasonCustodyMarkersRestored     = "CustodyMarkersRestored"
)

// WatcherOptions configure SetupWatcher.
type WatcherOptions struct {
	// Scrubber, when set, is the Scrubber the watcher writes through, shared
	// with the scrub webhook (so every confirmed write reaches the same
	// observers); Store, WriteTimeout and Metrics are then ignored.
	Scrubber *Scrubber
	// Store is the custody store. Required unless Scrubber is set.
	Store custody.Store
	// Clock drives scrub times, exposure and the audit ticker. Default: real clock.
	Clock clock.WithTicker
	// NamespaceSelector selects custody namespaces by label.
	// Default: keyward.io/custody=enabled.
	NamespaceSelector labels.Selector
	// StrictDefault is strict mode for namespaces without the
	// keyward.io/redact-certificates label.
	StrictDefault bool
	// AuditPeriod is how often placeholders are checked against the store;
	// 0 disables the audit (DefaultAuditPeriod is the recommended value).
	AuditPeriod time.Duration
	// AuditReadRecords makes the audit read every placeholder's record
	// metadata (one store call per placeholder) even when the store can
	// list a namespace's records in one call. That also finds a record
	// whose current version was deleted or that describes another key than
	// its placeholder, which a listing cannot show.
	AuditReadRecords bool
	// WriteTimeout bounds a custody write. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Workers is how many Secrets are scrubbed concurrently (never the same
	// Secret twice at once). Default DefaultWatcherWorkers. A scrub waits on
	// Vault and the apiserver, so a burst of exposed keys drains in about
	// burst/Workers round trips instead of burst.
	Workers int
	// SecretCache, when set, is the cache the watcher reads Secrets from;
	// its Secrets must be configured with TLSSecretsByObject (pass the
	// manager's cache so that one copy of every TLS Secret is kept).
	// Default: a cache of the watcher's own.
	SecretCache cache.Cache
	// SDSSecretCache, when set, is the cache of custody.SecretTypeSDS
	// Secrets (SDSSecretsByObject; NewSDSSecretCache), shared with the
	// guard. Default: a cache of the watcher's own.
	SDSSecretCache cache.Cache
	// Metrics, when set, are used as is (share them with the webhook).
	// Otherwise metrics are created on Registry (default controller-runtime's
	// metrics.Registry).
	Metrics  *Metrics
	Registry prometheus.Registerer
}

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWatcher adds the custody watcher to mgr:
//   - a reconciler over custody Secrets (kubernetes.io/tls and
//     gateway.envoyproxy.io/sds, each type in a cache filtered by that type:
//     SecretReader) that scrubs any in-scope Secret still
//     holding key material, exactly as the webhook would, and records
//     keyward_key_exposure_seconds;
//   - a watch on cert-manager's next-private-key Secrets (label-filtered cache)
//     recording keyward_next_private_key_lifetime_seconds at deletion;
//   - a leader-elected audit that, every AuditPeriod, releases placeholders
//     whose custody record is missing so cert-manager re-issues them.
//
// mgr's scheme must know cert-manager's types (for the rotation policy
// warning) and mgr's client must be cache-backed (Namespaces, Certificates).
func SetupWatcher(mgr ctrl.Manager, opts WatcherOptions) error {
	w, err := newWatcher(mgr, opts)
	if err != nil {
		return err
	}
	tlsCache := opts.SecretCache
	if tlsCache == nil {
		if tlsCache, err = cache.New(mgr.GetConfig(), cache.Options{
			Scheme:   mgr.GetScheme(),
			Mapper:   mgr.GetRESTMapper(),
			ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: TLSSecretsByObject()},
		}); err != nil {
			return fmt.Errorf("creating tls secret cache: %w", err)
		}
		if err := mgr.Add(tlsCache); err != nil {
			return fmt.Errorf("adding cache to manager: %w", err)
		}
	}
	sdsCache := opts.SDSSecretCache
	if sdsCache == nil {
		if sdsCache, err = NewSDSSecretCache(mgr); err != nil {
			return err
		}
	}
	nextKeyCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(),
		Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{LabelNextPrivateKey: "true"})},
		},
		// Only metadata matters here; drop the key as soon as it is decoded.
		DefaultTransform: func(o any) (any, error) {
			if s, ok := o.(*corev1.Secret); ok {
				s.Data, s.StringData = nil, nil
			}
			return o, nil
		},
	})
	if err != nil {
		return fmt.Errorf("creating next-private-key secret cache: %w", err)
	}
	if err := mgr.Add(nextKeyCache); err != nil {
		return fmt.Errorf("adding cache to manager: %w", err)
	}
	w.secrets = SecretReader{Main: tlsCache, SDS: sdsCache}

	inScope := predicate.NewTypedPredicateFuncs(func(s *corev1.Secret) bool { return InScope(s) })
	err = ctrl.NewControllerManagedBy(mgr).
		Named(WatcherControllerName).
		WithOptions(controller.Options{MaxConcurrentReconciles: w.workers}).
		WatchesRawSource(source.Kind(tlsCache, &corev1.Secret{}, &handler.TypedEnqueueRequestForObject[*corev1.Secret]{}, inScope)).
		WatchesRawSource(source.Kind(sdsCache, &corev1.Secret{}, &handler.TypedEnqueueRequestForObject[*corev1.Secret]{}, inScope)).
		WatchesRawSource(source.Kind(nextKeyCache, &corev1.Secret{}, handler.TypedFuncs[*corev1.Secret, reconcile.Request]{
			CreateFunc: func(context.Context, event.TypedCreateEvent[*corev1.Secret], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if w.metrics != nil {
					w.metrics.NextPrivateKeys.Inc()
				}
			},
			DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[*corev1.Secret], _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				w.observeNextKeyDeleted(e.Object)
			},
		})).
		WatchesRawSource(source.Kind(mgr.GetCache(), &corev1.Namespace{}, handler.TypedEnqueueRequestsFromMapFunc(w.secretsOfNamespace))).
		Complete(w)
	if err != nil {
		return fmt.Errorf("setting up %s: %w", WatcherControllerName, err)
	}
	if w.auditPeriod > 0 {
		if err := mgr.Add(&auditor{w: w}); err != nil {
			return fmt.Errorf("adding custody audit: %w", err)
		}
	}
	return nil
}

// watcher is the reconciler. Its readers are injected so tests can run it
// against any client.
type watcher struct {
	secrets    client.Reader // cached tls Secrets
	live       client.Reader // API reader: the truth before a write
	kube       client.Client // writes; cached reads of Namespaces and Certificates
	scrubber   *Scrubber
	strict     StrictMode
	nsSelector labels.Selector
	recorder   events.EventRecorder
	clock      clock.WithTicker
	metrics    *Metrics
	started    time.Time
	// auditPeriod 0 disables the audit.
	auditPeriod time.Duration
	// readRecords: WatcherOptions.AuditReadRecords.
	readRecords bool
	workers     int
}

func newWatcher(mgr ctrl.Manager, opts WatcherOptions) (*watcher, error) {
	if opts.Store == nil && opts.Scrubber == nil {
		return nil, errors.New("custody watcher needs a store")
	}
	if opts.Scrubber != nil {
		opts.Store, opts.Metrics, opts.WriteTimeout = opts.Scrubber.Store(), opts.Scrubber.Metrics(), opts.Scrubber.writeTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.NamespaceSelector == nil {
		opts.NamespaceSelector = labels.SelectorFromSet(labels.Set{custody.NamespaceLabelCustody: "enabled"})
	}
	switch {
	case opts.Workers == 0:
		opts.Workers = DefaultWatcherWorkers
	case opts.Workers < 0:
		return nil, fmt.Errorf("custody watcher workers %d is negative", opts.Workers)
	}
	if opts.AuditPeriod < 0 {
		return nil, fmt.Errorf("custody audit period %s is negative", opts.AuditPeriod)
	}
	m := opts.Metrics
	if m == nil {
		reg := opts.Registry
		if reg == nil {
			reg = crmetrics.Registry
		}
		var err error
		if m, err = NewMetrics(reg); err != nil {
			return nil, err
		}
	}
	s := opts.Scrubber
	if s == nil {
		var err error
		if s, err = NewScrubber(opts.Store, opts.Clock, m, opts.WriteTimeout); err != nil {
			return nil, err
		}
	}
	return &watcher{
		live:        mgr.GetAPIReader(),
		kube:        mgr.GetClient(),
		scrubber:    s,
		strict:      NamespaceStrictMode{Reader: mgr.GetClient(), Default: opts.StrictDefault},
		nsSelector:  opts.NamespaceSelector,
		recorder:    mgr.GetEventRecorder(WatcherControllerName),
		clock:       opts.Clock,
		metrics:     m,
		started:     opts.Clock.Now(),
		auditPeriod: opts.AuditPeriod,
		readRecords: opts.AuditReadRecords,
		workers:     opts.Workers,
	}, nil
}

// Reconcile scrubs one Secret if it still holds key material.
func (w *watcher) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx).WithValues("secret", req.String())
	ctx = logf.IntoContext(ctx, log)
	var cached corev1.Secret
	if err := w.secrets.Get(ctx, req.NamespacedName, &cached); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !InScope(&cached) {
		return reconcile.Result{}, nil
	}
	ok, err := w.namespaceInScope(ctx, cached.Namespace)
	if err != nil || !ok {
		return reconcile.Result{}, err
	}
	if !HoldsKeyMaterial(&cached) {
		if _, ok := custody.ParsePlaceholder(&cached); ok {
			w.warnRotationPolicy(ctx, &cached)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, w.restoreMarkers(ctx, &cached)
	}

	out, live, err := w.scrub(ctx, &cached)
	if err != nil {
		if out.Result == ResultInvalid {
			// Permanent until the Secret changes, which triggers a new reconcile.
			log.Info("secret holds key material that cannot be moved to custody", "error", err.Error())
			w.recorder.Eventf(live, nil, corev1.EventTypeWarning, ReasonCustodyRejected, "Scrub", "%v", err)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if out.Secret == nil {
		return reconcile.Result{}, nil
	}
	if err := w.kube.Update(ctx, out.Secret); err != nil {
		w.count(ResultUpdateError)
		if apierrors.IsConflict(err) {
			// The Secret changed after the custody write (or the cached copy
			// the write was decided on was already stale). The new version
			// is scrubbed by the webhook or by the next reconcile; the record
			// we wrote is superseded by that write (check-and-set on its
			// version).
			log.V(1).Info("secret changed while scrubbing; requeueing")
			return reconcile.Result{RequeueAfter: time.Second}, nil
		}
		if apierrors.IsNotFound(err) {
			// Deleted after the custody write: nothing is left to redact,
			// and the record keeps the key like any other placeholder's.
			log.Info("secret deleted while scrubbing; its key stays in custody", "version", out.Version)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("redacting secret %s after custody write (version %d): %w", req, out.Version, err)
	}
	if out.Result == ResultScrubbed {
		exposure := w.clock.Now().Sub(exposureStart(live))
		if w.metrics != nil {
			w.metrics.KeyExposure.Observe(max(exposure, 0).Seconds())
		}
		log.Info("watcher moved key to custody", "version", out.Version, "exposure", exposure.String())
		w.recorder.Eventf(out.Secret, nil, corev1.EventTypeNormal, ReasonKeyMovedToCustody, "Scrub",
			"Private key moved to custody at %s (version %d) by the watcher after %s in the API",
			out.Plan.Annotations[custody.AnnotationPath], out.Version, exposure.Round(time.Millisecond))
	}
	return reconcile.Result{}, nil
}

// scrub moves the key of a key-bearing Secret to custody. It decides on the
// cached copy first, with the record version that copy implies as a binding
// check-and-set version, and the redacted Secret it returns carries the
// cached resourceVersion: if the cache lags (the webhook scrubbed a newer
// version, or another writer changed the Secret), the custody write or the
// Update is refused, and nothing is redacted that was not written. Only a
// refused write (or a cached copy whose markers name no version) costs a
// read of the live Secret, and the scrub is decided again on it with the
// usual fallback to the record's current version. It returns the Secret
// the outcome is about; nil with a zero Outcome when the live Secret is
// gone or holds no key any more.
func (w *watcher) scrub(ctx context.Context, cached *corev1.Secret) (Outcome, *corev1.Secret, error) {
	strict, err := w.strict.Strict(ctx, cached.Namespace)
	if err != nil {
		return Outcome{}, cached, err
	}
	sr := ScrubRequest{Secret: cached, Strict: strict, By: ByWatcher, ExpectedVersionOnly: true}
	sr.ExpectedVersion, sr.ExpectedKeySHA256, sr.ExpectedSerial = expectedFromSecret(cached)
	hinted := sr.ExpectedVersion != nil
	if hinted {
		out, err := w.scrubber.Scrub(ctx, sr)
		if out.Result != ResultConflict {
			return out, cached, err
		}
		logf.FromContext(ctx).V(1).Info("custody record moved on since the cached secret; deciding on the live secret", "error", err.Error())
	}
	var live corev1.Secret
	if err := w.live.Get(ctx, client.ObjectKeyFromObject(cached), &live); err != nil {
		return Outcome{}, nil, client.IgnoreNotFound(err)
	}
	if !InScope(&live) || !HoldsKeyMaterial(&live) {
		return Outcome{}, nil, nil
	}
	sr = ScrubRequest{Secret: &live, Strict: strict, By: ByWatcher}
	// A hint from the same object was just refused: leave it out, so the
	// write reads the record's current version instead of trying it again.
	if !hinted || live.ResourceVersion != cached.ResourceVersion {
		sr.ExpectedVersion, sr.ExpectedKeySHA256, sr.ExpectedSerial = expectedFromSecret(&live)
	}
	out, err := w.scrubber.Scrub(ctx, sr)
	return out, &live, err
}

// expectedFromSecret is the custody record a key-bearing Secret names: the
// version, key and serial of an earlier placeholder that a writer replaced
// with a key (cert-manager keeps labels and annotations it does not own),
// or version 0 for a Secret never scrubbed. It is a hint that saves the
// metadata read before the check-and-set write; a wrong hint costs one
// refused write and the read (see ScrubRequest.ExpectedVersion).
func expectedFromSecret(s *corev1.Secret) (*int, string, string) {
	if _, ok := s.Annotations[custody.AnnotationVersion]; !ok {
		v := 0
		return &v, "", ""
	}
	return ExpectedRecord(s)
}

// ExpectedRecord returns the custody record obj's placeholder markers name
// (version, key fingerprint, serial), or a nil version when obj is not a
// placeholder (custody.ParsePlaceholder). The scrub webhook and the watcher
// use it as the check-and-set hint for a write over a placeholder.
func ExpectedRecord(obj metav1.Object) (version *int, keySHA256, serial string) {
	ph, ok := custody.ParsePlaceholder(obj)
	if !ok {
		return nil, "", ""
	}
	return &ph.Version, ph.KeySHA256, ph.Serial
}

func (w *watcher) count(result string) {
	if w.metrics != nil {
		w.metrics.ScrubTotal.WithLabelValues(ByWatcher, result).Inc()
	}
}

func (w *watcher) namespaceInScope(ctx context.Context, name string) (bool, error) {
	var ns corev1.Namespace
	if err := w.kube.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return w.nsSelector.Matches(labels.Set(ns.Labels)), nil
}

// restoreMarkers puts the custody annotations and label back on a redacted
// Secret that lost them while its custody record still holds the key of its
// tls.crt (a later writer dropped fields the webhook had added). Without
// them the guard would let cert-manager re-issue for no reason. A Secret
// whose record is missing (the audit's release) or describes another key is
// left to re-issue.
func (w *watcher) restoreMarkers(ctx context.Context, cached *corev1.Secret) error {
	if len(cached.Data[custody.DataKey]) != 0 || len(cached.Data[custody.DataCertificate]) == 0 {
		return nil
	}
	leaf, err := parseLeaf(cached.Data[custody.DataCertificate])
	if err != nil {
		return nil
	}
	md, err := w.scrubber.Store().Metadata(ctx, cached.Namespace, cached.Name)
	switch {
	case errors.Is(err, custody.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("checking custody of redacted secret %s/%s: %w", cached.Namespace, cached.Name, err)
	case md.KeySHA256 != custody.Fingerprint(leaf.RawSubjectPublicKeyInfo) || md.Serial != custody.SerialHex(leaf):
		return nil
	}
	var live corev1.Secret
	if err := w.live.Get(ctx, client.ObjectKeyFromObject(cached), &live); err != nil {
		return client.IgnoreNotFound(err)
	}
	if _, ph := custody.ParsePlaceholder(&live); HoldsKeyMaterial(&live) || ph || !bytes.Equal(live.Data[custody.DataCertificate], cached.Data[custody.DataCertificate]) {
		return nil
	}
	if live.Annotations == nil {
		live.Annotations = map[string]string{}
	}
	if live.Labels == nil {
		live.Labels = map[string]string{}
	}
	live.Annotations[custody.AnnotationPath] = w.scrubber.Store().Path(live.Namespace, live.Name)
	live.Annotations[custody.AnnotationVersion] = strconv.Itoa(md.Version)
	live.Annotations[custody.AnnotationKeySHA256] = md.KeySHA256
	live.Annotations[custody.AnnotationSerial] = md.Serial
	live.Annotations[custody.AnnotationScrubbedBy] = ByWatcher
	if _, ok := live.Annotations[custody.AnnotationScrubbedAt]; !ok {
		live.Annotations[custody.AnnotationScrubbedAt] = w.clock.Now().UTC().Format(time.RFC3339Nano)
	}
	live.Labels[custody.LabelCustody] = custody.LabelCustodyVault
	if err := w.kube.Update(ctx, &live); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil // the change triggers another reconcile
		}
		return fmt.Errorf("restoring custody markers on secret %s/%s: %w", live.Namespace, live.Name, err)
	}
	logf.FromContext(ctx).Info("restored custody markers on redacted secret", "version", md.Version)
	w.recorder.Eventf(&live, nil, corev1.EventTypeWarning, ReasonCustodyMarkersRestored, "Restore",
		"Custody annotations were missing; restored from custody record version %d (key %s)", md.Version, md.KeySHA256)
	return nil
}

// exposureStart is when the key the watcher is about to remove was last
// written: the latest managedFields entry that touched data, else the
// Secret's creation. The apiserver truncates both to the second, so the
// exposure can be overstated by up to a second; an earlier write of the same
// key, followed by another data write, is not counted. The alternative, the
// time this process first saw the resourceVersion, would understate it by the
// watch latency and by any time Keyward was down, which is what the metric
// exists to show.
func exposureStart(s *corev1.Secret) time.Time {
	var latest time.Time
	for _, mf := range s.ManagedFields {
		if mf.Time == nil || mf.FieldsV1 == nil || !bytes.Contains(mf.FieldsV1.Raw, []byte(`"f:data"`)) {
			continue
		}
		if mf.Time.After(latest) {
			latest = mf.Time.Time
		}
	}
	if latest.IsZero() {
		return s.CreationTimestamp.Time
	}
	return latest
}

// observeNextKeyDeleted records a next-private-key Secret's lifetime.
func (w *watcher) observeNextKeyDeleted(s *corev1.Secret) {
	if w.metrics == nil {
		return
	}
	w.metrics.NextPrivateKeys.Dec()
	if s == nil || s.CreationTimestamp.IsZero() {
		return
	}
	w.metrics.NextPrivateKeyLifetime.Observe(max(w.clock.Since(s.CreationTimestamp.Time), 0).Seconds())
}

// secretsOfNamespace re-queues a namespace's TLS Secrets when its labels
// change, so opting a namespace in scrubs what is already there.
func (w *watcher) secretsOfNamespace(ctx context.Context, ns *corev1.Namespace) []reconcile.Request {
	if w.secrets == nil || !w.nsSelector.Matches(labels.Set(ns.Labels)) {
		return nil
	}
	var list corev1.SecretList // only read: no deep copy
	if err := w.secrets.List(ctx, &list, client.InNamespace(ns.Name), client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "listing secrets of namespace", "namespace", ns.Name)
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if s := &list.Items[i]; InScope(s) && HoldsKeyMaterial(s) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
		}
	}
	return reqs
}

// warnRotationPolicy tells the owner of a Certificate with rotationPolicy
// Never, once per scrub seen by this process, that custody defeats it:
// cert-manager cannot reuse a key it cannot read, so every issuance uses a
// fresh key.
func (w *watcher) warnRotationPolicy(ctx context.Context, s *corev1.Secret) {
	at, err := time.Parse(time.RFC3339Nano, s.Annotations[custody.AnnotationScrubbedAt])
	if err != nil || at.Before(w.started) {
		return
	}
	var crt cmapi.Certificate
	key := client.ObjectKey{Namespace: s.Namespace, Name: s.Annotations[AnnotationCertificateName]}
	if err := w.kube.Get(ctx, key, &crt); err != nil {
		if !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
			logf.FromContext(ctx).V(1).Info("reading certificate for rotation policy", "certificate", key.String(), "error", err.Error())
		}
		return
	}
	if crt.Spec.PrivateKey == nil || crt.Spec.PrivateKey.RotationPolicy != cmapi.RotationPolicyNever {
		return
	}
	w.recorder.Eventf(&crt, s, corev1.EventTypeWarning, ReasonRotationPolicyNeverIgnored, "Custody",
		"privateKey.rotationPolicy Never has no effect under key custody: the key of secret %s is held in Vault, so every issuance uses a fresh key", s.Name)
}

// audit releases placeholders whose custody record is gone, so cert-manager
// re-issues them: removing the custody annotations and label stops the guard
// vetoing, and cert-manager then sees an empty key and issues once. A
// released Secret is no longer a placeholder, so it is released only once.
//
// With a store that lists (custody.Lister, Vault KV and the cloud stores) an
// audit costs one listing per custody namespace that has placeholders,
// whatever their number: a placeholder whose record is listed is not read
// further, and only one that is missing from the listing has its record's
// metadata read, to confirm before it is released. Without a Lister every
// placeholder's metadata is read, and so with AuditReadRecords or when the
// listing fails (the error is logged).
func (w *watcher) audit(ctx context.Context) error {
	// The placeholders are only read (a release re-reads the live Secret):
	// skip the cache's deep copy, which would copy every placeholder of the
	// cluster once per audit.
	var list corev1.SecretList
	if err := w.secrets.List(ctx, &list, client.MatchingLabels{custody.LabelCustody: custody.LabelCustodyVault}, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing custody placeholders: %w", err)
	}
	byNamespace := map[string][]*corev1.Secret{}
	for i := range list.Items {
		s := &list.Items[i]
		if _, ok := custody.ParsePlaceholder(s); ok && InScope(s) {
			byNamespace[s.Namespace] = append(byNamespace[s.Namespace], s)
		}
	}
	start := w.clock.Now()
	var errs []error
	checked := 0
	for ns, placeholders := range byNamespace {
		if ok, err := w.namespaceInScope(ctx, ns); err != nil || !ok {
			errs = append(errs, err)
			continue
		}
		checked += len(placeholders)
		errs = append(errs, w.auditNamespace(ctx, ns, placeholders))
	}
	took := w.clock.Since(start)
	if w.metrics != nil {
		w.metrics.AuditDuration.Observe(took.Seconds())
		w.metrics.AuditPlaceholders.Set(float64(checked))
	}
	logf.FromContext(ctx).V(1).Info("custody audit done", "placeholders", checked, "namespaces", len(byNamespace), "took", took.String())
	return errors.Join(errs...)
}

func (w *watcher) countAuditCall(call string) {
	if w.metrics != nil {
		w.metrics.AuditStoreCalls.WithLabelValues(call).Inc()
	}
}

// auditNamespace audits the placeholders of one custody namespace.
func (w *watcher) auditNamespace(ctx context.Context, ns string, placeholders []*corev1.Secret) error {
	var listed map[string]bool
	if l, ok := w.scrubber.Store().(custody.Lister); ok && !w.readRecords {
		names, err := l.List(ctx, ns)
		w.countAuditCall("list")
		if err == nil {
			listed = make(map[string]bool, len(names))
			for _, n := range names {
				listed[n] = true
			}
		} else {
			// For example a store policy without list (an upgrade that kept
			// the old one): read each record, as without a Lister.
			logf.FromContext(ctx).Error(err, "listing custody records failed; reading each placeholder's record instead",
				"namespace", ns, "placeholders", len(placeholders))
		}
	}
	var errs []error
	for _, s := range placeholders {
		if listed != nil && listed[s.Name] {
			continue
		}
		errs = append(errs, w.auditRecord(ctx, s))
	}
	return errors.Join(errs...)
}

// auditRecord reads the metadata of one placeholder's record and releases
// the placeholder if there is no record (or its current version is deleted).
func (w *watcher) auditRecord(ctx context.Context, s *corev1.Secret) error {
	ph, _ := custody.ParsePlaceholder(s)
	md, err := w.scrubber.Store().Metadata(ctx, s.Namespace, s.Name)
	w.countAuditCall("metadata")
	switch {
	case errors.Is(err, custody.ErrNotFound):
		return w.release(ctx, s)
	case err != nil:
		return fmt.Errorf("auditing custody of secret %s/%s: %w", s.Namespace, s.Name, err)
	case md.KeySHA256 != "" && !strings.EqualFold(md.KeySHA256, ph.KeySHA256):
		// Not acted on: the Secret's version may still exist in history,
		// and a write may be in flight. The guard sees the mismatch too.
		logf.FromContext(ctx).Info("custody record holds a different key than the secret names",
			"secret", s.Namespace+"/"+s.Name, "recordVersion", md.Version, "secretVersion", ph.Version)
		w.recorder.Eventf(s, nil, corev1.EventTypeWarning, ReasonCustodyRecordMismatch, "Audit",
			"Custody record version %d holds key %s, the secret names key %s (version %d)",
			md.Version, md.KeySHA256, ph.KeySHA256, ph.Version)
	}
	return nil
}

func (w *watcher) release(ctx context.Context, cached *corev1.Secret) error {
	ref := cached.Namespace + "/" + cached.Name
	var live corev1.Secret
	if err := w.live.Get(ctx, client.ObjectKeyFromObject(cached), &live); err != nil {
		return client.IgnoreNotFound(err)
	}
	// Only release what the audit looked at: a placeholder for the same record version.
	ph, ok := custody.ParsePlaceholder(&live)
	if old, _ := custody.ParsePlaceholder(cached); !ok || HoldsKeyMaterial(&live) || ph.Version != old.Version {
		return nil
	}
	version, path := ph.Version, ph.Path
	for _, a := range custody.Annotations() {
		delete(live.Annotations, a)
	}
	delete(live.Labels, custody.LabelCustody)
	if err := w.kube.Update(ctx, &live); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil // re-examined at the next audit
		}
		return fmt.Errorf("releasing secret %s whose custody record is missing: %w", ref, err)
	}
	logf.FromContext(ctx).Info("custody record missing; released secret so cert-manager re-issues",
		"secret", ref, "path", path, "version", version)
	w.recorder.Eventf(&live, nil, corev1.EventTypeWarning, ReasonCustodyRecordMissing, "Release",
		"Custody record %s (version %d) is missing; custody annotations removed so cert-manager issues a new key", path, version)
	return nil
}

// auditor runs watcher.audit every auditPeriod on the leader.
type auditor struct{ w *watcher }

// NeedLeaderElection keeps the audit to one replica.
func (a *auditor) NeedLeaderElection() bool { return true }

// Start runs the audit until ctx ends.
func (a *auditor) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("custody-audit")
	ctx = logf.IntoContext(ctx, log)
	t := a.w.clock.NewTicker(a.w.auditPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			if err := a.w.audit(ctx); err != nil {
				log.Error(err, "custody audit incomplete")
			}
		}
	}
}
