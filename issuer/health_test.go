// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

func TestHealthReconcile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		startReady bool
		checkErr   error
		wantStatus metav1.ConditionStatus
		wantReason string
		wantErr    bool
		wantEvent  bool
		wantMoved  bool // lastTransitionTime changes
	}{
		{name: "healthy issuer becomes ready", startReady: false, wantStatus: metav1.ConditionTrue, wantReason: ReasonVerified, wantEvent: true, wantMoved: true},
		// An unchanged Ready=True only refreshes the message: no event.
		{name: "still ready keeps transition time", startReady: true, wantStatus: metav1.ConditionTrue, wantReason: ReasonVerified},
		{name: "sealed", startReady: true, checkErr: &vault.HealthError{Reason: ReasonVaultSealed, Err: errors.New("vault is sealed")}, wantStatus: metav1.ConditionFalse, wantReason: ReasonVaultSealed, wantErr: true, wantEvent: true, wantMoved: true},
		{name: "unreachable", startReady: true, checkErr: &vault.HealthError{Reason: ReasonVaultUnreachable, Err: errors.New("connection refused")}, wantStatus: metav1.ConditionFalse, wantReason: ReasonVaultUnreachable, wantErr: true, wantEvent: true, wantMoved: true},
		{name: "untrusted TLS certificate", startReady: true, checkErr: &vault.HealthError{Reason: ReasonVaultUnreachable, Err: fmt.Errorf("checking health: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}})}, wantStatus: metav1.ConditionFalse, wantReason: ReasonTLSUntrusted, wantErr: true, wantEvent: true, wantMoved: true},
		{name: "login refused", startReady: true, checkErr: &vault.LoginError{Method: "kubernetes auth", Err: &vaultapi.ResponseError{StatusCode: 403, Errors: []string{"permission denied"}}}, wantStatus: metav1.ConditionFalse, wantReason: ReasonAuthFailed, wantErr: true, wantEvent: true, wantMoved: true},
		{name: "no write on path", startReady: true, checkErr: &IssuerError{Reason: ReasonPermissionDenied, Err: errors.New("may not write")}, wantStatus: metav1.ConditionFalse, wantReason: ReasonPermissionDenied, wantErr: true, wantEvent: true, wantMoved: true},
		{name: "network error while checking capabilities", startReady: true, checkErr: errors.New("EOF"), wantStatus: metav1.ConditionFalse, wantReason: ReasonVaultUnreachable, wantErr: true, wantEvent: true, wantMoved: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := randomTime(t)
			clk := clocktesting.NewFakeClock(base)
			iss := readyClusterIssuer("vault", tc.startReady, base)
			if tc.startReady {
				iss.Status.Conditions[0].Reason = ReasonVerified
			}
			before := iss.Status.Conditions[0].LastTransitionTime
			c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithStatusSubresource(&v1alpha1.VaultClusterIssuer{}).WithObjects(iss).Build()
			rec := events.NewFakeRecorder(10)
			m, err := newMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			r := &HealthReconciler{
				Client: c, NewIssuer: func() v1alpha1.GenericIssuer { return &v1alpha1.VaultClusterIssuer{} },
				Vaults: &fakeVaults{checkErr: tc.checkErr}, Clock: clk, Recorder: rec,
				Period: 5 * time.Minute, Timeout: time.Second, FieldOwner: "test", metrics: m,
			}
			res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Name: "vault"}})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Reconcile() error = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && res.RequeueAfter != 5*time.Minute {
				t.Errorf("RequeueAfter = %s, want the period", res.RequeueAfter)
			}
			var got v1alpha1.VaultClusterIssuer
			if err := c.Get(context.Background(), types.NamespacedName{Name: "vault"}, &got); err != nil {
				t.Fatal(err)
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
			if cond == nil || cond.Status != tc.wantStatus || cond.Reason != tc.wantReason {
				t.Fatalf("Ready = %+v, want %s/%s", cond, tc.wantStatus, tc.wantReason)
			}
			if cond.ObservedGeneration != 3 {
				t.Errorf("observedGeneration = %d, want 3", cond.ObservedGeneration)
			}
			if moved := !cond.LastTransitionTime.Equal(&before); moved != tc.wantMoved {
				t.Errorf("lastTransitionTime %s -> %s, want moved %v", before, cond.LastTransitionTime, tc.wantMoved)
			}
			gotEvent := len(rec.Events) > 0
			if gotEvent != tc.wantEvent {
				t.Errorf("event emitted = %v, want %v", gotEvent, tc.wantEvent)
			}
			want := 0.0
			if tc.wantStatus == metav1.ConditionTrue {
				want = 1
			}
			if v := testutil.ToFloat64(m.ready.WithLabelValues("vaultclusterissuer/vault")); v != want {
				t.Errorf("keyward_issuer_ready = %v, want %v", v, want)
			}
		})
	}
}

func TestHealthReconcileDeletedIssuerForgotten(t *testing.T) {
	t.Parallel()
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	vaults := &fakeVaults{}
	m, _ := newMetrics(prometheus.NewRegistry())
	r := &HealthReconciler{Client: c, NewIssuer: func() v1alpha1.GenericIssuer { return &v1alpha1.VaultIssuer{} },
		Vaults: vaults, Clock: clocktesting.NewFakeClock(randomTime(t)), Recorder: events.NewFakeRecorder(1),
		Period: time.Minute, Timeout: time.Second, FieldOwner: "test", metrics: m}
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "gone"}}); err != nil {
		t.Fatal(err)
	}
	if len(vaults.forgotten) != 1 || vaults.forgotten[0] != "vaultissuer/ns/gone" {
		t.Errorf("forgotten = %v, want [vaultissuer/ns/gone]", vaults.forgotten)
	}
}
