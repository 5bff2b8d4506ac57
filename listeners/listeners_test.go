// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package listeners

import (
	"context"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/tlsref"
)

const sdsURL = "unix:///var/run/keyward/sds.sock"

func gatewayClass(name, url string) *gwapiv1.GatewayClass {
	gc := &gwapiv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: gwapiv1.GatewayClassSpec{ControllerName: "example.com/gw"}}
	if url != "" {
		gc.Annotations = map[string]string{custody.GatewayClassAnnotationSDSURL: url}
	}
	return gc
}

func gateway(ns, name, class string, secrets ...string) *gwapiv1.Gateway {
	same := gwapiv1.NamespacesFromSame
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: gwapiv1.GatewaySpec{
		GatewayClassName: gwapiv1.ObjectName(class),
		AllowedListeners: &gwapiv1.AllowedListeners{Namespaces: &gwapiv1.ListenerNamespaces{From: &same}},
	}}
	for i, s := range secrets {
		gw.Spec.Listeners = append(gw.Spec.Listeners, gwapiv1.Listener{
			Name: gwapiv1.SectionName("https-" + s), Port: gwapiv1.PortNumber(443 + i), Protocol: gwapiv1.HTTPSProtocolType,
			TLS: &gwapiv1.ListenerTLSConfig{CertificateRefs: []gwapiv1.SecretObjectReference{{Name: gwapiv1.ObjectName(s)}}},
		})
	}
	return gw
}

func listenerSet(ns, name, parent, secret string) *gwapiv1.ListenerSet {
	return &gwapiv1.ListenerSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gwapiv1.ListenerSetSpec{
			ParentRef: gwapiv1.ParentGatewayReference{Name: gwapiv1.ObjectName(parent)},
			Listeners: []gwapiv1.ListenerEntry{{Name: "extra", Port: 8443, Protocol: gwapiv1.HTTPSProtocolType,
				TLS: &gwapiv1.ListenerTLSConfig{CertificateRefs: []gwapiv1.SecretObjectReference{{Name: gwapiv1.ObjectName(secret)}}}}},
		},
	}
}

func placeholder(ns, name string, typ corev1.SecretType) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault},
			Annotations: map[string]string{
				custody.AnnotationPath: "custody/tls/" + ns + "/" + name, custody.AnnotationVersion: "1",
				custody.AnnotationKeySHA256: strings.Repeat("ab", 32), annotationCertificateName: name,
			}},
		Type: typ,
		Data: map[string][]byte{"tls.crt": []byte("cert"), "tls.key": {}},
	}
	if typ == custody.SecretTypeSDS {
		custody.MarkSDS(s, sdsURL)
	}
	return s
}

func newFakeReader(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwapiv1.Install, cmapi.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
}

func TestJudge(t *testing.T) {
	t.Parallel()
	gwRef := tlsref.Ref{Kind: tlsref.KindGateway, Namespace: "a", Name: "gw", Listener: "https", Secret: key("a", "web-tls"), Gateway: key("a", "gw")}
	ingRef := tlsref.Ref{Kind: tlsref.KindIngress, Namespace: "a", Name: "ing", Secret: key("a", "web-tls")}
	tlsS, sdsS := placeholder("a", "web-tls", corev1.SecretTypeTLS), placeholder("a", "web-tls", custody.SecretTypeSDS)
	cases := []struct {
		name       string
		ref        tlsref.Ref
		s          *corev1.Secret
		url        string
		ack        bool
		wantState  string
		wantReason string
	}{
		{"SDS secret, marked class", gwRef, sdsS, sdsURL, false, StateServable, ""},
		{"TLS placeholder, unmarked class", gwRef, tlsS, "", false, StateUnservable, ReasonClassNotMarked},
		{"SDS secret, class no longer marked", gwRef, sdsS, "", false, StateUnservable, ReasonClassNotMarked},
		{"TLS placeholder, marked class (created before)", gwRef, tlsS, sdsURL, false, StateUnservable, ReasonCreatedAsTLS},
		{"ingress on a TLS placeholder", ingRef, tlsS, "", false, StateUnservable, ReasonEmptyKey},
		{"ingress on an SDS secret", ingRef, sdsS, "", false, StateUnservable, ReasonNotSDSReader},
		{"acknowledged ingress", ingRef, tlsS, "", true, StateAcknowledged, ""},
		{"acknowledged gateway", gwRef, tlsS, "", true, StateAcknowledged, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := Judge(tc.ref, tc.s, tc.url, tc.ack)
			if v.State != tc.wantState || v.Reason != tc.wantReason {
				t.Fatalf("Judge = %s/%s, want %s/%s", v.State, v.Reason, tc.wantState, tc.wantReason)
			}
			if v.State == StateUnservable && (!strings.Contains(v.Message, "a/web-tls") || !strings.Contains(v.Message, tc.ref.Object())) {
				t.Errorf("message %q does not name the Secret and the referencing object", v.Message)
			}
		})
	}
}

func TestSDSResolver(t *testing.T) {
	t.Parallel()
	r := NewSDSResolver(newFakeReader(t,
		gatewayClass("eg", sdsURL), gatewayClass("eg2", "unix:///other.sock"), gatewayClass("plain", ""),
		gateway("a", "web", "eg", "web-tls", "shared-tls"),
		gateway("a", "other", "plain", "plain-tls", "shared-tls"),
		gateway("a", "third", "eg2", "mixed-tls"),
		gateway("a", "fourth", "eg", "mixed-tls"),
		listenerSet("a", "extra", "web", "api-tls"),
		closed(gateway("a", "closed", "eg")),
		listenerSet("a", "shut", "closed", "shut-tls"),
		gateway("b", "web", "eg", "b-tls"),
	), Served{Gateways: true, ListenerSets: true})
	cases := map[string]string{
		"a/web-tls":    sdsURL, // one marked Gateway
		"a/api-tls":    sdsURL, // a ListenerSet of a marked Gateway
		"a/plain-tls":  "",     // unmarked class
		"a/shared-tls": "",     // referenced by a marked and an unmarked class
		"a/mixed-tls":  "",     // two marked classes, two addresses
		"a/none-tls":   "",     // no Gateway
		"a/shut-tls":   "",     // a ListenerSet its parent does not admit
		"b/b-tls":      sdsURL,
	}
	for key, want := range cases {
		ns, name, _ := strings.Cut(key, "/")
		got, err := r.URL(context.Background(), ns, name)
		if err != nil || got != want {
			t.Errorf("URL(%s) = %q, %v; want %q", key, got, err, want)
		}
	}
	if NewSDSResolver(newFakeReader(t), Served{}) != nil {
		t.Errorf("a resolver without the Gateway API served")
	}
}

func TestCheckerReportsUnservableReferences(t *testing.T) {
	t.Parallel()
	apisix := &unstructured.Unstructured{}
	apisix.SetGroupVersionKind(ApisixTlsGVK)
	apisix.SetNamespace("a")
	apisix.SetName("legacy")
	_ = unstructured.SetNestedMap(apisix.Object, map[string]any{"name": "legacy-tls", "namespace": "a"}, "spec", "secret")
	ack := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "fed", Annotations: map[string]string{AnnotationTLSServedBy: "keyward-agent"}},
		Spec: networkingv1.IngressSpec{TLS: []networkingv1.IngressTLS{{SecretName: "legacy-tls"}}}}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "legacy"},
		Spec: networkingv1.IngressSpec{TLS: []networkingv1.IngressTLS{{SecretName: "legacy-tls"}, {SecretName: "not-custody"}}}}
	notCustody := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "not-custody"}, Type: corev1.SecretTypeTLS}
	reader := newFakeReader(t,
		gatewayClass("eg", sdsURL), gatewayClass("plain", ""),
		gateway("a", "web", "eg", "web-tls"), gateway("a", "legacy", "plain", "legacy-tls"),
		listenerSet("a", "extra", "web", "late-tls"),
		placeholder("a", "web-tls", custody.SecretTypeSDS), placeholder("a", "legacy-tls", corev1.SecretTypeTLS),
		placeholder("a", "late-tls", corev1.SecretTypeTLS), notCustody, ing, ack,
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "legacy-tls"}},
	)
	if err := reader.Create(context.Background(), apisix); err != nil {
		t.Fatal(err)
	}
	rec := events.NewFakeRecorder(20)
	c, err := NewChecker(reader, reader, Served{Gateways: true, ListenerSets: true, ApisixTls: true}, rec, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reconcile(context.Background(), reconcile.Request{}); err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]float64{
		{tlsref.KindGateway, StateServable}: 1, {tlsref.KindGateway, StateUnservable}: 1,
		{tlsref.KindListenerSet, StateUnservable}: 1, // late-tls: TLS type on a marked class
		{tlsref.KindIngress, StateUnservable}:     1, {tlsref.KindIngress, StateAcknowledged}: 1,
		{tlsref.KindApisixTls, StateUnservable}: 1,
	}
	for _, k := range []string{tlsref.KindGateway, tlsref.KindListenerSet, tlsref.KindIngress, tlsref.KindApisixTls} {
		for _, s := range []string{StateServable, StateUnservable, StateAcknowledged} {
			if got := testutil.ToFloat64(c.refs.WithLabelValues(k, s)); got != want[[2]string{k, s}] {
				t.Errorf("keyward_tls_references{kind=%s,state=%s} = %v, want %v", k, s, got, want[[2]string{k, s}])
			}
		}
	}
	// 4 unservable references: one event on each referencing object, plus
	// one on Certificate legacy-tls for each of its three references.
	got := drain(rec)
	if len(got) != 7 {
		t.Fatalf("%d events, want 7: %q", len(got), got)
	}
	for _, e := range got {
		if !strings.HasPrefix(e, "Warning "+EventReasonUnservable+" ") {
			t.Errorf("event %q: want a Warning %s", e, EventReasonUnservable)
		}
	}
	// A second pass over the same state records nothing new.
	if _, err := c.Reconcile(context.Background(), reconcile.Request{}); err != nil {
		t.Fatal(err)
	}
	if again := drain(rec); len(again) != 0 {
		t.Errorf("second pass recorded %q, want nothing", again)
	}
	// Fixing the legacy Gateway's class (acknowledging it) clears its count.
	var gw gwapiv1.Gateway
	if err := reader.Get(context.Background(), key("a", "legacy"), &gw); err != nil {
		t.Fatal(err)
	}
	gw.Annotations = map[string]string{AnnotationTLSServedBy: "terminator"}
	if err := reader.Update(context.Background(), &gw); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reconcile(context.Background(), reconcile.Request{}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(c.refs.WithLabelValues(tlsref.KindGateway, StateUnservable)); got != 0 {
		t.Errorf("unservable Gateway references after acknowledging = %v, want 0", got)
	}
}

func drain(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func key(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

// closed makes gw admit no ListenerSet (allowedListeners From: None).
func closed(gw *gwapiv1.Gateway) *gwapiv1.Gateway {
	none := gwapiv1.NamespacesFromNone
	gw.Spec.AllowedListeners.Namespaces.From = &none
	return gw
}
