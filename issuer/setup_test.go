// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"slices"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

func TestRequestsForIssuer(t *testing.T) {
	t.Parallel()
	base := randomTime(t)
	csr := csrPEM(t, p256(t), "a.example.com")
	mk := func(ns, name string, mut func(*cmapi.CertificateRequest)) client.Object {
		cr := newCR(csr, base, approved)
		cr.Namespace, cr.Name = ns, name
		if mut != nil {
			mut(cr)
		}
		return cr
	}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(
		mk("a", "pending", nil),
		mk("b", "pending-too", nil),
		mk("a", "issued", func(cr *cmapi.CertificateRequest) { cr.Status.Certificate = []byte("x") }),
		mk("a", "other-issuer", func(cr *cmapi.CertificateRequest) { cr.Spec.IssuerRef.Name = "other" }),
		mk("a", "namespaced-kind", func(cr *cmapi.CertificateRequest) { cr.Spec.IssuerRef.Kind = v1alpha1.VaultIssuerKind }),
	).Build()
	names := func(iss v1alpha1.GenericIssuer) []string {
		var out []string
		for _, r := range requestsForIssuer(c)(context.Background(), iss) {
			out = append(out, r.Namespace+"/"+r.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(readyClusterIssuer("vault", true, base)); !slices.Equal(got, []string{"a/pending", "b/pending-too"}) {
		t.Errorf("cluster issuer maps to %v", got)
	}
	ns := &v1alpha1.VaultIssuer{}
	ns.Namespace, ns.Name = "a", "vault"
	if got := names(ns); !slices.Equal(got, []string{"a/namespaced-kind"}) {
		t.Errorf("namespaced issuer maps to %v", got)
	}
}

func TestBecameReady(t *testing.T) {
	t.Parallel()
	base := randomTime(t)
	notReady, ready := readyClusterIssuer("v", false, base), readyClusterIssuer("v", true, base)
	stale := readyClusterIssuer("v", true, base)
	stale.Generation = 4 // Ready was observed for generation 3
	tests := []struct {
		name     string
		old, new client.Object
		want     bool
	}{
		{"turned ready", notReady, ready, true},
		{"stayed ready", ready, ready, false},
		{"turned not ready", ready, notReady, false},
		{"ready for an old generation", notReady, stale, false},
	}
	for _, tc := range tests {
		if got := (becameReady{}).Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
			t.Errorf("%s: Update() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBecameNotReady(t *testing.T) {
	t.Parallel()
	base := randomTime(t)
	notReady, ready := readyClusterIssuer("v", false, base), readyClusterIssuer("v", true, base)
	unknown := readyClusterIssuer("v", true, base)
	unknown.Status.Conditions = nil
	tests := []struct {
		name     string
		old, new client.Object
		want     bool
	}{
		{"turned not ready", ready, notReady, true},
		{"first condition is not ready", unknown, notReady, true},
		{"stayed not ready", notReady, notReady, false},
		{"turned ready", notReady, ready, false},
		{"stayed ready", ready, ready, false},
	}
	for _, tc := range tests {
		if got := (becameNotReady{}).Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
			t.Errorf("%s: Update() = %v, want %v", tc.name, got, tc.want)
		}
	}
	if (becameNotReady{}).Create(event.CreateEvent{Object: notReady}) || (becameNotReady{}).Delete(event.DeleteEvent{Object: notReady}) ||
		(becameNotReady{}).Generic(event.GenericEvent{Object: notReady}) {
		t.Error("becameNotReady passes a create, delete or generic event")
	}
}

func TestNewMetricsTwice(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newMetrics(reg)
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	if a.signTotal != b.signTotal || a.ready != b.ready || a.signDuration != b.signDuration {
		t.Error("second registration did not reuse the registered collectors")
	}
}

func TestOptionsComplete(t *testing.T) {
	t.Parallel()
	if err := (&Options{}).complete(); err == nil {
		t.Error("Options without ClusterResourceNamespace accepted")
	}
	o := Options{ClusterResourceNamespace: "keyward-system"}
	if err := o.complete(); err != nil {
		t.Fatal(err)
	}
	if o.Clock == nil || o.HealthCheckPeriod == 0 || o.RequestTimeout == 0 || o.MaxRetryDuration == 0 || o.Registerer == nil || o.FieldOwner == "" {
		t.Errorf("defaults not filled: %+v", o)
	}
}
