// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package revocation

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// fakeRevoker answers with the queued results, then ResultRevoked.
type fakeRevoker struct {
	mu      sync.Mutex
	answers []error // nil: revoked; else ResultError with that error
	calls   []string
}

func (f *fakeRevoker) Revoke(_ context.Context, iss v1alpha1.GenericIssuer, serial string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, iss.GetName()+"#"+serial)
	if len(f.answers) == 0 {
		return ResultRevoked, nil
	}
	err := f.answers[0]
	f.answers = f.answers[1:]
	if err != nil {
		return ResultError, err
	}
	return ResultRevoked, nil
}

func (f *fakeRevoker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type harness struct {
	c      *Controller
	rev    *fakeRevoker
	clock  *clocktesting.FakeClock
	client client.Client
	rec    *events.FakeRecorder
}

const grace = 10 * time.Second

func newHarness(t *testing.T, cl client.Client, clk *clocktesting.FakeClock) *harness {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{rev: &fakeRevoker{}, clock: clk, client: cl, rec: events.NewFakeRecorder(100)}
	opts := Options{Namespace: "keyward-system", Revoker: h.rev, Clock: clk, Jitter: func() float64 { return 0 }}
	if err := opts.complete(); err != nil {
		t.Fatal(err)
	}
	h.c = &Controller{client: cl, api: cl, recorder: h.rec, revoker: h.rev, opts: opts, m: m, log: logr.Discard(),
		entries: map[string]*Entry{}, wake: make(chan struct{}, 1), ctx: context.Background()}
	if err := h.c.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

func testClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, cmapi.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
}

func revokingIssuer() *v1alpha1.VaultClusterIssuer {
	return &v1alpha1.VaultClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "vault"}, Spec: v1alpha1.VaultIssuerSpec{
		Server: "https://vault:8200", Path: "pki_int/sign/keyward",
		Revocation: &v1alpha1.Revocation{GracePeriod: &metav1.Duration{Duration: grace}, Auth: v1alpha1.VaultAuth{Token: &v1alpha1.TokenAuth{}}},
	}}
}

func (h *harness) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-h.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// TestControllerLifecycle follows one superseded serial: pending for the
// grace period (persisted, not attempted), a failed attempt (event, metric,
// backoff), the retry that revokes, and a restart in between that keeps it.
func TestControllerLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := time.Unix(1_900_000_000+rand.Int64N(1_000_000), 0)
	clk := clocktesting.NewFakeClock(base)
	crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	cl := testClient(t, revokingIssuer(), crt)
	h := newHarness(t, cl, clk)

	old := placeholder("1f", v1alpha1.VaultClusterIssuerKind, "vault", v1alpha1.GroupName)
	h.c.onSecretUpdate(old, placeholder("2a", v1alpha1.VaultClusterIssuerKind, "vault", v1alpha1.GroupName))
	h.c.onSecretDelete(old) // the same serial again (Certificate still there): one entry
	if ev := h.drainEvents(); len(ev) != 1 || !strings.Contains(ev[0], EventScheduled) || !strings.Contains(ev[0], "1f") {
		t.Fatalf("events after detection: %q, want one %s naming the serial", ev, EventScheduled)
	}
	if err := h.c.persist(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _ = h.c.runDue(ctx); h.rev.count() != 0 {
		t.Fatalf("revoked during the grace period")
	}
	h.c.observe()
	if got := testutil.ToFloat64(h.c.m.pending); got != 1 {
		t.Fatalf("pending gauge = %v, want 1", got)
	}

	// Restart before the due time: a new controller finds the entry.
	clk.Step(grace / 2)
	h = newHarness(t, cl, clk)
	h.rev.answers = []error{errors.New("vault PUT pki_int/revoke: status 403: permission denied")}
	next, ok := h.c.runDue(ctx)
	if !ok || !next.Equal(base.Add(grace)) || h.rev.count() != 0 {
		t.Fatalf("after restart: next %s (ok %v), calls %d; want due at %s, no call", next, ok, h.rev.count(), base.Add(grace))
	}

	clk.Step(grace / 2)
	h.c.runDue(ctx)
	if h.rev.count() != 1 || testutil.ToFloat64(h.c.m.total.WithLabelValues(ResultError)) != 1 {
		t.Fatalf("at the due time: %d calls, error counter %v; want 1 and 1", h.rev.count(), testutil.ToFloat64(h.c.m.total.WithLabelValues(ResultError)))
	}
	ev := h.drainEvents()
	if len(ev) != 2 || !strings.HasPrefix(ev[0], "Warning "+EventFailed) || !strings.Contains(ev[0], "1f") || !strings.Contains(ev[0], "permission denied") {
		t.Fatalf("events after a failure: %q; want Warning %s on issuer and Certificate naming serial and error", ev, EventFailed)
	}
	if next, _ := h.c.runDue(ctx); h.rev.count() != 1 || !next.Equal(clk.Now().Add(2*time.Second)) {
		t.Fatalf("retried before the backoff (calls %d, next %s)", h.rev.count(), next)
	}
	clk.Step(2 * time.Second)
	if _, ok := h.c.runDue(ctx); ok || h.rev.count() != 2 || testutil.ToFloat64(h.c.m.total.WithLabelValues(ResultRevoked)) != 1 {
		t.Fatalf("retry: left %v, calls %d; want nothing left after 2 calls", ok, h.rev.count())
	}
	if err := h.c.persist(ctx); err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := cl.Get(ctx, client.ObjectKey{Namespace: "keyward-system", Name: DefaultConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	if left, err := Decode(cm.Data[DataKey]); err != nil || len(left) != 0 {
		t.Fatalf("persisted state after revocation: %v, %v; want empty", left, err)
	}
}

// TestControllerIgnoresAndAbandons covers serials that must not be
// scheduled, and a scheduled one whose issuer is deleted.
func TestControllerIgnoresAndAbandons(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Unix(1_900_000_000+rand.Int64N(1_000_000), 0))
	plain := revokingIssuer()
	plain.Name, plain.Spec.Revocation = "plain", nil
	cl := testClient(t, revokingIssuer(), plain)
	h := newHarness(t, cl, clk)
	for _, iss := range []string{"plain", "missing"} {
		h.c.onSecretUpdate(placeholder("1f", v1alpha1.VaultClusterIssuerKind, iss, v1alpha1.GroupName),
			placeholder("2a", v1alpha1.VaultClusterIssuerKind, iss, v1alpha1.GroupName))
	}
	if len(h.c.entries) != 0 {
		t.Fatalf("scheduled for an issuer without spec.revocation or a missing one: %v", h.c.entries)
	}
	// Certificate gone, Secret deleted: deletion reason.
	h.c.onSecretDelete(placeholder("3c", v1alpha1.VaultClusterIssuerKind, "vault", v1alpha1.GroupName))
	if e := h.c.entries["VaultClusterIssuer/vault#3c"]; e == nil || e.Reason != ReasonCertificateDeleted {
		t.Fatalf("entries %v; want 3c with reason %s", h.c.entries, ReasonCertificateDeleted)
	}
	if err := cl.Delete(ctx, revokingIssuer()); err != nil {
		t.Fatal(err)
	}
	clk.Step(grace)
	if _, ok := h.c.runDue(ctx); ok || h.rev.count() != 0 || testutil.ToFloat64(h.c.m.total.WithLabelValues(ResultAbandoned)) != 1 {
		t.Fatalf("issuer deleted: entry left %v, calls %d; want abandoned without a call", ok, h.rev.count())
	}
}
