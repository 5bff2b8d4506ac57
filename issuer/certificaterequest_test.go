// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/issuer/pki"
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func readyClusterIssuer(name string, ready bool, now time.Time) *v1alpha1.VaultClusterIssuer {
	iss := &v1alpha1.VaultClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 3, UID: "uid-" + types.UID(name)},
		Spec: v1alpha1.VaultIssuerSpec{
			Server: "https://vault.example.com:8200", Path: "pki_int/sign/keyward",
			Auth: v1alpha1.VaultAuth{Kubernetes: &v1alpha1.KubernetesAuth{Role: "keyward-issuer", ServiceAccountRef: v1alpha1.ServiceAccountRef{Name: "keyward"}}},
		},
	}
	status := metav1.ConditionTrue
	if !ready {
		status = metav1.ConditionFalse
	}
	iss.Status.Conditions = []metav1.Condition{{
		Type: v1alpha1.ConditionReady, Status: status, Reason: "Test", Message: "set by test",
		ObservedGeneration: 3, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour)),
	}}
	return iss
}

type crOpt func(*cmapi.CertificateRequest)

func approved(cr *cmapi.CertificateRequest) {
	cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "cert-manager.io"})
}

func denied(cr *cmapi.CertificateRequest) {
	cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionDenied, Status: cmmeta.ConditionTrue, Reason: "policy"})
}

func newCR(csr []byte, created time.Time, opts ...crOpt) *cmapi.CertificateRequest {
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web-1", CreationTimestamp: metav1.NewTime(created)},
		Spec: cmapi.CertificateRequestSpec{
			Request:   csr,
			Duration:  &metav1.Duration{Duration: 24 * time.Hour},
			IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupName, Kind: v1alpha1.VaultClusterIssuerKind, Name: "vault"},
		},
	}
	for _, o := range opts {
		o(cr)
	}
	return cr
}

func TestCertificateRequestReconcile(t *testing.T) {
	t.Parallel()
	okCSR := csrPEM(t, p256(t), "web.example.com", "web.example.com", "www.example.com")
	weakCSR := csrPEM(t, rsaKey(t, 1024), "web.example.com", "web.example.com")
	base := randomTime(t)
	bundle := &pki.Bundle{Chain: []byte("LEAF+INT"), CA: []byte("ROOT"), Serial: "01"}

	tests := []struct {
		name        string
		cr          *cmapi.CertificateRequest
		issuer      client.Object // nil: none
		signErr     error
		age         time.Duration
		wantSigns   int
		wantReady   cmmeta.ConditionStatus // "": no Ready condition
		wantReason  string
		wantMsg     string
		wantFailure bool
		wantErr     bool
		wantRequeue bool
		wantCert    bool
		wantIssuer  string // expected issuer Ready reason afterwards; "" = unchanged
		wantResult  string // sign_total result label incremented
	}{
		{
			name: "other issuer group is ignored",
			cr: newCR(okCSR, base, approved, func(cr *cmapi.CertificateRequest) {
				cr.Spec.IssuerRef.Group = "cert-manager.io"
				cr.Spec.IssuerRef.Kind = "ClusterIssuer"
			}),
			issuer: readyClusterIssuer("vault", true, base),
		},
		{
			name:   "other kind in our group is ignored",
			cr:     newCR(okCSR, base, approved, func(cr *cmapi.CertificateRequest) { cr.Spec.IssuerRef.Kind = "Issuer" }),
			issuer: readyClusterIssuer("vault", true, base),
		},
		{
			// Waiting for approval writes nothing (no Ready condition), like cert-manager's issuers.
			name: "unapproved waits without a status write", cr: newCR(okCSR, base), issuer: readyClusterIssuer("vault", true, base),
		},
		{
			name: "denied fails and is never signed", cr: newCR(okCSR, base, denied), issuer: readyClusterIssuer("vault", true, base),
			wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonDenied, wantFailure: true,
		},
		{
			name: "missing issuer is pending", cr: newCR(okCSR, base, approved),
			wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonPending, wantMsg: "not found", wantRequeue: true,
		},
		{
			name: "issuer not ready is pending", cr: newCR(okCSR, base, approved), issuer: readyClusterIssuer("vault", false, base),
			wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonPending, wantMsg: "not ready", wantRequeue: true,
		},
		{
			name: "approved request is signed", cr: newCR(okCSR, base, approved), issuer: readyClusterIssuer("vault", true, base),
			wantSigns: 1, wantReady: cmmeta.ConditionTrue, wantReason: cmapi.CertificateRequestReasonIssued, wantCert: true, wantResult: resultSuccess,
		},
		{
			name: "weak key fails before vault", cr: newCR(weakCSR, base, approved), issuer: readyClusterIssuer("vault", true, base),
			wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonFailed, wantFailure: true,
			wantMsg: `policy rule "rsa-min-bits": RSA key is 1024 bits, minimum 2048`,
		},
		{
			name: "vault 400 fails with vault's reason", cr: newCR(okCSR, base, approved), issuer: readyClusterIssuer("vault", true, base),
			signErr:   &vaultapi.ResponseError{StatusCode: 400, Errors: []string{"common name evil.org not allowed by this role"}},
			wantSigns: 1, wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonFailed, wantFailure: true,
			wantMsg: "common name evil.org not allowed by this role", wantResult: resultPermanent,
		},
		{
			name: "vault 403 marks the issuer, request pending", cr: newCR(okCSR, base, approved), issuer: readyClusterIssuer("vault", true, base),
			signErr:   &vaultapi.ResponseError{StatusCode: 403, Errors: []string{"permission denied"}},
			wantSigns: 1, wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonPending, wantMsg: "not ready",
			wantRequeue: true, wantIssuer: ReasonPermissionDenied, wantResult: resultIssuer,
		},
		{
			name: "sealed vault marks the issuer", cr: newCR(okCSR, base, approved), issuer: readyClusterIssuer("vault", true, base),
			signErr:   &vaultapi.ResponseError{StatusCode: 503, Errors: []string{"Vault is sealed"}},
			wantSigns: 1, wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonPending,
			wantRequeue: true, wantIssuer: ReasonVaultSealed, wantResult: resultIssuer,
		},
		{
			name: "vault 500 retries with backoff", cr: newCR(okCSR, base, approved), issuer: readyClusterIssuer("vault", true, base),
			signErr:   &vaultapi.ResponseError{StatusCode: 500, Errors: []string{"internal error"}},
			wantSigns: 1, wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonPending, wantMsg: "Retrying", wantErr: true, wantResult: resultRetry,
		},
		{
			name: "no answer from vault retries and marks the issuer unreachable", cr: newCR(okCSR, base, approved), issuer: readyClusterIssuer("vault", true, base),
			signErr:   fmt.Errorf("signing: %w", context.DeadlineExceeded),
			wantSigns: 1, wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonPending, wantMsg: "Retrying", wantErr: true,
			wantIssuer: ReasonVaultUnreachable, wantResult: resultRetry,
		},
		{
			name: "network errors stop after the retry budget", cr: newCR(okCSR, base, approved), issuer: readyClusterIssuer("vault", true, base),
			signErr: errors.New("dial tcp: connection refused"), age: time.Hour,
			wantSigns: 1, wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonFailed, wantFailure: true, wantMsg: "giving up", wantResult: resultRetry,
		},
		{
			name: "issued request is never signed again",
			cr: newCR(okCSR, base, approved, func(cr *cmapi.CertificateRequest) {
				cr.Status.Certificate = []byte("OLD")
			}),
			issuer: readyClusterIssuer("vault", true, base), wantCert: true,
		},
		{
			name: "failed request stays failed",
			cr: newCR(okCSR, base, approved, func(cr *cmapi.CertificateRequest) {
				cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonFailed, Message: "old"})
			}),
			issuer: readyClusterIssuer("vault", true, base), wantReady: cmmeta.ConditionFalse, wantReason: cmapi.CertificateRequestReasonFailed, wantMsg: "old",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clocktesting.NewFakeClock(base.Add(time.Minute + tc.age))
			b := fake.NewClientBuilder().WithScheme(testScheme(t)).
				WithStatusSubresource(&cmapi.CertificateRequest{}, &v1alpha1.VaultClusterIssuer{}, &v1alpha1.VaultIssuer{}).
				WithObjects(tc.cr)
			if tc.issuer != nil {
				b = b.WithObjects(tc.issuer)
			}
			c := b.Build()
			vaults := &fakeVaults{bundle: bundle, signErr: tc.signErr}
			reg := prometheus.NewRegistry()
			m, err := newMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			r := &CertificateRequestReconciler{
				Client: c, Vaults: vaults, Clock: clk, Recorder: events.NewFakeRecorder(10),
				SignTimeout: time.Second, MaxRetryDuration: 10 * time.Minute, PendingRequeue: 30 * time.Second,
				FieldOwner: "test", metrics: m,
			}
			res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "app", Name: "web-1"}})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Reconcile() error = %v, wantErr %v", err, tc.wantErr)
			}
			if got := res.RequeueAfter > 0; got != tc.wantRequeue {
				t.Errorf("RequeueAfter = %s, want requeue %v", res.RequeueAfter, tc.wantRequeue)
			}
			if got := vaults.signCalls(); got != tc.wantSigns {
				t.Errorf("sign calls = %d, want %d", got, tc.wantSigns)
			}

			var got cmapi.CertificateRequest
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(tc.cr), &got); err != nil {
				t.Fatal(err)
			}
			cond := requestReady(&got)
			switch {
			case tc.wantReady == "" && cond != nil:
				t.Errorf("Ready = %+v, want no Ready condition", *cond)
			case tc.wantReady != "" && cond == nil:
				t.Fatalf("no Ready condition, want %s/%s", tc.wantReady, tc.wantReason)
			case cond != nil:
				if cond.Status != tc.wantReady || cond.Reason != tc.wantReason {
					t.Errorf("Ready = %s/%s (%q), want %s/%s", cond.Status, cond.Reason, cond.Message, tc.wantReady, tc.wantReason)
				}
				if !strings.Contains(cond.Message, tc.wantMsg) {
					t.Errorf("Ready message %q does not contain %q", cond.Message, tc.wantMsg)
				}
			}
			if (got.Status.FailureTime != nil) != tc.wantFailure {
				t.Errorf("failureTime = %v, want set %v", got.Status.FailureTime, tc.wantFailure)
			}
			if tc.wantFailure && !got.Status.FailureTime.Time.Equal(clk.Now().Truncate(time.Second)) {
				t.Errorf("failureTime = %s, want the clock's %s", got.Status.FailureTime, clk.Now())
			}
			if (len(got.Status.Certificate) > 0) != tc.wantCert {
				t.Errorf("certificate = %q, want set %v", got.Status.Certificate, tc.wantCert)
			}
			if tc.wantSigns > 0 && tc.signErr == nil {
				if string(got.Status.Certificate) != "LEAF+INT" || string(got.Status.CA) != "ROOT" {
					t.Errorf("status certificate/ca = %q/%q, want the signer's chain and CA", got.Status.Certificate, got.Status.CA)
				}
				req := vaults.requests[0]
				if req.TTL != 24*time.Hour || req.CommonName != "web.example.com" || strings.Join(req.AltNames, ",") != "web.example.com,www.example.com" {
					t.Errorf("vault request = %+v, want ttl 24h, CN and SANs from the CSR", req)
				}
			}
			if tc.wantIssuer != "" {
				var iss v1alpha1.VaultClusterIssuer
				if err := c.Get(context.Background(), types.NamespacedName{Name: "vault"}, &iss); err != nil {
					t.Fatal(err)
				}
				ic := meta.FindStatusCondition(iss.Status.Conditions, v1alpha1.ConditionReady)
				if ic == nil || ic.Status != metav1.ConditionFalse || ic.Reason != tc.wantIssuer || ic.ObservedGeneration != 3 {
					t.Errorf("issuer Ready = %+v, want False/%s for generation 3", ic, tc.wantIssuer)
				}
			}
			if tc.wantResult != "" {
				if n := testutil.ToFloat64(m.signTotal.WithLabelValues("vaultclusterissuer/vault", tc.wantResult)); n != 1 {
					t.Errorf("keyward_issuer_sign_total{result=%q} = %v, want 1", tc.wantResult, n)
				}
			}
		})
	}
}

// TestPendingConditionKeepsTransitionTime checks that re-reconciling a
// waiting request does not move its Ready lastTransitionTime.
func TestPendingConditionKeepsTransitionTime(t *testing.T) {
	t.Parallel()
	base := randomTime(t)
	clk := clocktesting.NewFakeClock(base)
	cr := newCR(csrPEM(t, p256(t), "a.example.com"), base, approved)
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).
		WithStatusSubresource(&cmapi.CertificateRequest{}, &v1alpha1.VaultClusterIssuer{}).
		WithObjects(cr, readyClusterIssuer("vault", false, base)).Build()
	m, _ := newMetrics(prometheus.NewRegistry())
	r := &CertificateRequestReconciler{Client: c, Vaults: &fakeVaults{}, Clock: clk, Recorder: events.NewFakeRecorder(10),
		SignTimeout: time.Second, MaxRetryDuration: time.Minute, PendingRequeue: time.Second, FieldOwner: "test", metrics: m}
	req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(cr)}
	for range 2 {
		if _, err := r.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		clk.Step(10 * time.Minute)
	}
	var got cmapi.CertificateRequest
	if err := c.Get(context.Background(), req.NamespacedName, &got); err != nil {
		t.Fatal(err)
	}
	if cond := requestReady(&got); cond == nil || !cond.LastTransitionTime.Time.Equal(base.Truncate(time.Second)) {
		t.Errorf("Ready = %+v, want lastTransitionTime kept at %s", cond, base)
	}
}

// The cache keeps no issued certificate (CertificateRequestsByObject), so
// a request issued by Keyward must read as finished from its condition.
func TestCachedIssuedRequestIsFinished(t *testing.T) {
	t.Parallel()
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-1", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "keyward"}}},
		Spec:       cmapi.CertificateRequestSpec{Request: []byte("csr")},
		Status: cmapi.CertificateRequestStatus{
			Certificate: []byte("chain"),
			CA:          []byte("ca"),
			Conditions: []cmapi.CertificateRequestCondition{{
				Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued,
			}},
		},
	}
	out, err := CertificateRequestsByObject().Transform(cr)
	if err != nil {
		t.Fatal(err)
	}
	cached := out.(*cmapi.CertificateRequest)
	if cached.Status.Certificate != nil || cached.Status.CA != nil || cached.ManagedFields != nil || string(cached.Spec.Request) != "csr" {
		t.Fatalf("cached request: certificate %q, ca %q, managedFields %v, request %q; want only the CSR kept", cached.Status.Certificate, cached.Status.CA, cached.ManagedFields, cached.Spec.Request)
	}
	if !isFinished(cached) {
		t.Error("a cached Ready=True/Issued request reads as unfinished: it would be signed again")
	}
	cached.Status.Conditions[0] = cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonPending}
	if isFinished(cached) {
		t.Error("a pending request reads as finished")
	}
}
