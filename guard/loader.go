// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/internal/promreg"
)

// Defaults for the Loader.
const (
	// DefaultCacheTTL is how long a custody metadata answer is reused for
	// the same Secret, custody version, key fingerprint and serial.
	DefaultCacheTTL = 30 * time.Second
	// DefaultCacheSize bounds the number of cached custody answers.
	DefaultCacheSize = 10000
)

// Values of the result label of keyward_guard_custody_lookups_total.
const (
	LookupCacheHit = "cache_hit"
	LookupStore    = "store"
	LookupError    = "error"
	// LookupStale: Vault did not answer and an expired answer for the
	// same record (version, key, serial) was used; see StaleMax.
	LookupStale = "stale"
	// LookupPrimed counts answers put in the cache by the scrub
	// webhook's confirmed writes (Prime), not by a lookup.
	LookupPrimed = "primed"
)

// Loader gathers what Decide needs for one certificates/status update and
// decides, owning the policy of where each input comes from:
//
//   - the target Secret and the Certificate's CertificateRequests come from
//     an informer cache (reader); the current request is the one whose
//     revision annotation is the Certificate's status.revision, and more
//     than one is an error, as in cert-manager;
//   - custody metadata comes from the store, cached per Secret and what its
//     annotations say about its record (version, key fingerprint, serial)
//     for a TTL, primed by the scrub webhook's own writes (Prime); a torn
//     record is read again a few times; when the store does not answer, an
//     expired answer for the same record up to StaleMax old stands in;
//   - the cache is distrusted before a veto (and before passing the end of
//     an issuance the cached Secret could not complete, or a redaction
//     candidate whose cached Secret is missing or not a placeholder): the
//     Secret is read once more with the live reader, from the apiserver's
//     watch cache, and the decision is taken again if it changed. An
//     Issuing=True/DoesNotExist whose Secret the cache does not hold is the
//     start of almost every issuance; it is read again only when this
//     process primed a custody write for that Secret within the TTL (a
//     placeholder just restored by adoption, or an issuance that just
//     completed).
//
// A Loader is safe for concurrent use.
type Loader struct {
	reader    client.Reader
	live      client.Reader
	store     custody.Store
	clock     clock.PassiveClock
	log       logr.Logger
	ttl       time.Duration
	cacheSize int
	// ownerIndex: list requests through CertificateRequestOwnerIndex.
	ownerIndex bool

	lookups *prometheus.CounterVec

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry
	// written: "namespace/name" of Secrets whose custody write was primed,
	// until the cache TTL after it (see recentlyWritten).
	written map[string]time.Time
}

// LoaderOption adjusts a Loader built by NewLoader.
type LoaderOption func(*Loader)

// WithCacheTTL sets how long custody metadata answers are reused (default
// DefaultCacheTTL). Zero or negative disables the cache.
func WithCacheTTL(d time.Duration) LoaderOption { return func(l *Loader) { l.ttl = d } }

// WithLiveReader makes the Loader re-read the target Secret with r (an
// uncached API reader) before a veto, so a Secret that changed since the
// cache saw it (released by the custody audit, say) is decided on as it is.
func WithLiveReader(r client.Reader) LoaderOption { return func(l *Loader) { l.live = r } }

// WithOwnerIndex makes the Loader list a Certificate's requests through
// CertificateRequestOwnerIndex, which the reader's cache must have.
func WithOwnerIndex() LoaderOption { return func(l *Loader) { l.ownerIndex = true } }

// NewLoader returns a Loader reading from reader (an informer cache whose
// scheme knows cert-manager's types) and store (asked for Metadata only:
// the guard's Vault policy reads a version's field names, where its
// description is, and key metadata, never data). clk drives the
// cache and the decision time. keyward_guard_custody_lookups_total
// registers on reg (reused if already there; nil: unregistered). log is
// used for stale answers.
func NewLoader(reader client.Reader, store custody.Store, clk clock.PassiveClock, reg prometheus.Registerer, log logr.Logger, opts ...LoaderOption) (*Loader, error) {
	if reader == nil || store == nil {
		return nil, errors.New("certificate guard needs a cache reader and a custody store")
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	l := &Loader{reader: reader, store: store, clock: clk, log: log, ttl: DefaultCacheTTL, cacheSize: DefaultCacheSize, cache: map[cacheKey]cacheEntry{}, written: map[string]time.Time{}}
	for _, o := range opts {
		o(l)
	}
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_guard_custody_lookups_total",
		Help: "Custody metadata lookups by the guard, by result (cache_hit, store, error, stale), and answers primed by the scrub webhook's writes (primed).",
	}, []string{"result"})
	var err error
	if l.lookups, err = promreg.Register(reg, lookups); err != nil {
		return nil, err
	}
	for _, r := range []string{LookupCacheHit, LookupStore, LookupError, LookupStale, LookupPrimed} {
		l.lookups.WithLabelValues(r)
	}
	return l, nil
}

// Decide loads what the update from old to new needs and decides it (see
// Decide). ctx bounds every lookup. An error means the guard cannot
// decide; callers let the update through unmodified (fail open).
func (l *Loader) Decide(ctx context.Context, old, new *cmapi.Certificate) (Decision, error) {
	in := Input{Old: old, New: new, Now: l.clock.Now()}
	cached, err := l.secret(ctx, l.reader, new.Namespace, new.Spec.SecretName)
	if err != nil {
		return Decision{}, err
	}
	d, err := l.decideOn(ctx, in, cached)
	if err != nil {
		return Decision{}, err
	}
	// The write that ends an issuance comes right after cert-manager wrote
	// the new Secret, which the cache may not hold yet: when the cached one
	// does not let the guard complete the issuance, look at the live one.
	// Likewise when the cached Secret is not (yet) a placeholder: the
	// redaction cert-manager reacts to may not have reached this cache.
	completing := d.Outcome == Pass && CompletesIssuance(old, new)
	lagging := d.Outcome == Pass && (d.Reason == DecisionNotInCustody || d.Reason == DecisionSecretNotFound)
	if lagging && d.Reason == DecisionSecretNotFound && onlyDoesNotExist(old, new) &&
		!l.recentlyWritten(new.Namespace, new.Spec.SecretName) {
		// The trigger's first look at a new Certificate: the Secret is
		// missing from this cache too, and no custody write for it went
		// through this process lately, so there is nothing to look for
		// and the issuance costs no API read here.
		lagging = false
	}
	if (d.Outcome != Veto && !completing && !lagging) || l.live == nil {
		return d, nil
	}
	// A veto stops an issuance, and cert-manager will not ask again until
	// something changes: decide on the Secret as it is now, not as the
	// cache last saw it (the custody audit may just have released it). One
	// GET, served from the apiserver's watch cache (resourceVersion "0": no
	// etcd read), which is upstream of every informer, cert-manager's
	// included, so it already holds any Secret change cert-manager is
	// reacting to.
	live, err := l.secret(ctx, l.live, new.Namespace, new.Spec.SecretName,
		&client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
	if err != nil {
		return Decision{}, err
	}
	if (live == nil) == (cached == nil) && (live == nil || live.ResourceVersion == cached.ResourceVersion) {
		return d, nil
	}
	return l.decideOn(ctx, in, live)
}

// decideOn looks up what the Secret s says is in custody and decides.
func (l *Loader) decideOn(ctx context.Context, in Input, s *corev1.Secret) (Decision, error) {
	in.Secret = s
	// Only a Secret in custody needs the custody record and the requests.
	if s != nil && inCustody(s) {
		var err error
		if in.Custody, err = l.custody(ctx, s); err != nil {
			return Decision{}, err
		}
		if in.Custody != nil {
			if in.CurrentRequest, in.Requests, err = l.requests(ctx, in.New); err != nil {
				return Decision{}, err
			}
		}
	}
	return Decide(in), nil
}

// CertificateRequestOwnerIndex is the cache index of CertificateRequests by
// the UID of the Certificate that controls them (see
// IndexCertificateRequestOwner).
const CertificateRequestOwnerIndex = "keyward.io/controller-uid"

// IndexCertificateRequestOwner adds CertificateRequestOwnerIndex to the
// cache behind indexer (mgr.GetFieldIndexer()). Call it before the manager
// starts and pass WithOwnerIndex to the Loader: its lookup of a
// Certificate's requests then touches that Certificate's requests only,
// not every request in the namespace.
func IndexCertificateRequestOwner(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &cmapi.CertificateRequest{}, CertificateRequestOwnerIndex, ControllerUID); err != nil {
		return fmt.Errorf("indexing certificaterequests by controller for the custody guard: %w", err)
	}
	return nil
}

// ControllerUID is the index function of
// CertificateRequestOwnerIndex: the UID of the controlling Certificate.
func ControllerUID(o client.Object) []string {
	if ref := metav1.GetControllerOfNoCopy(o); ref != nil && ref.Kind == cmapi.CertificateKind {
		return []string{string(ref.UID)}
	}
	return nil
}

// secret reads the Certificate's target Secret from the cache; nil if it does
// not exist.
func (l *Loader) secret(ctx context.Context, r client.Reader, namespace, name string, opts ...client.GetOption) (*corev1.Secret, error) {
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
func (l *Loader) requests(ctx context.Context, crt *cmapi.Certificate) (*cmapi.CertificateRequest, []*cmapi.CertificateRequest, error) {
	// The requests are only read: skip the cache's deep copy.
	listOpts := []client.ListOption{client.InNamespace(crt.Namespace), client.UnsafeDisableDeepCopy}
	if l.ownerIndex {
		listOpts = append(listOpts, client.MatchingFields{CertificateRequestOwnerIndex: string(crt.UID)})
	}
	var list cmapi.CertificateRequestList
	if err := l.reader.List(ctx, &list, listOpts...); err != nil {
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

// cacheKey identifies one custody answer by what the Secret says about
// its record. The custody version changes whenever Keyward writes a new
// record version; the key fingerprint and serial change with every issuance
// even when a deleted record is re-created and its versions restart at 1. So
// a new issuance never reuses a stale answer.
type cacheKey struct {
	namespace, name, version, keySHA256, serial string
}

// keyFor is the cache key of the record a Secret's custody annotations
// name.
func keyFor(s *corev1.Secret) cacheKey {
	ph, _ := custody.ParsePlaceholder(s) // only placeholders are looked up or primed
	return cacheKey{namespace: s.Namespace, name: s.Name, version: strconv.Itoa(ph.Version), keySHA256: ph.KeySHA256, serial: ph.Serial}
}

type cacheEntry struct {
	meta    *custody.Metadata // nil: no record
	expires time.Time
}

// custody returns the custody record's metadata for s (nil if there is
// none), from the TTL cache or the store.
func (l *Loader) custody(ctx context.Context, s *corev1.Secret) (*custody.Metadata, error) {
	key := keyFor(s)
	now := l.clock.Now()
	if l.ttl > 0 {
		l.mu.Lock()
		e, ok := l.cache[key]
		l.mu.Unlock()
		if ok && now.Before(e.expires) {
			l.lookups.WithLabelValues(LookupCacheHit).Inc()
			return copyMeta(e.meta), nil
		}
	}
	meta, err := l.store.Metadata(ctx, s.Namespace, s.Name)
	// A torn record is usually a write between its data and its metadata
	// (stores that write them in two calls; a Vault record from before
	// versions carried their description): ask again a few times within the
	// lookup budget rather than decide on half a record.
	for retry := 0; err == nil && meta.Torn && retry < TornRetries; retry++ {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reading custody metadata for secret %s/%s: record still being written: %w", s.Namespace, s.Name, ctx.Err())
		case <-time.After(tornBackoff):
		}
		meta, err = l.store.Metadata(ctx, s.Namespace, s.Name)
	}
	var found *custody.Metadata
	switch {
	case errors.Is(err, custody.ErrNotFound):
	case err != nil:
		if stale := l.staleAnswer(key, now); stale != nil {
			// Vault is down or slow: the record the Secret names was seen
			// within StaleMax, and nothing but Keyward writes it, so
			// a valid certificate keeps its Ready condition meanwhile.
			l.lookups.WithLabelValues(LookupStale).Inc()
			l.log.V(1).Info("custody metadata unavailable; deciding on the last answer for the same record",
				"secret", s.Namespace+"/"+s.Name, "version", stale.Version, "error", err.Error())
			return stale, nil
		}
		l.lookups.WithLabelValues(LookupError).Inc()
		return nil, fmt.Errorf("reading custody metadata for secret %s/%s: %w", s.Namespace, s.Name, err)
	default:
		found = &meta
	}
	l.lookups.WithLabelValues(LookupStore).Inc()
	// A record that stayed torn is not remembered: it changes as soon as the
	// interrupted write is redone.
	if l.ttl > 0 && (found == nil || !found.Torn) {
		l.remember(key, found, now)
	}
	return copyMeta(found), nil
}

// Prime records what a confirmed custody write put in the store, so that
// the first guard decision on the resulting placeholder needs no Vault read.
// placeholder is the redacted Secret the write produced (its custody
// annotations name the record) and meta the record's metadata with its
// version. Wire it to the Scrubber that runs in the same process
// (scrubber.Scrubber.OnCustodyWrite): the entry is exactly what a store read
// right after the write returns, and expires like any other answer. A
// placeholder that is never persisted only leaves an unused entry.
func (l *Loader) Prime(placeholder *corev1.Secret, meta custody.Metadata) {
	if placeholder == nil || l.ttl <= 0 || meta.Torn {
		return
	}
	if _, ok := custody.ParsePlaceholder(placeholder); !ok {
		return
	}
	key := keyFor(placeholder)
	if key.namespace == "" || key.name == "" || key.version != strconv.Itoa(meta.Version) {
		return
	}
	now := l.clock.Now()
	l.remember(key, copyMeta(&meta), now)
	l.mu.Lock()
	l.written[key.namespace+"/"+key.name] = now.Add(l.ttl)
	l.mu.Unlock()
	l.lookups.WithLabelValues(LookupPrimed).Inc()
}

// recentlyWritten reports whether a custody write for the Secret was primed
// within the cache TTL: its placeholder exists or is about to, whatever an
// informer cache says.
func (l *Loader) recentlyWritten(namespace, name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	exp, ok := l.written[namespace+"/"+name]
	return ok && l.clock.Now().Before(exp)
}

// onlyDoesNotExist reports whether the update's only transition the guard
// looks at is Issuing=True with ReasonDoesNotExist.
func onlyDoesNotExist(old, new *cmapi.Certificate) bool {
	c := issuingTransition(old, new, true)
	return c != nil && c.Reason == ReasonDoesNotExist && readyTransition(old, new, true) == nil && !CompletesIssuance(old, new)
}

// A torn custody record is read again TornRetries times,
// tornBackoff apart (within the lookup timeout).
const (
	TornRetries = 4
	tornBackoff = 50 * time.Millisecond
)

// StaleMax is how long after its expiry a cached custody answer may
// still be used when Vault does not answer.
const StaleMax = time.Hour

// staleAnswer returns the cached answer for key if it names an existing
// record and expired less than StaleMax ago.
func (l *Loader) staleAnswer(key cacheKey, now time.Time) *custody.Metadata {
	if l.ttl <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.cache[key]
	if !ok || e.meta == nil || now.Sub(e.expires) > StaleMax {
		return nil
	}
	return copyMeta(e.meta)
}

func (l *Loader) remember(key cacheKey, meta *custody.Metadata, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.written) >= l.cacheSize {
		for k, exp := range l.written {
			if !now.Before(exp) {
				delete(l.written, k)
			}
		}
		if len(l.written) >= l.cacheSize {
			clear(l.written)
		}
	}
	if len(l.cache) >= l.cacheSize {
		// Drop what cannot serve at all, then what only serves stale.
		for _, limit := range []time.Duration{StaleMax, 0} {
			for k, e := range l.cache {
				if now.Sub(e.expires) >= limit {
					delete(l.cache, k)
				}
			}
			if len(l.cache) < l.cacheSize {
				break
			}
		}
		if len(l.cache) >= l.cacheSize {
			// Everything is fresh and the cache is full: start over rather
			// than grow. Costs one store read per Secret seen again.
			clear(l.cache)
		}
	}
	l.cache[key] = cacheEntry{meta: meta, expires: now.Add(l.ttl)}
}

func copyMeta(m *custody.Metadata) *custody.Metadata {
	if m == nil {
		return nil
	}
	c := *m
	return &c
}
