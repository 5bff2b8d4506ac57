// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package sds

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/tlsref"
)

// Selection says which Secrets a proxy's SDS server may serve.
type Selection struct {
	// Gateways are the Gateways the proxy serves, by namespace/name.
	Gateways []types.NamespacedName
	// GatewayClasses select every Gateway whose spec.gatewayClassName is
	// one of them.
	GatewayClasses []string
	// Names are Secrets allowed whatever references them (Istio's classic
	// Gateway, whose credentialName no Gateway API object carries).
	Names []types.NamespacedName
}

// Ignored is a Secret reference of a selected Gateway or ListenerSet that
// is not followed, and why (IgnoredCrossNamespace, IgnoredListenerSetNotAllowed).
type Ignored struct {
	Ref    tlsref.Ref
	Reason string
}

// Allowed returns the Secrets sel allows, sorted: sel.Names, and the
// Secrets the selected Gateways and the ListenerSets attached to them
// reference in their own namespace. A reference to another namespace is
// ignored (it needs a ReferenceGrant, which is not evaluated), and so are
// the ListenerSets their parent Gateway does not admit
// (tlsref.ListenerSetAdmitted).
func Allowed(sel Selection, gateways []*gwapiv1.Gateway, sets []*gwapiv1.ListenerSet) ([]types.NamespacedName, []Ignored) {
	selected := map[types.NamespacedName]*gwapiv1.Gateway{}
	for _, gw := range gateways {
		k := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
		if slices.Contains(sel.Gateways, k) || slices.Contains(sel.GatewayClasses, string(gw.Spec.GatewayClassName)) {
			selected[k] = gw
		}
	}
	var refs []tlsref.Ref
	var ignored []Ignored
	for _, gw := range selected {
		refs = append(refs, tlsref.GatewaySecrets(gw)...)
	}
	for _, ls := range sets {
		parent, ok := tlsref.ListenerSetParent(ls)
		gw := selected[parent]
		if !ok || gw == nil {
			continue
		}
		if !tlsref.ListenerSetAdmitted(gw, ls) {
			for _, r := range tlsref.ListenerSetSecrets(ls) {
				ignored = append(ignored, Ignored{Ref: r, Reason: IgnoredListenerSetNotAllowed})
			}
			continue
		}
		refs = append(refs, tlsref.ListenerSetSecrets(ls)...)
	}
	set := map[types.NamespacedName]bool{}
	for _, k := range sel.Names {
		set[k] = true
	}
	tlsref.Sort(refs)
	for _, r := range refs {
		if r.Secret.Namespace != r.Namespace {
			ignored = append(ignored, Ignored{Ref: r, Reason: IgnoredCrossNamespace})
			continue
		}
		set[r.Secret] = true
	}
	out := make([]types.NamespacedName, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sortKeys(out)
	return out, ignored
}

func sortKeys(keys []types.NamespacedName) {
	slices.SortFunc(keys, func(a, b types.NamespacedName) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

// Target is what a Tracker allows and disallows Secrets on.
type Target interface {
	// Add starts serving the Secret.
	Add(types.NamespacedName) error
	// Remove stops serving it; when it returns, the Secret is not served.
	Remove(types.NamespacedName)
}

// Serving is the Target of `keyward sds`: a Secret is allowed on the sink
// before the agent starts reading it, and the agent stops before the sink
// forgets it, so a delivery in flight cannot put a removed key back.
func Serving(agent *delivery.Agent, sink *Sink) Target { return serving{agent, sink} }

type serving struct {
	agent *delivery.Agent
	sink  *Sink
}

func (s serving) Add(k types.NamespacedName) error { s.sink.Allow(k); return s.agent.Add(k) }
func (s serving) Remove(k types.NamespacedName)    { s.agent.Remove(k); s.sink.Remove(k) }

// TrackerOptions configure NewTracker.
type TrackerOptions struct {
	Selection Selection
	// Client is the Gateway API client; it may be nil when Selection names
	// no Gateway and no class.
	Client gwclient.Interface
	Target Target
	// Logger; default discard.
	Logger logr.Logger
	// Metrics; default unregistered.
	Metrics *Metrics
}

// Tracker keeps a Target's Secrets equal to Allowed: it watches Gateways
// and ListenerSets (gateway.networking.k8s.io/v1, when the API serves them)
// in every namespace and recomputes on every event.
type Tracker struct {
	o      TrackerOptions
	log    logr.Logger
	m      *Metrics
	synced atomic.Bool
	kick   chan struct{}

	mu      sync.Mutex
	current map[types.NamespacedName]bool
	ignored map[Ignored]bool
}

// NewTracker checks o and returns a tracker; Run starts it.
func NewTracker(o TrackerOptions) (*Tracker, error) {
	watches := len(o.Selection.Gateways)+len(o.Selection.GatewayClasses) > 0
	if !watches && len(o.Selection.Names) == 0 {
		return nil, fmt.Errorf("sds tracker: nothing selected: name a Gateway, a GatewayClass or a Secret")
	}
	if o.Target == nil || (watches && o.Client == nil) {
		return nil, fmt.Errorf("sds tracker: a target and, to follow Gateways, a Gateway API client are required")
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return &Tracker{o: o, log: o.Logger, m: o.Metrics.orNew(), kick: make(chan struct{}, 1),
		current: map[types.NamespacedName]bool{}, ignored: map[Ignored]bool{}}, nil
}

// Synced reports whether the allowed Secrets were computed at least once
// from a synced view of the Gateways: before that, an empty set means
// nothing.
func (t *Tracker) Synced() bool { return t.synced.Load() }

// Allowed returns the Secrets allowed now, sorted.
func (t *Tracker) Allowed() []types.NamespacedName {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]types.NamespacedName, 0, len(t.current))
	for k := range t.current {
		out = append(out, k)
	}
	sortKeys(out)
	return out
}

// Run follows the Gateways until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	sel := t.o.Selection
	if len(sel.Gateways)+len(sel.GatewayClasses) == 0 {
		t.apply(Allowed(sel, nil, nil))
		t.synced.Store(true)
		<-ctx.Done()
		return nil
	}
	withSets, err := t.listenerSetsServed()
	if err != nil {
		return err
	}
	f := gwinformers.NewSharedInformerFactory(t.o.Client, 0)
	gws := f.Gateway().V1().Gateways()
	sets := f.Gateway().V1().ListenerSets()
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { t.wake() },
		UpdateFunc: func(any, any) { t.wake() },
		DeleteFunc: func(any) { t.wake() },
	}
	if _, err := gws.Informer().AddEventHandler(kick); err != nil {
		return fmt.Errorf("watching Gateways: %w", err)
	}
	if withSets {
		if _, err := sets.Informer().AddEventHandler(kick); err != nil {
			return fmt.Errorf("watching ListenerSets: %w", err)
		}
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sds tracker: %v cache did not sync: %w", typ, ctx.Err())
		}
	}
	for {
		gwList, err := gws.Lister().List(labels.Everything())
		if err != nil {
			return fmt.Errorf("listing Gateways from the cache: %w", err)
		}
		var setList []*gwapiv1.ListenerSet
		if withSets {
			if setList, err = sets.Lister().List(labels.Everything()); err != nil {
				return fmt.Errorf("listing ListenerSets from the cache: %w", err)
			}
		}
		t.apply(Allowed(sel, gwList, setList))
		t.synced.Store(true)
		select {
		case <-ctx.Done():
			return nil
		case <-t.kick:
		}
	}
}

func (t *Tracker) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// listenerSetsServed asks the API whether it serves gateway.networking.k8s.io/v1
// ListenerSets (Gateway API 1.5 and later); without them, only Gateways
// are followed, and that is said once. An API without v1 Gateways is an
// error: nothing could ever be served.
func (t *Tracker) listenerSetsServed() (bool, error) {
	gv := gwapiv1.GroupVersion.String()
	list, err := t.o.Client.Discovery().ServerResourcesForGroupVersion(gv)
	if apierrors.IsNotFound(err) {
		list, err = &metav1.APIResourceList{}, nil
	}
	if err != nil {
		return false, fmt.Errorf("sds tracker: discovering %s: %w", gv, err)
	}
	served := map[string]bool{}
	for _, r := range list.APIResources {
		served[r.Name] = true
	}
	if !served["gateways"] {
		return false, fmt.Errorf("sds tracker: the API does not serve %s Gateways (are the Gateway API CRDs installed?)", gv)
	}
	if !served["listenersets"] {
		t.log.Info("the API does not serve ListenerSets; following Gateways only (restart to pick them up once installed)", "groupVersion", gv)
	}
	return served["listenersets"], nil
}

// apply makes the Target serve allowed, logs each newly ignored reference
// once and sets the metrics.
func (t *Tracker) apply(allowed []types.NamespacedName, ignored []Ignored) {
	t.mu.Lock()
	defer t.mu.Unlock() // held across the Target calls: applies never interleave
	next := map[types.NamespacedName]bool{}
	for _, k := range allowed {
		next[k] = true
		if t.current[k] {
			continue
		}
		if err := t.o.Target.Add(k); err != nil {
			t.log.Error(err, "cannot serve Secret", "secret", k)
			delete(next, k)
			continue
		}
		t.log.Info("serving Secret", "secret", k)
	}
	for k := range t.current {
		if !next[k] {
			t.o.Target.Remove(k)
			t.log.Info("no longer serving Secret: no selected Gateway references it", "secret", k)
		}
	}
	t.current = next
	counts := map[string]int{IgnoredCrossNamespace: 0, IgnoredListenerSetNotAllowed: 0}
	seen := map[Ignored]bool{}
	for _, ig := range ignored {
		counts[ig.Reason]++
		seen[ig] = true
		if !t.ignored[ig] {
			t.log.Info("not serving a Secret reference", "reason", ig.Reason, "object", ig.Ref.Object(), "listener", ig.Ref.Listener, "secret", ig.Ref.Secret)
		}
	}
	t.ignored = seen
	for r, n := range counts {
		t.m.ignored.WithLabelValues(r).Set(float64(n))
	}
}
