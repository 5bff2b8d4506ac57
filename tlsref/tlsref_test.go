// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package tlsref

import (
	"reflect"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func secretRef(name string, mut ...func(*gwapiv1.SecretObjectReference)) gwapiv1.SecretObjectReference {
	r := gwapiv1.SecretObjectReference{Name: gwapiv1.ObjectName(name)}
	for _, m := range mut {
		m(&r)
	}
	return r
}

func TestGatewaySecrets(t *testing.T) {
	t.Parallel()
	passthrough := gwapiv1.TLSModePassthrough
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "gw"}, Spec: gwapiv1.GatewaySpec{Listeners: []gwapiv1.Listener{
		{Name: "http", Protocol: gwapiv1.HTTPProtocolType},
		{Name: "https", Protocol: gwapiv1.HTTPSProtocolType, TLS: &gwapiv1.ListenerTLSConfig{CertificateRefs: []gwapiv1.SecretObjectReference{
			secretRef("web-tls"),
			secretRef("other-ns", func(r *gwapiv1.SecretObjectReference) { r.Namespace = ptr.To(gwapiv1.Namespace("b")) }),
			secretRef("not-a-secret", func(r *gwapiv1.SecretObjectReference) { r.Kind = ptr.To(gwapiv1.Kind("ConfigMap")) }),
			secretRef("other-group", func(r *gwapiv1.SecretObjectReference) { r.Group = ptr.To(gwapiv1.Group("example.com")) }),
			secretRef("explicit", func(r *gwapiv1.SecretObjectReference) {
				r.Group, r.Kind = ptr.To(gwapiv1.Group("")), ptr.To(gwapiv1.Kind("Secret"))
			}),
		}}},
		{Name: "tls-passthrough", Protocol: gwapiv1.TLSProtocolType, TLS: &gwapiv1.ListenerTLSConfig{Mode: &passthrough,
			CertificateRefs: []gwapiv1.SecretObjectReference{secretRef("ignored")}}},
		{Name: "tls", Protocol: gwapiv1.TLSProtocolType, TLS: &gwapiv1.ListenerTLSConfig{CertificateRefs: []gwapiv1.SecretObjectReference{secretRef("tls-tls")}}},
	}}}
	self := types.NamespacedName{Namespace: "a", Name: "gw"}
	ref := func(listener, ns, name string) Ref {
		return Ref{Kind: KindGateway, Namespace: "a", Name: "gw", Listener: listener, Gateway: self, Secret: types.NamespacedName{Namespace: ns, Name: name}}
	}
	want := []Ref{ref("https", "a", "web-tls"), ref("https", "b", "other-ns"), ref("https", "a", "explicit"), ref("tls", "a", "tls-tls")}
	if got := GatewaySecrets(gw); !reflect.DeepEqual(got, want) {
		t.Fatalf("GatewaySecrets =\n%+v\nwant\n%+v", got, want)
	}
}

func TestListenerSetSecrets(t *testing.T) {
	t.Parallel()
	ls := func(p gwapiv1.ParentGatewayReference) *gwapiv1.ListenerSet {
		return &gwapiv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "extra"}, Spec: gwapiv1.ListenerSetSpec{
			ParentRef: p,
			Listeners: []gwapiv1.ListenerEntry{{Name: "api", Protocol: gwapiv1.HTTPSProtocolType,
				TLS: &gwapiv1.ListenerTLSConfig{CertificateRefs: []gwapiv1.SecretObjectReference{secretRef("api-tls")}}}},
		}}
	}
	got := ListenerSetSecrets(ls(gwapiv1.ParentGatewayReference{Name: "web", Namespace: ptr.To(gwapiv1.Namespace("infra"))}))
	want := []Ref{{Kind: KindListenerSet, Namespace: "apps", Name: "extra", Listener: "api",
		Gateway: types.NamespacedName{Namespace: "infra", Name: "web"}, Secret: types.NamespacedName{Namespace: "apps", Name: "api-tls"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListenerSetSecrets = %+v, want %+v", got, want)
	}
	if got := ListenerSetSecrets(ls(gwapiv1.ParentGatewayReference{Name: "web", Kind: ptr.To(gwapiv1.Kind("Mesh"))})); got != nil {
		t.Errorf("a ListenerSet whose parent is not a Gateway references %+v", got)
	}
	if p, ok := ListenerSetParent(ls(gwapiv1.ParentGatewayReference{Name: "web"})); !ok || p != (types.NamespacedName{Namespace: "apps", Name: "web"}) {
		t.Errorf("default parent namespace: %v %v", p, ok)
	}
}

func TestIngressAndApisixTls(t *testing.T) {
	t.Parallel()
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "ing"}, Spec: networkingv1.IngressSpec{TLS: []networkingv1.IngressTLS{
		{SecretName: "one"}, {Hosts: []string{"no-secret.example.com"}}, {SecretName: "two"},
	}}}
	got := IngressSecrets(ing)
	if len(got) != 2 || got[0].Secret.Name != "one" || got[1].Secret.Name != "two" || got[0].Kind != KindIngress || got[0].Secret.Namespace != "a" {
		t.Errorf("IngressSecrets = %+v", got)
	}
	a := ApisixTlsSecret("a", "at", map[string]any{"spec": map[string]any{"secret": map[string]any{"name": "s", "namespace": "b"}}})
	if len(a) != 1 || a[0].Secret != (types.NamespacedName{Namespace: "b", Name: "s"}) || a[0].Object() != "ApisixTls a/at" {
		t.Errorf("ApisixTlsSecret = %+v", a)
	}
	if a := ApisixTlsSecret("a", "at", map[string]any{"spec": "garbage"}); a != nil {
		t.Errorf("malformed ApisixTls gave %+v", a)
	}
}

func TestListenerSetAdmitted(t *testing.T) {
	t.Parallel()
	ls := func(ns string) *gwapiv1.ListenerSet {
		return &gwapiv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "extra"}}
	}
	gw := func(from *gwapiv1.FromNamespaces) *gwapiv1.Gateway {
		g := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "web"}}
		if from != nil {
			g.Spec.AllowedListeners = &gwapiv1.AllowedListeners{Namespaces: &gwapiv1.ListenerNamespaces{From: from}}
		}
		return g
	}
	for _, tc := range []struct {
		name string
		from *gwapiv1.FromNamespaces
		ns   string
		want bool
	}{
		{"unset is None", nil, "infra", false},
		{"None", ptr.To(gwapiv1.NamespacesFromNone), "infra", false},
		{"Same, same namespace", ptr.To(gwapiv1.NamespacesFromSame), "infra", true},
		{"Same, other namespace", ptr.To(gwapiv1.NamespacesFromSame), "apps", false},
		{"All", ptr.To(gwapiv1.NamespacesFromAll), "apps", true},
		{"Selector (labels not read)", ptr.To(gwapiv1.NamespacesFromSelector), "apps", true},
	} {
		if got := ListenerSetAdmitted(gw(tc.from), ls(tc.ns)); got != tc.want {
			t.Errorf("%s: ListenerSetAdmitted = %v, want %v", tc.name, got, tc.want)
		}
	}
}
