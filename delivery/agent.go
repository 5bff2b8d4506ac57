// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/keyward-io/keyward/custody"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

var secretsResource = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// AgentOptions configure NewAgent.
type AgentOptions struct {
	// Secrets are the placeholder Secrets to serve.
	Secrets []types.NamespacedName
	// Metadata is a client for object metadata: the agent lists and watches
	// only the metadata of the Secrets it serves (never their data).
	Metadata metadata.Interface
	// Reader fetches custody record versions.
	Reader Reader
	// Sinks receive every new version, in order.
	Sinks []Sink
	// Logger; default discard.
	Logger logr.Logger
	// Registerer for the agent's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// RetryMin and RetryMax bound the backoff between failed attempts;
	// defaults 500ms and 30s.
	RetryMin, RetryMax time.Duration
	// Clock; default the real clock.
	Clock clock.WithTicker
	// ResyncPeriod, if positive, is how often the agent re-delivers the
	// current bundle to every sink that implements Resyncer, from memory
	// (Vault is not read again). It repairs a gateway that lost its
	// configuration (an APISIX or DB-less Kong restart) without a rotation.
	ResyncPeriod time.Duration
	// Dynamic lets Secrets be empty: the set of served Secrets is then
	// changed at runtime with Add and Remove (`keyward sds` follows its
	// Gateways that way). Add and Remove work on any agent; Dynamic only
	// lifts the check that there is something to serve from the start.
	Dynamic bool
}

// Resyncer is implemented by sinks whose consumer may lose what was
// delivered (a gateway keeping its configuration in memory). Resync makes
// the sink forget what it delivered, so the next Deliver sends it again.
type Resyncer interface {
	Resync()
}

// Agent delivers the custody records of a set of placeholder Secrets to its
// sinks. It is driven by Kubernetes watch events on the Secrets' custody
// version annotation; Vault is read only when that version changes (or a
// delivery is retried). The set is fixed by AgentOptions.Secrets, and can
// change at runtime with Add and Remove.
type Agent struct {
	o       AgentOptions
	log     logr.Logger
	metrics *agentMetrics
	sinkMu  map[string]*sync.Mutex

	// changeMu serialises Add and Remove, so a Secret removed and added
	// again never has its metrics cleared by the older removal.
	changeMu sync.Mutex
	// mu guards the fields below; readers (Status, Ready, Resync) hold it
	// only to copy the map.
	mu      sync.Mutex
	secrets map[types.NamespacedName]*secretState
	run     context.Context // Run's context once it started; nil before
	stopped bool            // Run's context ended: nothing may start any more
	wg      sync.WaitGroup  // every informer and loop goroutine
	started time.Time       // when Run began: latency is observed only for versions written since
}

// secretState is what the agent knows and has done for one Secret.
type secretState struct {
	key  types.NamespacedName
	kick chan struct{}
	// cancel stops the Secret's informer and loop; done is closed once
	// both returned. Both are set when the Secret starts being served.
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	observed  bool              // the Secret was seen in the API
	exists    bool              // it exists now
	version   int               // custody version its annotation names (0: not a placeholder)
	keySHA256 string            // key fingerprint its annotation names
	bundle    *Bundle           // the bundle of the wanted version, once read
	served    *Bundle           // the last bundle every sink took
	delivered map[string]string // sink name → revision delivered (see revision)
	measured  map[string]string // sink name → revision whose latency was observed
	at        time.Time         // last complete delivery
	lastErr   map[string]string
}

// NewAgent checks o and returns an agent; Run starts it.
func NewAgent(o AgentOptions) (*Agent, error) {
	if len(o.Secrets) == 0 && !o.Dynamic {
		return nil, errors.New("delivery agent: no Secrets to serve")
	}
	if o.Metadata == nil || o.Reader == nil {
		return nil, errors.New("delivery agent: a metadata client and a custody reader are required")
	}
	if len(o.Sinks) == 0 {
		return nil, errors.New("delivery agent: no sinks")
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 500 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(30*time.Second, o.RetryMin)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	a := &Agent{o: o, log: o.Logger, sinkMu: map[string]*sync.Mutex{}, secrets: map[types.NamespacedName]*secretState{}}
	for _, s := range o.Sinks {
		if _, dup := a.sinkMu[s.Name()]; dup {
			return nil, fmt.Errorf("delivery agent: two sinks named %q", s.Name())
		}
		a.sinkMu[s.Name()] = &sync.Mutex{}
	}
	for _, k := range o.Secrets {
		if err := checkKey(k); err != nil {
			return nil, err
		}
		if _, dup := a.secrets[k]; dup {
			continue
		}
		a.secrets[k] = newSecretState(k)
	}
	m, err := newAgentMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	return a, nil
}

func newSecretState(k types.NamespacedName) *secretState {
	return &secretState{key: k, kick: make(chan struct{}, 1), delivered: map[string]string{}, measured: map[string]string{}, lastErr: map[string]string{}}
}

func checkKey(k types.NamespacedName) error {
	if k.Namespace == "" || k.Name == "" {
		return fmt.Errorf("delivery agent: Secret %q needs a namespace and a name", k)
	}
	return nil
}

// Run watches the Secrets and delivers until ctx ends. It returns once every
// goroutine it (or Add) started has returned.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.run != nil {
		a.mu.Unlock()
		return errors.New("delivery agent: Run called twice")
	}
	a.started = a.o.Clock.Now()
	a.run = ctx
	for _, st := range a.secrets {
		a.startLocked(st)
	}
	n := len(a.secrets)
	if a.o.ResyncPeriod > 0 {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.resyncLoop(ctx) }()
	}
	a.mu.Unlock()
	a.log.Info("delivery agent started", "secrets", n, "sinks", a.sinkNames(), "resyncPeriod", a.o.ResyncPeriod, "dynamic", a.o.Dynamic)
	<-ctx.Done()
	a.mu.Lock()
	a.stopped = true // no wg.Add after this: Wait below may run
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}

// startLocked starts st's informer and delivery loop under a context of its
// own, so Remove can stop them. a.mu must be held and Run started.
func (a *Agent) startLocked(st *secretState) {
	ctx, cancel := context.WithCancel(a.run)
	st.cancel, st.done = cancel, make(chan struct{})
	inf := a.informer(st)
	var both sync.WaitGroup
	both.Add(3)
	a.wg.Add(4)
	go func() { defer a.wg.Done(); defer both.Done(); inf.RunWithContext(ctx) }()
	go func() { defer a.wg.Done(); defer both.Done(); a.loop(ctx, st) }()
	go func() {
		defer a.wg.Done()
		defer both.Done()
		// A Secret that does not exist produces no event: record the
		// absence once the first list is in (ReadyServable reads it).
		if cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			if _, found, _ := inf.GetStore().GetByKey(st.key.String()); !found {
				a.observeAbsent(st)
			}
		}
	}()
	go func() { defer a.wg.Done(); both.Wait(); close(st.done) }()
}

// observeAbsent records that the first list did not find st's Secret,
// unless an event already said otherwise.
func (a *Agent) observeAbsent(st *secretState) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.observed {
		st.observed, st.exists = true, false
	}
}

// Add starts serving the Secret k: at once when Run is running, else when
// it starts. Adding a Secret already served does nothing. After Run's
// context ended, Add does nothing either.
func (a *Agent) Add(k types.NamespacedName) error {
	if err := checkKey(k); err != nil {
		return err
	}
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.secrets[k]; ok || a.stopped {
		return nil
	}
	st := newSecretState(k)
	a.secrets[k] = st
	if a.run != nil {
		a.startLocked(st)
	}
	a.log.V(1).Info("serving Secret", "secret", k)
	return nil
}

// Remove stops serving the Secret k: its watch and delivery loop stop, it
// leaves Status, Ready and the per-Secret metrics. When Remove returns no
// sink receives k again (until it is added again); sinks keep what they
// have, and a sink that must forget it is told by the caller.
func (a *Agent) Remove(k types.NamespacedName) {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	a.mu.Lock()
	st, ok := a.secrets[k]
	delete(a.secrets, k)
	a.mu.Unlock()
	if !ok {
		return
	}
	if st.cancel != nil {
		st.cancel()
		<-st.done // a delivery in flight ends (its context is cancelled) before we return
	}
	a.forgetMetrics(k)
	a.log.V(1).Info("stopped serving Secret", "secret", k)
}

// forgetMetrics drops k's per-Secret series, so a Secret no longer served
// does not keep reporting its last version, expiry and failures.
func (a *Agent) forgetMetrics(k types.NamespacedName) {
	a.metrics.version.DeleteLabelValues(k.Namespace, k.Name)
	a.metrics.expiry.DeleteLabelValues(k.Namespace, k.Name)
	for _, sink := range append(a.sinkNames(), "vault") {
		a.metrics.failures.DeleteLabelValues(sink, k.Namespace, k.Name)
	}
}

// snapshot returns the states of the Secrets served now.
func (a *Agent) snapshot() []*secretState {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*secretState, 0, len(a.secrets))
	for _, st := range a.secrets {
		out = append(out, st)
	}
	return out
}

// resyncLoop re-delivers to Resyncer sinks every ResyncPeriod.
func (a *Agent) resyncLoop(ctx context.Context) {
	t := a.o.Clock.NewTicker(a.o.ResyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		a.Resync()
	}
}

// Resync re-delivers every Secret's current bundle to the sinks that
// implement Resyncer (from memory; Vault is not read again).
func (a *Agent) Resync() {
	var names []string
	for _, s := range a.o.Sinks {
		r, ok := s.(Resyncer)
		if !ok {
			continue
		}
		mu := a.sinkMu[s.Name()]
		mu.Lock()
		r.Resync()
		mu.Unlock()
		names = append(names, s.Name())
	}
	if len(names) == 0 {
		return
	}
	for _, st := range a.snapshot() {
		st.mu.Lock()
		for _, n := range names {
			delete(st.delivered, n)
		}
		st.mu.Unlock()
		select {
		case st.kick <- struct{}{}:
		default:
		}
	}
}

func (a *Agent) sinkNames() []string {
	var n []string
	for _, s := range a.o.Sinks {
		n = append(n, s.Name())
	}
	return n
}

// informer lists and watches the metadata of one Secret by name (a field
// selector, so RBAC can restrict the agent to resourceNames).
func (a *Agent) informer(st *secretState) cache.SharedIndexInformer {
	sel := fields.OneTermEqualSelector("metadata.name", st.key.Name).String()
	ri := a.o.Metadata.Resource(secretsResource).Namespace(st.key.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = sel
			return ri.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = sel
			return ri.Watch(ctx, opts)
		},
	}
	// Fake clients do not stream the initial list; the wrapper tells the reflector.
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, a.o.Metadata), &metav1.PartialObjectMetadata{}, 0, cache.Indexers{})
	update := func(obj any) {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok || m.Name != st.key.Name {
			return
		}
		a.observe(st, m, true)
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
		DeleteFunc: func(any) { a.observe(st, nil, false) },
	})
	return inf
}

// observe records the Secret's custody annotations and wakes its loop.
func (a *Agent) observe(st *secretState, m *metav1.PartialObjectMetadata, exists bool) {
	st.mu.Lock()
	st.observed, st.exists = true, exists
	if exists {
		// Not a placeholder (yet, or any more): nothing to deliver.
		ph, _ := custody.ParsePlaceholder(m)
		st.version, st.keySHA256 = ph.Version, ph.KeySHA256
	}
	st.mu.Unlock()
	if !exists {
		a.log.Info("served Secret deleted; sinks keep the last delivered certificate", "secret", st.key)
	}
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// loop delivers st's current version whenever it changes, retrying with
// capped exponential backoff until every sink has it.
func (a *Agent) loop(ctx context.Context, st *secretState) {
	backoff := time.Duration(0)
	for {
		var retry <-chan time.Time
		var timer clock.Timer
		if backoff > 0 {
			timer = a.o.Clock.NewTimer(backoff)
			retry = timer.C()
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-st.kick:
		case <-retry:
		}
		if timer != nil {
			timer.Stop()
		}
		err := a.sync(ctx, st)
		switch {
		case err == nil:
			backoff = 0
		case backoff == 0:
			backoff = a.o.RetryMin
		default:
			backoff = min(2*backoff, a.o.RetryMax)
		}
		if err != nil {
			a.log.Error(err, "delivery failed; retrying", "secret", st.key, "retryIn", backoff)
		}
	}
}

// sync brings every sink to the version the Secret names.
func (a *Agent) sync(ctx context.Context, st *secretState) error {
	st.mu.Lock()
	version, fp, b := st.version, st.keySHA256, st.bundle
	want := revision(version, fp)
	var todo []Sink
	for _, s := range a.o.Sinks {
		if st.delivered[s.Name()] != want {
			todo = append(todo, s)
		}
	}
	st.mu.Unlock()
	if version == 0 || len(todo) == 0 {
		return nil
	}
	if b == nil || revision(b.Version, b.KeySHA256) != want {
		var err error
		b, err = a.o.Reader.Read(ctx, st.key.Namespace, st.key.Name, version)
		if err == nil && fp != "" && b.KeySHA256 != fp {
			err = fmt.Errorf("custody record %s holds key %s but the Secret names key %s: %w", b, b.KeySHA256, fp, ErrMismatch)
		}
		if err != nil {
			a.fail(st, "", err)
			return err
		}
		st.mu.Lock()
		st.bundle = b
		st.mu.Unlock()
	}
	var errs []error
	for _, s := range todo {
		mu := a.sinkMu[s.Name()]
		mu.Lock()
		err := s.Deliver(ctx, b)
		mu.Unlock()
		if err != nil {
			err = fmt.Errorf("sink %s: delivering %s: %w", s.Name(), b, err)
			a.fail(st, s.Name(), err)
			errs = append(errs, err)
			continue
		}
		now := a.o.Clock.Now()
		st.mu.Lock()
		st.delivered[s.Name()] = want
		delete(st.lastErr, s.Name())
		delete(st.lastErr, "")
		all := true
		for _, sink := range a.o.Sinks {
			all = all && st.delivered[sink.Name()] == want
		}
		if all { // in the same critical section, so Status never sees "delivered" with the old bundle
			st.at, st.served = now, b
		}
		st.mu.Unlock()
		// The latency of a rotation, once per sink and version: not for a
		// version written before the agent started (a restart re-delivers
		// it) nor for a resync.
		st.mu.Lock()
		observe := st.measured[s.Name()] != want && !b.WrittenAt.IsZero() && b.WrittenAt.After(a.started)
		st.measured[s.Name()] = want
		st.mu.Unlock()
		if observe {
			a.metrics.latency.WithLabelValues(s.Name()).Observe(max(0, now.Sub(b.WrittenAt).Seconds()))
		}
		a.log.Info("delivered", "secret", st.key, "sink", s.Name(), "version", b.Version, "serial", b.Serial)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	a.metrics.version.WithLabelValues(st.key.Namespace, st.key.Name).Set(float64(b.Version))
	a.metrics.expiry.WithLabelValues(st.key.Namespace, st.key.Name).Set(float64(b.NotAfter.Unix()))
	return nil
}

func (a *Agent) fail(st *secretState, sink string, err error) {
	label := sink
	if label == "" {
		label = "vault"
	}
	a.metrics.failures.WithLabelValues(label, st.key.Namespace, st.key.Name).Inc()
	st.mu.Lock()
	st.lastErr[sink] = err.Error()
	st.mu.Unlock()
}

// SecretStatus is what the agent reports for one Secret.
type SecretStatus struct {
	Secret string `json:"secret"`
	// Version and Serial are the last version every sink took (during a
	// rotation, some sinks may already serve Wanted).
	Version int    `json:"version,omitempty"`
	Serial  string `json:"serial,omitempty"`
	// Wanted is the version the Secret names now.
	Wanted      int        `json:"wanted"`
	NotAfter    *time.Time `json:"notAfter,omitempty"`
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
	// Sinks maps each sink to the version it serves.
	Sinks map[string]int `json:"sinks"`
	// Errors holds the last error per sink ("vault" for reads) until the next success.
	Errors map[string]string `json:"errors,omitempty"`
	// State is "waiting" (Secret not seen or not in custody yet), "delivered"
	// (every sink serves Wanted) or "pending".
	State string `json:"state"`
}

// Status reports every Secret, sorted by namespace/name.
func (a *Agent) Status() []SecretStatus {
	var out []SecretStatus
	for _, st := range a.snapshot() {
		st.mu.Lock()
		s := SecretStatus{Secret: st.key.String(), Wanted: st.version, Sinks: map[string]int{}, State: "pending"}
		all := true
		want := revision(st.version, st.keySHA256)
		for _, sink := range a.o.Sinks {
			r := st.delivered[sink.Name()]
			s.Sinks[sink.Name()] = revisionVersion(r)
			all = all && r == want
		}
		if len(st.lastErr) > 0 {
			s.Errors = map[string]string{}
			for k, v := range st.lastErr {
				if k == "" {
					k = "vault"
				}
				s.Errors[k] = v
			}
		}
		switch {
		case !st.observed || st.version == 0:
			s.State = "waiting"
		case all:
			s.State = "delivered"
		}
		if b := st.served; b != nil {
			s.Version, s.Serial = b.Version, b.Serial
			na, at := b.NotAfter, st.at
			s.NotAfter, s.DeliveredAt = &na, &at
		}
		st.mu.Unlock()
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y SecretStatus) int {
		switch {
		case x.Secret < y.Secret:
			return -1
		case x.Secret > y.Secret:
			return 1
		}
		return 0
	})
	return out
}

// Ready reports whether every Secret has been delivered to every sink at
// least once (later rotations may still be in flight). An agent serving no
// Secret (Dynamic, nothing added yet) is ready.
func (a *Agent) Ready() bool {
	for _, st := range a.snapshot() {
		st.mu.Lock()
		ok := len(a.o.Sinks) > 0
		for _, s := range a.o.Sinks {
			ok = ok && st.delivered[s.Name()] != ""
		}
		st.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// ReadyServable is Ready restricted to what can be served: Secrets the API
// has shown to be missing, or to be no custody placeholder, do not count
// (an SDS server stays ready when one listener's Secret has not been issued
// yet; its status says which). A Secret not yet seen counts, as in Ready.
func (a *Agent) ReadyServable() bool {
	for _, st := range a.snapshot() {
		st.mu.Lock()
		skip := st.observed && (!st.exists || st.version == 0)
		ok := skip || len(a.o.Sinks) > 0
		for _, s := range a.o.Sinks {
			ok = ok && (skip || st.delivered[s.Name()] != "")
		}
		st.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// revision identifies what a sink serves: the custody version and the key.
// The key matters because versions restart at 1 when a custody mount is
// rebuilt after a disaster.
func revision(version int, keySHA256 string) string {
	return strconv.Itoa(version) + "/" + keySHA256
}

func revisionVersion(r string) int {
	v, _ := strconv.Atoi(strings.SplitN(r, "/", 2)[0])
	return v
}
