// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package sds

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

// certRef is a listener certificateRef to Secret name, in namespace ns
// when ns is not empty.
type certRef struct{ ns, name string }

func listener(name string, proto gwapiv1.ProtocolType, refs ...certRef) gwapiv1.Listener {
	l := gwapiv1.Listener{Name: gwapiv1.SectionName(name), Protocol: proto, Port: 443}
	if len(refs) > 0 {
		l.TLS = &gwapiv1.ListenerTLSConfig{}
		for _, r := range refs {
			ref := gwapiv1.SecretObjectReference{Name: gwapiv1.ObjectName(r.name)}
			if r.ns != "" {
				ns := gwapiv1.Namespace(r.ns)
				ref.Namespace = &ns
			}
			l.TLS.CertificateRefs = append(l.TLS.CertificateRefs, ref)
		}
	}
	return l
}

func gateway(ns, name, class string, from gwapiv1.FromNamespaces, ls ...gwapiv1.Listener) *gwapiv1.Gateway {
	gw := &gwapiv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       gwapiv1.GatewaySpec{GatewayClassName: gwapiv1.ObjectName(class), Listeners: ls},
	}
	if from != "" {
		gw.Spec.AllowedListeners = &gwapiv1.AllowedListeners{Namespaces: &gwapiv1.ListenerNamespaces{From: &from}}
	}
	return gw
}

func listenerSet(ns, name string, parent types.NamespacedName, refs ...certRef) *gwapiv1.ListenerSet {
	pns := gwapiv1.Namespace(parent.Namespace)
	ls := &gwapiv1.ListenerSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       gwapiv1.ListenerSetSpec{ParentRef: gwapiv1.ParentGatewayReference{Name: gwapiv1.ObjectName(parent.Name), Namespace: &pns}},
	}
	if len(refs) > 0 {
		l := listener("https", gwapiv1.HTTPSProtocolType, refs...)
		ls.Spec.Listeners = []gwapiv1.ListenerEntry{{Name: l.Name, Protocol: l.Protocol, Port: l.Port, TLS: l.TLS}}
	}
	return ls
}

func nn(s string) types.NamespacedName {
	k, _ := SecretFor(s)
	return k
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	gw := types.NamespacedName{Namespace: "shop", Name: "gw"}
	https := gwapiv1.HTTPSProtocolType
	for _, tc := range []struct {
		name     string
		sel      Selection
		gateways []*gwapiv1.Gateway
		sets     []*gwapiv1.ListenerSet
		want     []string
		ignored  []string // reason secret
	}{{
		name:     "selected Gateway's own Secrets",
		sel:      Selection{Gateways: []types.NamespacedName{gw}},
		gateways: []*gwapiv1.Gateway{gateway("shop", "gw", "eg", "", listener("a", https, certRef{name: "a-tls"}), listener("b", https, certRef{name: "b-tls"}, certRef{ns: "shop", name: "c-tls"}))},
		want:     []string{"shop/a-tls", "shop/b-tls", "shop/c-tls"},
	}, {
		name:     "other Gateways are not served",
		sel:      Selection{Gateways: []types.NamespacedName{gw}},
		gateways: []*gwapiv1.Gateway{gateway("shop", "other", "eg", "", listener("a", https, certRef{name: "x-tls"})), gateway("blog", "gw", "eg", "", listener("a", https, certRef{name: "y-tls"}))},
		want:     []string{},
	}, {
		name: "GatewayClass selects every Gateway of the class",
		sel:  Selection{GatewayClasses: []string{"eg"}},
		gateways: []*gwapiv1.Gateway{
			gateway("shop", "gw", "eg", "", listener("a", https, certRef{name: "a-tls"})),
			gateway("blog", "gw", "eg", "", listener("a", https, certRef{name: "b-tls"})),
			gateway("shop", "istio", "istio", "", listener("a", https, certRef{name: "c-tls"})),
		},
		want: []string{"blog/b-tls", "shop/a-tls"},
	}, {
		name:     "cross-namespace reference is ignored",
		sel:      Selection{Gateways: []types.NamespacedName{gw}},
		gateways: []*gwapiv1.Gateway{gateway("shop", "gw", "eg", "", listener("a", https, certRef{ns: "certs", name: "wild-tls"}, certRef{name: "a-tls"}))},
		want:     []string{"shop/a-tls"},
		ignored:  []string{"cross_namespace certs/wild-tls"},
	}, {
		name:     "plain HTTP and TLS passthrough listeners reference nothing",
		sel:      Selection{Gateways: []types.NamespacedName{gw}},
		gateways: []*gwapiv1.Gateway{gateway("shop", "gw", "eg", "", listener("http", gwapiv1.HTTPProtocolType, certRef{name: "a-tls"}), passthrough(listener("tls", gwapiv1.TLSProtocolType, certRef{name: "b-tls"})))},
		want:     []string{},
	}, {
		name:     "ListenerSet of a selected Gateway allowing its namespace",
		sel:      Selection{Gateways: []types.NamespacedName{gw}},
		gateways: []*gwapiv1.Gateway{gateway("shop", "gw", "eg", gwapiv1.NamespacesFromSame)},
		sets: []*gwapiv1.ListenerSet{
			listenerSet("shop", "ls", gw, certRef{name: "ls-tls"}),
			listenerSet("blog", "ls", gw, certRef{name: "blog-tls"}), // Same: another namespace may not attach
			listenerSet("shop", "orphan", types.NamespacedName{Namespace: "shop", Name: "other"}, certRef{name: "orphan-tls"}),
		},
		want:    []string{"shop/ls-tls"},
		ignored: []string{"listenerset_not_allowed blog/blog-tls"},
	}, {
		name:     "ListenerSets are not allowed by default",
		sel:      Selection{Gateways: []types.NamespacedName{gw}},
		gateways: []*gwapiv1.Gateway{gateway("shop", "gw", "eg", "")},
		sets:     []*gwapiv1.ListenerSet{listenerSet("shop", "ls", gw, certRef{name: "ls-tls"})},
		want:     []string{},
		ignored:  []string{"listenerset_not_allowed shop/ls-tls"},
	}, {
		name:     "ListenerSet from any namespace, its Secret in its own namespace",
		sel:      Selection{Gateways: []types.NamespacedName{gw}},
		gateways: []*gwapiv1.Gateway{gateway("shop", "gw", "eg", gwapiv1.NamespacesFromAll)},
		sets:     []*gwapiv1.ListenerSet{listenerSet("blog", "ls", gw, certRef{name: "blog-tls"}, certRef{ns: "shop", name: "shop-tls"})},
		want:     []string{"blog/blog-tls"},
		ignored:  []string{"cross_namespace shop/shop-tls"},
	}, {
		name:     "--name is allowed without any Gateway",
		sel:      Selection{Names: []types.NamespacedName{nn("istio-system/ingress-tls")}, Gateways: []types.NamespacedName{gw}},
		gateways: []*gwapiv1.Gateway{gateway("shop", "gw", "eg", "", listener("a", https, certRef{name: "a-tls"}))},
		want:     []string{"istio-system/ingress-tls", "shop/a-tls"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ignored := Allowed(tc.sel, tc.gateways, tc.sets)
			gotS := []string{}
			for _, k := range got {
				gotS = append(gotS, k.String())
			}
			if !slices.Equal(gotS, tc.want) {
				t.Errorf("allowed = %v, want %v", gotS, tc.want)
			}
			var ig []string
			for _, i := range ignored {
				ig = append(ig, i.Reason+" "+i.Ref.Secret.String())
			}
			if !slices.Equal(ig, tc.ignored) {
				t.Errorf("ignored = %v, want %v", ig, tc.ignored)
			}
		})
	}
}

func passthrough(l gwapiv1.Listener) gwapiv1.Listener {
	m := gwapiv1.TLSModePassthrough
	l.TLS.Mode = &m
	return l
}

// fakeGatewayAPI is a fake Gateway API clientset whose discovery serves
// gateways, and listenersets when withSets.
func fakeGatewayAPI(withSets bool) *gwfake.Clientset {
	cs := gwfake.NewSimpleClientset()
	res := []metav1.APIResource{{Name: "gateways", Namespaced: true, Kind: "Gateway"}}
	if withSets {
		res = append(res, metav1.APIResource{Name: "listenersets", Namespaced: true, Kind: "ListenerSet"})
	}
	cs.Resources = []*metav1.APIResourceList{{GroupVersion: gwapiv1.GroupVersion.String(), APIResources: res}}
	return cs
}

// TestTrackerFollowsGateways drives the whole server: Gateway and
// ListenerSet changes in the API make a Secret served or not, as a delta
// stream (Envoy) sees it.
func TestTrackerFollowsGateways(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	f := newFixture(t,
		ca.bundle(t, "shop", "web-tls", 1, "web.example"),
		ca.bundle(t, "shop", "ls-tls", 1, "ls.example"),
		ca.bundle(t, "certs", "wild-tls", 1, "wild.example"))
	gwKey := types.NamespacedName{Namespace: "shop", Name: "gw"}
	cs := fakeGatewayAPI(true)
	tr, err := NewTracker(TrackerOptions{Selection: Selection{Gateways: []types.NamespacedName{gwKey}}, Client: cs, Target: f.target, Logger: testr.New(t), Metrics: f.m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		if err := tr.Run(ctx); err != nil {
			t.Errorf("tracker: %v", err)
		}
	}()
	s := openDelta(ctx, t, f, "shop/web-tls", "shop/ls-tls", "certs/wild-tls")

	// A Gateway referencing web-tls, and wild-tls across namespaces.
	https := gwapiv1.HTTPSProtocolType
	gw := gateway("shop", "gw", "eg", gwapiv1.NamespacesFromSame, listener("web", https, certRef{name: "web-tls"}, certRef{ns: "certs", name: "wild-tls"}))
	gws := cs.GatewayV1().Gateways("shop")
	if _, err := gws.Create(ctx, gw, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := nextWith(ctx, t, s, "shop/web-tls")
	keyPair(t, r.secrets["shop/web-tls"])
	if r.secrets["certs/wild-tls"] != nil {
		t.Error("served a Secret referenced across namespaces")
	}

	// A ListenerSet attached to it.
	ls := listenerSet("shop", "ls", gwKey, certRef{name: "ls-tls"})
	if _, err := cs.GatewayV1().ListenerSets("shop").Create(ctx, ls, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nextWith(ctx, t, s, "shop/ls-tls")

	// The Gateway drops web-tls: the stream is told it is gone.
	gw.Spec.Listeners = []gwapiv1.Listener{listener("web", https, certRef{ns: "certs", name: "wild-tls"})}
	if _, err := gws.Update(ctx, gw, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for r = (response{}); !slices.Contains(r.removed, "shop/web-tls"); {
		if r, err = s.next(ctx); err != nil {
			t.Fatalf("waiting for the removal of shop/web-tls: %v", err)
		}
	}
	if got := fmt.Sprint(tr.Allowed()); got != "[shop/ls-tls]" {
		t.Errorf("allowed = %s, want [shop/ls-tls]", got)
	}
	if got := f.sink.unserved("certs/wild-tls"); got != ReasonNotReferenced {
		t.Errorf("cross-namespace Secret: unserved reason %q, want not_referenced", got)
	}
	if got := testutil.ToFloat64(f.m.ignored.WithLabelValues(IgnoredCrossNamespace)); got != 1 {
		t.Errorf("ignored{cross_namespace} = %v, want 1", got)
	}
	if !tr.Synced() {
		t.Error("tracker not synced")
	}
}

// recordingTarget reports every change on a channel.
type recordingTarget struct{ events chan string }

func (r recordingTarget) Add(k types.NamespacedName) error { r.events <- "+" + k.String(); return nil }
func (r recordingTarget) Remove(k types.NamespacedName)    { r.events <- "-" + k.String() }

func next(ctx context.Context, t *testing.T, events chan string) string {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-ctx.Done():
		t.Fatal("no change from the tracker")
		return ""
	}
}

// TestTrackerGatewayClassWithoutListenerSets: a cluster without the
// ListenerSet API still has its Gateways followed, selected by class.
func TestTrackerGatewayClassWithoutListenerSets(t *testing.T) {
	t.Parallel()
	cs := fakeGatewayAPI(false)
	target := recordingTarget{events: make(chan string, 10)}
	tr, err := NewTracker(TrackerOptions{
		Selection: Selection{GatewayClasses: []string{"eg"}, Names: []types.NamespacedName{nn("istio-system/ingress-tls")}},
		Client:    cs, Target: target, Logger: testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { _ = tr.Run(ctx) }()
	if e := next(ctx, t, target.events); e != "+istio-system/ingress-tls" {
		t.Fatalf("first change %s, want the --name Secret added", e)
	}
	https := gwapiv1.HTTPSProtocolType
	for _, gw := range []*gwapiv1.Gateway{
		gateway("blog", "other-class", "istio", "", listener("a", https, certRef{name: "no-tls"})),
		gateway("blog", "gw", "eg", "", listener("a", https, certRef{name: "blog-tls"})),
	} {
		if _, err := cs.GatewayV1().Gateways(gw.Namespace).Create(ctx, gw, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if e := next(ctx, t, target.events); e != "+blog/blog-tls" {
		t.Fatalf("change %s, want +blog/blog-tls", e)
	}
	if err := cs.GatewayV1().Gateways("blog").Delete(ctx, "gw", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := next(ctx, t, target.events); e != "-blog/blog-tls" {
		t.Fatalf("change %s, want -blog/blog-tls", e)
	}
}

func TestTrackerFailsWithoutGatewayAPI(t *testing.T) {
	t.Parallel()
	tr, err := NewTracker(TrackerOptions{Selection: Selection{GatewayClasses: []string{"eg"}}, Client: gwfake.NewSimpleClientset(), Target: recordingTarget{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Run(ctx); err == nil || !strings.Contains(err.Error(), "does not serve gateway.networking.k8s.io/v1 Gateways") {
		t.Errorf("Run without the Gateway API: got %v", err)
	}
}

func TestNewTrackerNeedsSelection(t *testing.T) {
	t.Parallel()
	target := recordingTarget{}
	for name, o := range map[string]TrackerOptions{
		"nothing selected":        {Target: target},
		"Gateways without client": {Selection: Selection{GatewayClasses: []string{"eg"}}, Target: target},
		"no target":               {Selection: Selection{Names: []types.NamespacedName{nn("a/b")}}},
	} {
		if _, err := NewTracker(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
