// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/guard"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// ghStore is a custody store fake that only answers Metadata.
type ghStore struct {
	mu    sync.Mutex
	meta  map[string]custody.Metadata
	err   error
	block bool // wait for the context to end
	// torn answers this many calls with a torn record before the real one.
	torn  int
	calls int
	// deadline is how long the last call had before its context expired.
	deadline time.Duration
}

func (s *ghStore) Put(context.Context, custody.Record, int) (int, error) {
	return 0, errors.New("the guard must never write custody records")
}

func (s *ghStore) Delete(context.Context, string, string) error {
	return errors.New("the guard must never delete custody records")
}

func (s *ghStore) Path(namespace, name string) string {
	return "secret/keyward/" + namespace + "/" + name
}

func (s *ghStore) Metadata(ctx context.Context, namespace, name string) (custody.Metadata, error) {
	s.mu.Lock()
	s.calls++
	if dl, ok := ctx.Deadline(); ok {
		s.deadline = time.Until(dl)
	}
	block, err := s.block, s.err
	m, ok := s.meta[namespace+"/"+name]
	if s.torn > 0 && ok {
		s.torn--
		m = custody.Metadata{Version: m.Version + 1, Torn: true}
	}
	s.mu.Unlock()
	if block {
		<-ctx.Done()
		return custody.Metadata{}, ctx.Err()
	}
	if err != nil {
		return custody.Metadata{}, err
	}
	if !ok {
		return custody.Metadata{}, custody.ErrNotFound
	}
	return m, nil
}

func (s *ghStore) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// ghErrReader is a cache that has not synced (or does not cache the type).
type ghErrReader struct{ client.Reader }

func (ghErrReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return errors.New("cache not synced")
}

// ghFixture is a Ready Certificate whose Secret is in custody, consistent
// with its custody record and current CertificateRequest.
type ghFixture struct {
	now    time.Time
	crt    *cmapi.Certificate
	secret *corev1.Secret
	cr     *cmapi.CertificateRequest
	meta   custody.Metadata
	store  *ghStore
	clock  *clocktesting.FakeClock
	reg    *prometheus.Registry
}

func ghNewFixture(t *testing.T) *ghFixture {
	t.Helper()
	now := time.Date(2030, 3, 4, 5, 6, 7, 0, time.UTC)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"web.example.com"}
	notBefore, notAfter := now.Add(-24*time.Hour), now.Add(89*24*time.Hour)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x1f2e3d), DNSNames: names, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	fp := hex.EncodeToString(sum[:])

	nb, na := metav1.NewTime(notBefore), metav1.NewTime(notAfter)
	rt := metav1.NewTime(notAfter.Add(-30 * 24 * time.Hour))
	since := metav1.NewTime(notBefore.Add(time.Minute))
	crt := &cmapi.Certificate{
		TypeMeta:   metav1.TypeMeta{APIVersion: "cert-manager.io/v1", Kind: "Certificate"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", UID: types.UID("uid-web"), Generation: 1},
		Spec: cmapi.CertificateSpec{
			SecretName: "web-tls",
			DNSNames:   names,
			IssuerRef:  cmmeta.IssuerReference{Name: "ca", Kind: "Issuer", Group: "cert-manager.io"},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
		},
		Status: cmapi.CertificateStatus{
			Revision: ptr.To(1), NotBefore: &nb, NotAfter: &na, RenewalTime: &rt,
			Conditions: []cmapi.CertificateCondition{{
				Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue, Reason: "Ready",
				Message: "Certificate is up to date and has not expired", LastTransitionTime: &since, ObservedGeneration: 1,
			}},
		},
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-tls", Namespace: "apps",
			Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault},
			Annotations: map[string]string{
				cmapi.CertificateNameKey: "web", cmapi.IssuerNameAnnotationKey: "ca",
				cmapi.IssuerKindAnnotationKey: "Issuer", cmapi.IssuerGroupAnnotationKey: "cert-manager.io",
				custody.AnnotationPath: "secret/keyward/apps/web-tls", custody.AnnotationVersion: "1",
				custody.AnnotationKeySHA256: fp, custody.AnnotationSerial: cert.SerialNumber.Text(16),
			},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSPrivateKeyKey: {},
			corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		},
	}
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "apps",
			Annotations:     map[string]string{cmapi.CertificateRequestRevisionAnnotationKey: "1"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(crt, cmapi.SchemeGroupVersion.WithKind("Certificate"))},
		},
		Spec: cmapi.CertificateRequestSpec{Request: ghCSR(t, key, names), IssuerRef: crt.Spec.IssuerRef},
	}
	crt.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager: "cert-manager-certificates-readiness", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "cert-manager.io/v1",
		Time: &since, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{"f:notAfter":{}}}`)}, Subresource: "status",
	}}
	meta := custody.Metadata{
		CertificateName: "web", Serial: cert.SerialNumber.Text(16), KeySHA256: fp,
		NotBefore: notBefore, NotAfter: notAfter, Version: 1,
	}
	return &ghFixture{
		now: now, crt: crt, secret: secret, cr: cr, meta: meta,
		store: &ghStore{meta: map[string]custody.Metadata{"apps/web-tls": meta}},
		clock: clocktesting.NewFakeClock(now),
		reg:   prometheus.NewRegistry(),
	}
}

func ghCSR(t *testing.T, key crypto.Signer, names []string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func (f *ghFixture) reader(t *testing.T, objs ...client.Object) client.Reader {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := cmapi.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&cmapi.CertificateRequest{}, guard.CertificateRequestOwnerIndex, guard.ControllerUID).
		Build()
}

func (f *ghFixture) guard(t *testing.T, r client.Reader, opts ...GuardOption) *CertificateGuard {
	t.Helper()
	g, err := NewCertificateGuard(r, f.store, f.clock, f.reg, logr.Discard(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// request is cert-manager's certificates/status UPDATE that applies mutate.
func (f *ghFixture) request(t *testing.T, mutate func(c *cmapi.Certificate)) admission.Request {
	t.Helper()
	newCrt := f.crt.DeepCopy()
	mutate(newCrt)
	// The apiserver records the requester's field ownership before calling
	// mutating webhooks.
	at := metav1.NewTime(f.now)
	newCrt.ManagedFields = append(newCrt.ManagedFields, metav1.ManagedFieldsEntry{
		Manager: "cert-manager-certificates-trigger", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "cert-manager.io/v1",
		Time: &at, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{"f:conditions":{}}}`)}, Subresource: "status",
	})
	oldRaw, err := json.Marshal(f.crt)
	if err != nil {
		t.Fatal(err)
	}
	newRaw, err := json.Marshal(newCrt)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:         "req-1",
		Kind:        metav1.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"},
		Resource:    metav1.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"},
		SubResource: "status",
		Namespace:   "apps", Name: "web",
		Operation: admissionv1.Update,
		Object:    runtime.RawExtension{Raw: newRaw},
		OldObject: runtime.RawExtension{Raw: oldRaw},
	}}
}

func ghSetCond(c *cmapi.Certificate, now time.Time, typ cmapi.CertificateConditionType, status cmmeta.ConditionStatus, reason, msg string) {
	t := metav1.NewTime(now)
	nc := cmapi.CertificateCondition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: &t, ObservedGeneration: c.Generation}
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == typ {
			c.Status.Conditions[i] = nc
			return
		}
	}
	c.Status.Conditions = append(c.Status.Conditions, nc)
}

func (f *ghFixture) issuingMissingData(c *cmapi.Certificate) {
	ghSetCond(c, f.now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "MissingData", "Issuing certificate as Secret does not contain a private key")
}

func (f *ghFixture) readyMissingData(c *cmapi.Certificate) {
	ghSetCond(c, f.now, cmapi.CertificateConditionReady, cmmeta.ConditionFalse, "MissingData", "Issuing certificate as Secret does not contain a private key")
}

// ghApply applies the response's JSON patch to the request's object, as the
// apiserver would, and returns the resulting Certificate.
func ghApply(t *testing.T, req admission.Request, resp admission.Response) *cmapi.Certificate {
	t.Helper()
	raw := req.Object.Raw
	if len(resp.Patch) > 0 {
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("decoding patch: %v", err)
		}
		if raw, err = p.Apply(raw); err != nil {
			t.Fatalf("applying patch: %v", err)
		}
	}
	var out cmapi.Certificate
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func ghCond(c *cmapi.Certificate, typ cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == typ {
			return &c.Status.Conditions[i]
		}
	}
	return nil
}

// ghSwapReader lets a test change what the guard's cache holds.
type ghSwapReader struct{ client.Reader }

// ghLookups reads keyward_guard_custody_lookups_total{result} from reg.
func ghLookups(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keyward_guard_custody_lookups_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series for lookup result %q", result)
	return 0
}

func ghDecisions(t *testing.T, reg *prometheus.Registry, decision string) float64 {
	t.Helper()
	n, err := testutil.GatherAndCount(reg, "keyward_guard_decisions_total")
	if err != nil || n != 4 {
		t.Fatalf("keyward_guard_decisions_total has %d series (%v), want the 4 decisions pre-created", n, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keyward_guard_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "decision" && l.GetValue() == decision {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series for decision %q", decision)
	return 0
}

func TestCertificateGuardHandle(t *testing.T) {
	t.Parallel()
	type result struct {
		decision string
		// patched reports whether a patch is expected.
		patched bool
		check   func(t *testing.T, f *ghFixture, out *cmapi.Certificate)
	}
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption)
		mutate func(f *ghFixture, c *cmapi.Certificate)
		req    func(r *admission.Request)
		want   result
	}{
		{
			name:   "redaction-only Issuing=True is vetoed",
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want: result{decision: GuardDecisionVeto, patched: true, check: func(t *testing.T, f *ghFixture, out *cmapi.Certificate) {
				if c := ghCond(out, cmapi.CertificateConditionIssuing); c != nil {
					t.Fatalf("Issuing = %+v after the patch, want none", c)
				}
				if !ghConditionsEqual(out, f.crt) {
					t.Fatalf("conditions after the patch %+v, want the stored %+v", out.Status.Conditions, f.crt.Status.Conditions)
				}
				if !ghJSONEqual(out.ManagedFields, f.crt.ManagedFields) {
					t.Fatalf("managedFields after a no-op veto %+v, want the stored ones %+v", out.ManagedFields, f.crt.ManagedFields)
				}
			}},
		},
		{
			name:   "redaction-only Ready=False keeps Ready=True",
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.readyMissingData(c) },
			want: result{decision: GuardDecisionVeto, patched: true, check: func(t *testing.T, f *ghFixture, out *cmapi.Certificate) {
				c := ghCond(out, cmapi.CertificateConditionReady)
				if c == nil || c.Status != cmmeta.ConditionTrue || c.Message != guard.ReadyMessage ||
					!c.LastTransitionTime.Equal(f.crt.Status.Conditions[0].LastTransitionTime) {
					t.Fatalf("Ready = %+v, want True since %v with the custody message", c, f.crt.Status.Conditions[0].LastTransitionTime)
				}
				// The message changed: a real write, ownership as the apiserver recorded it.
				if len(out.ManagedFields) != 2 {
					t.Fatalf("managedFields %+v, want the requester's entry kept", out.ManagedFields)
				}
			}},
		},
		{
			name: "renewal due passes as Renewing",
			setup: func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) {
				f.clock.SetTime(f.now.Add(80 * 24 * time.Hour))
				return nil, nil
			},
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want: result{decision: GuardDecisionPassRewritten, patched: true, check: func(t *testing.T, _ *ghFixture, out *cmapi.Certificate) {
				c := ghCond(out, cmapi.CertificateConditionIssuing)
				if c == nil || c.Status != cmmeta.ConditionTrue || c.Reason != "Renewing" {
					t.Fatalf("Issuing = %+v, want True/Renewing", c)
				}
			}},
		},
		{
			name: "the current CertificateRequest is found in the cache (another key: SecretMismatch)",
			setup: func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) {
				other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				f.cr.Spec.Request = ghCSR(t, other, f.crt.Spec.DNSNames)
				return nil, nil
			},
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want: result{decision: GuardDecisionPassRewritten, patched: true, check: func(t *testing.T, _ *ghFixture, out *cmapi.Certificate) {
				if c := ghCond(out, cmapi.CertificateConditionIssuing); c == nil || c.Reason != "SecretMismatch" {
					t.Fatalf("Issuing = %+v, want SecretMismatch", c)
				}
			}},
		},
		{
			name: "strict mode first issuance (no status.revision yet): the request for the key is used",
			setup: func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) {
				f.crt.Status.Revision, f.crt.Status.NotBefore, f.crt.Status.NotAfter, f.crt.Status.RenewalTime = nil, nil, nil, nil
				f.crt.Status.Conditions = nil
				ghSetCond(f.crt, f.now, cmapi.CertificateConditionReady, cmmeta.ConditionFalse, "DoesNotExist", "Issuing certificate as Secret does not exist")
				f.secret.Data[corev1.TLSCertKey] = []byte{}
				f.secret.Annotations[custody.AnnotationNotBefore] = f.meta.NotBefore.Format(time.RFC3339)
				f.secret.Annotations[custody.AnnotationNotAfter] = f.meta.NotAfter.Format(time.RFC3339)
				return nil, nil
			},
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.readyMissingData(c) },
			want: result{decision: GuardDecisionVeto, patched: true, check: func(t *testing.T, f *ghFixture, out *cmapi.Certificate) {
				if c := ghCond(out, cmapi.CertificateConditionReady); c == nil || c.Status != cmmeta.ConditionTrue {
					t.Fatalf("Ready = %+v, want True", c)
				}
				if out.Status.NotAfter == nil || !out.Status.NotAfter.Time.Equal(f.meta.NotAfter) || out.Status.RenewalTime == nil {
					t.Fatalf("times = %v / %v, want notAfter %s and a renewal time", out.Status.NotAfter, out.Status.RenewalTime, f.meta.NotAfter)
				}
			}},
		},
		{
			name: "requests of other revisions or owners are ignored",
			setup: func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) {
				stale := f.cr.DeepCopy()
				stale.Name, stale.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] = "web-0", "0"
				stale.Spec.Request = []byte("junk")
				foreign := f.cr.DeepCopy()
				foreign.Name, foreign.OwnerReferences[0].UID = "other-1", "uid-other"
				foreign.Spec.Request = []byte("junk")
				return f.reader(t, f.secret, f.cr, stale, foreign), nil
			},
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want:   result{decision: GuardDecisionVeto, patched: true},
		},
		{
			name: "two requests for the current revision fail open",
			setup: func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) {
				dup := f.cr.DeepCopy()
				dup.Name = "web-1-dup"
				return f.reader(t, f.secret, f.cr, dup), nil
			},
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want:   result{decision: GuardDecisionFailOpen},
		},
		{
			name:  "manual renewal is allowed untouched without any lookup",
			setup: func(t *testing.T, _ *ghFixture) (client.Reader, []GuardOption) { return ghErrReader{}, nil },
			mutate: func(f *ghFixture, c *cmapi.Certificate) {
				ghSetCond(c, f.now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "ManuallyTriggered", "manual")
			},
			want: result{decision: GuardDecisionPass},
		},
		{
			name:   "Secret not in the cache: pass",
			setup:  func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) { return f.reader(t, f.cr), nil },
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want:   result{decision: GuardDecisionPass},
		},
		{
			name: "Secret not in custody: pass without asking Vault",
			setup: func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) {
				delete(f.secret.Labels, custody.LabelCustody)
				return nil, nil
			},
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want: result{decision: GuardDecisionPass, check: func(t *testing.T, f *ghFixture, _ *cmapi.Certificate) {
				if n := f.store.callCount(); n != 0 {
					t.Fatalf("store called %d times for a Secret not in custody", n)
				}
			}},
		},
		{
			name:   "no custody record: pass",
			setup:  func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) { f.store.meta = nil; return nil, nil },
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.readyMissingData(c) },
			want:   result{decision: GuardDecisionPass},
		},
		{
			name:   "cache not synced: fail open",
			setup:  func(t *testing.T, _ *ghFixture) (client.Reader, []GuardOption) { return ghErrReader{}, nil },
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want:   result{decision: GuardDecisionFailOpen},
		},
		{
			name: "Vault down: fail open",
			setup: func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) {
				f.store.err = errors.New("connection refused")
				return nil, nil
			},
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want:   result{decision: GuardDecisionFailOpen},
		},
		{
			name: "Vault hanging: fail open within the lookup timeout",
			setup: func(t *testing.T, f *ghFixture) (client.Reader, []GuardOption) {
				f.store.block = true
				return nil, []GuardOption{WithGuardLookupTimeout(50 * time.Millisecond)}
			},
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			want: result{decision: GuardDecisionFailOpen, check: func(t *testing.T, f *ghFixture, _ *cmapi.Certificate) {
				if f.store.deadline <= 0 || f.store.deadline > 50*time.Millisecond {
					t.Fatalf("store call had %v left, want a deadline within the 50ms lookup timeout", f.store.deadline)
				}
			}},
		},
		{
			name:   "undecodable object: fail open",
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			req:    func(r *admission.Request) { r.Object.Raw = []byte("{") },
			want:   result{decision: GuardDecisionFailOpen},
		},
		{
			name:   "not the status subresource: pass",
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			req:    func(r *admission.Request) { r.SubResource = "" },
			want:   result{decision: GuardDecisionPass},
		},
		{
			name:   "another kind: pass",
			mutate: func(f *ghFixture, c *cmapi.Certificate) { f.issuingMissingData(c) },
			req:    func(r *admission.Request) { r.Kind.Kind = "CertificateRequest" },
			want:   result{decision: GuardDecisionPass},
		},
	}
	for _, tc := range tests {
		// Every case runs with the requests listed by namespace and through
		// the owner index; the answers must not differ.
		for _, indexed := range []bool{false, true} {
			name := tc.name
			if indexed {
				name += " (owner index)"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := ghNewFixture(t)
				var r client.Reader
				var opts []GuardOption
				if tc.setup != nil {
					r, opts = tc.setup(t, f)
				}
				if r == nil {
					r = f.reader(t, f.secret, f.cr)
				}
				if indexed {
					opts = append(opts, WithGuardOwnerIndex())
				}
				g := f.guard(t, r, opts...)
				req := f.request(t, func(c *cmapi.Certificate) { tc.mutate(f, c) })
				if tc.req != nil {
					tc.req(&req)
				}

				resp := g.Handle(context.Background(), req)

				if !resp.Allowed {
					t.Fatalf("request denied (%v): the guard must never deny", resp.Result)
				}
				if got := ghDecisions(t, f.reg, tc.want.decision); got != 1 {
					t.Fatalf("decision %q counted %v times, want 1", tc.want.decision, got)
				}
				if (len(resp.Patch) > 0) != tc.want.patched || len(resp.Patches) != 0 {
					t.Fatalf("patch = %s (ops %v), want patched=%v", resp.Patch, resp.Patches, tc.want.patched)
				}
				if tc.want.patched {
					var ops []map[string]any
					if err := json.Unmarshal(resp.Patch, &ops); err != nil || len(ops) == 0 || ops[0]["path"] != "/status" ||
						(len(ops) == 2 && ops[1]["path"] != "/metadata/managedFields") || len(ops) > 2 {
						t.Fatalf("patch %s, want /status and at most /metadata/managedFields", resp.Patch)
					}
					if len(resp.Warnings) != 1 || !strings.HasPrefix(resp.Warnings[0], "keyward: ") {
						t.Fatalf("warnings %v, want one keyward warning", resp.Warnings)
					}
				}
				if tc.want.check != nil {
					tc.want.check(t, f, ghApply(t, req, resp))
				}
			})
		}
	}
}

func ghJSONEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func ghConditionsEqual(a, b *cmapi.Certificate) bool {
	x, _ := json.Marshal(a.Status.Conditions)
	y, _ := json.Marshal(b.Status.Conditions)
	return string(x) == string(y)
}

func TestCertificateGuardRereadsTornRecords(t *testing.T) {
	t.Parallel()
	// A record read between its data and metadata writes (a two-call store) is read again.
	f := ghNewFixture(t)
	f.store.torn = 2
	g := f.guard(t, f.reader(t, f.secret, f.cr), WithGuardCacheTTL(time.Minute))
	if resp := g.Handle(context.Background(), f.request(t, f.issuingMissingData)); len(resp.Patch) == 0 {
		t.Fatalf("torn twice, then whole: want a veto, got %v", resp.Result)
	}
	if n := f.store.callCount(); n != 3 {
		t.Fatalf("store called %d times, want 3 (two torn answers, then the record)", n)
	}

	// A record that stays torn (an interrupted write) is decided on as it
	// is and never remembered.
	f = ghNewFixture(t)
	f.store.torn = 100
	g = f.guard(t, f.reader(t, f.secret, f.cr), WithGuardCacheTTL(time.Minute))
	req := f.request(t, f.issuingMissingData)
	g.Handle(context.Background(), req)
	first := f.store.callCount()
	if first != 1+guard.TornRetries {
		t.Fatalf("store called %d times for a record that stays torn, want %d", first, 1+guard.TornRetries)
	}
	g.Handle(context.Background(), req)
	if n := f.store.callCount(); n != 2*first {
		t.Fatalf("store called %d times after a second request, want %d: a torn record must not be cached", n, 2*first)
	}
}

func TestCertificateGuardRereadsTheSecretBeforeAVeto(t *testing.T) {
	t.Parallel()
	// The cache still shows the placeholder; the API already has it
	// released (custody annotations and label removed by the audit).
	f := ghNewFixture(t)
	released := f.secret.DeepCopy()
	released.ResourceVersion = "999"
	delete(released.Labels, custody.LabelCustody)
	for _, k := range []string{custody.AnnotationPath, custody.AnnotationVersion, custody.AnnotationKeySHA256} {
		delete(released.Annotations, k)
	}
	cached := f.reader(t, f.secret, f.cr)
	live := f.reader(t, released, f.cr)
	req := f.request(t, f.issuingMissingData)

	if resp := f.guard(t, cached).Handle(context.Background(), req); len(resp.Patch) == 0 {
		t.Fatal("without a live reader the cached placeholder is vetoed (the stale view this test guards against)")
	}
	f2 := ghNewFixture(t)
	f2.secret, f2.cr, f2.crt = f.secret, f.cr, f.crt
	if resp := f2.guard(t, cached, WithGuardLiveReader(live)).Handle(context.Background(), req); len(resp.Patch) != 0 {
		t.Fatalf("live Secret released: want the issuance let through, got a patch %s", resp.Patch)
	}
	// Unchanged Secret: the live read confirms the veto.
	f3 := ghNewFixture(t)
	r3 := f3.reader(t, f3.secret, f3.cr)
	if resp := f3.guard(t, r3, WithGuardLiveReader(r3)).Handle(context.Background(), f3.request(t, f3.issuingMissingData)); len(resp.Patch) == 0 {
		t.Fatal("live Secret unchanged: want the veto")
	}
}

func TestCertificateGuardUsesStaleAnswerWhenVaultIsDown(t *testing.T) {
	t.Parallel()
	f := ghNewFixture(t)
	g := f.guard(t, f.reader(t, f.secret, f.cr), WithGuardCacheTTL(30*time.Second))
	req := f.request(t, f.issuingMissingData)
	if resp := g.Handle(context.Background(), req); len(resp.Patch) == 0 {
		t.Fatal("expected a veto with Vault up")
	}

	// Vault goes down after the answer expired: the same record's last
	// answer still decides, so a valid certificate keeps Ready.
	f.store.mu.Lock()
	f.store.err = errors.New("vault: connection refused")
	f.store.mu.Unlock()
	f.clock.Step(10 * time.Minute)
	if resp := g.Handle(context.Background(), req); len(resp.Patch) == 0 {
		t.Fatalf("Vault down, answer 10 min stale: want a veto, got %v", resp.Result)
	}
	if n := ghLookups(t, f.reg, guard.LookupStale); n != 1 {
		t.Fatalf("stale lookups = %v, want 1", n)
	}

	// Past guard.StaleMax the guard no longer trusts it and fails open.
	f.clock.Step(guard.StaleMax)
	if resp := g.Handle(context.Background(), req); len(resp.Patch) != 0 {
		t.Fatalf("Vault down, answer older than guard.StaleMax: want fail open, got a patch")
	}
	if n := ghDecisions(t, f.reg, GuardDecisionFailOpen); n != 1 {
		t.Fatalf("fail_open decisions = %v, want 1", n)
	}
}

func TestCertificateGuardCachesCustodyMetadata(t *testing.T) {
	t.Parallel()
	f := ghNewFixture(t)
	r := &ghSwapReader{Reader: f.reader(t, f.secret, f.cr)}
	g := f.guard(t, r, WithGuardCacheTTL(time.Minute))
	req := f.request(t, f.issuingMissingData)

	for range 5 {
		if resp := g.Handle(context.Background(), req); len(resp.Patch) == 0 {
			t.Fatal("expected a veto")
		}
	}
	if n := f.store.callCount(); n != 1 {
		t.Fatalf("store called %d times for 5 identical requests within the TTL, want 1", n)
	}
	if hits := ghLookups(t, f.reg, guard.LookupCacheHit); hits != 4 {
		t.Fatalf("cache hits = %v, want 4", hits)
	}

	f.clock.Step(time.Minute)
	g.Handle(context.Background(), req)
	if n := f.store.callCount(); n != 2 {
		t.Fatalf("store called %d times after the TTL expired, want 2", n)
	}

	// A new custody version (new issuance) is a new key: no stale answer.
	s := f.secret.DeepCopy()
	s.Annotations[custody.AnnotationVersion] = "2"
	r.Reader = f.reader(t, s, f.cr)
	g.Handle(context.Background(), req)
	if n := f.store.callCount(); n != 3 {
		t.Fatalf("store called %d times after the custody version changed, want 3", n)
	}

	// A deleted and re-created record restarts at version 1, but the new
	// issuance has another serial: no stale answer either.
	s = f.secret.DeepCopy()
	s.Annotations[custody.AnnotationSerial] = "abcdef"
	r.Reader = f.reader(t, s, f.cr)
	g.Handle(context.Background(), req)
	if n := f.store.callCount(); n != 4 {
		t.Fatalf("store called %d times after the serial changed under the same version, want 4", n)
	}
}

func TestCertificateGuardFailsOpenOnStoreErrorWithoutCaching(t *testing.T) {
	t.Parallel()
	f := ghNewFixture(t)
	f.store.err = errors.New("vault sealed")
	g := f.guard(t, f.reader(t, f.secret, f.cr))
	req := f.request(t, f.issuingMissingData)
	g.Handle(context.Background(), req)
	f.store.mu.Lock()
	f.store.err = nil
	f.store.mu.Unlock()
	if resp := g.Handle(context.Background(), req); len(resp.Patch) == 0 {
		t.Fatal("after Vault recovered the guard must decide again, not reuse the error")
	}
	if got := ghLookups(t, f.reg, guard.LookupError); got != 1 {
		t.Fatalf("lookup errors = %v, want 1", got)
	}
}

func TestNewCertificateGuard(t *testing.T) {
	t.Parallel()
	f := ghNewFixture(t)
	r := f.reader(t)
	if _, err := NewCertificateGuard(nil, f.store, f.clock, nil, logr.Discard()); err == nil {
		t.Fatal("nil reader accepted")
	}
	if _, err := NewCertificateGuard(r, nil, f.clock, nil, logr.Discard()); err == nil {
		t.Fatal("nil store accepted")
	}
	g1 := f.guard(t, r)
	g2 := f.guard(t, r) // same registry: collectors are shared, not an error
	g1.decisions.WithLabelValues(GuardDecisionVeto).Inc()
	if got := testutil.ToFloat64(g2.decisions.WithLabelValues(GuardDecisionVeto)); got != 1 {
		t.Fatalf("second guard sees %v vetoes, want the shared counter's 1", got)
	}
	if g1.timeout != DefaultGuardLookupTimeout {
		t.Fatalf("default timeout=%v", g1.timeout)
	}
	// A collector of the same name but another shape is a real conflict.
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "keyward_guard_decisions_total", Help: "x"}))
	if _, err := NewCertificateGuard(r, f.store, f.clock, reg, logr.Discard()); err == nil {
		t.Fatal("conflicting metric accepted")
	}
}

// TestCertificateGuardPrimedByScrubWrites: a record the scrub webhook just
// wrote is decided on without a Vault read; a primed entry that does not
// match what the placeholder names is never used.
func TestCertificateGuardPrimedByScrubWrites(t *testing.T) {
	t.Parallel()
	f := ghNewFixture(t)
	g := f.guard(t, f.reader(t, f.secret, f.cr), WithGuardCacheTTL(time.Minute))
	req := f.request(t, f.issuingMissingData)

	// Version in the annotations differs from the record's: ignored.
	other := f.secret.DeepCopy()
	other.Annotations[custody.AnnotationVersion] = "7"
	g.Prime(other, f.meta)
	g.Prime(f.secret, custody.Metadata{Version: 1, Torn: true})
	if got := ghLookups(t, f.reg, guard.LookupPrimed); got != 0 {
		t.Fatalf("primed = %v after a mismatched and a torn record, want 0", got)
	}

	g.Prime(f.secret, f.meta)
	if resp := g.Handle(context.Background(), req); len(resp.Patch) == 0 {
		t.Fatalf("want a veto from the primed record, got %+v", resp.Result)
	}
	if n := f.store.callCount(); n != 0 {
		t.Fatalf("store read %d times after priming, want 0", n)
	}
	if got := ghLookups(t, f.reg, guard.LookupPrimed); got != 1 {
		t.Fatalf("primed = %v, want 1", got)
	}

	// A primed answer expires like any other.
	f.clock.Step(time.Minute)
	g.Handle(context.Background(), req)
	if n := f.store.callCount(); n != 1 {
		t.Fatalf("store read %d times after the primed answer expired, want 1", n)
	}

	// Without a cache there is nothing to prime.
	g2 := f.guard(t, f.reader(t, f.secret, f.cr), WithGuardCacheTTL(0))
	g2.Prime(f.secret, f.meta)
	before := f.store.callCount()
	g2.Handle(context.Background(), req)
	if n := f.store.callCount(); n != before+1 {
		t.Fatalf("cache disabled: store read %d times after Prime, want 1 (nothing primed)", n-before)
	}
	if got := ghLookups(t, f.reg, guard.LookupPrimed); got != 1 {
		t.Fatalf("cache disabled: primed = %v, want still 1", got)
	}
}

// TestCertificateGuardCompletesIssuanceOnTheLiveSecret: the issuing
// controller's last write of a first issuance arrives before the guard's
// cache has the new Secret; the guard reads it live and makes the
// Certificate Ready in that write.
func TestCertificateGuardCompletesIssuanceOnTheLiveSecret(t *testing.T) {
	t.Parallel()
	f := ghNewFixture(t)
	// Stored: a first issuance under way.
	f.crt.Status = cmapi.CertificateStatus{}
	ghSetCond(f.crt, f.now.Add(-time.Minute), cmapi.CertificateConditionReady, cmmeta.ConditionFalse, "DoesNotExist", "Issuing certificate as Secret does not exist")
	ghSetCond(f.crt, f.now.Add(-time.Minute), cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "DoesNotExist", "Issuing certificate as Secret does not exist")
	complete := func(c *cmapi.Certificate) {
		c.Status.Conditions = c.Status.Conditions[:1]
		c.Status.Revision = ptr.To(1)
	}
	req := f.request(t, complete)
	cached := f.reader(t, f.cr) // the new Secret is not in the cache yet
	live := f.reader(t, f.secret, f.cr)

	if resp := f.guard(t, cached).Handle(context.Background(), req); len(resp.Patch) != 0 {
		t.Fatalf("without the Secret the guard must leave the write alone, got a patch %s", resp.Patch)
	}
	g := f.guard(t, cached, WithGuardLiveReader(live))
	resp := g.Handle(context.Background(), req)
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("want the write completed with Ready=True, got allowed=%v patch=%s", resp.Allowed, resp.Patch)
	}
	got := ghApply(t, req, resp)
	if c := ghCond(got, cmapi.CertificateConditionReady); c == nil || c.Status != cmmeta.ConditionTrue || c.Message != guard.ReadyMessage {
		t.Fatalf("Ready = %+v, want True with the custody message", c)
	}
	if ghCond(got, cmapi.CertificateConditionIssuing) != nil || got.Status.Revision == nil || *got.Status.Revision != 1 || got.Status.NotAfter == nil || got.Status.RenewalTime == nil {
		t.Fatalf("status %+v: want the issuing controller's changes kept and the times set", got.Status)
	}
	if n := ghDecisions(t, f.reg, GuardDecisionPassRewritten); n != 1 {
		t.Fatalf("pass_rewritten decisions = %v, want 1", n)
	}
}

// TestCertificateGuardVetoesOnTheLiveSecretWhenTheCacheLags: the key was
// just moved to custody, cert-manager (whose informer saw the placeholder)
// reports MissingData, but the guard's cache still holds the Secret as it
// was before the scrub. The guard reads it live and vetoes instead of
// letting the redaction-induced change through.
func TestCertificateGuardVetoesOnTheLiveSecretWhenTheCacheLags(t *testing.T) {
	t.Parallel()
	f := ghNewFixture(t)
	before := f.secret.DeepCopy()
	before.ResourceVersion = "998"
	delete(before.Labels, custody.LabelCustody)
	for _, k := range custody.Annotations() {
		delete(before.Annotations, k)
	}
	before.Data[corev1.TLSPrivateKeyKey] = []byte("-----BEGIN PRIVATE KEY-----\n(the key before the scrub)\n-----END PRIVATE KEY-----\n")
	cached := f.reader(t, before, f.cr)
	live := f.reader(t, f.secret, f.cr)
	req := f.request(t, f.issuingMissingData)

	if resp := f.guard(t, cached).Handle(context.Background(), req); len(resp.Patch) != 0 {
		t.Fatalf("without a live reader the lagging cache lets the change through (what this test guards against); got a patch %s", resp.Patch)
	}
	// The same fixture (its store holds the record of f.secret's key).
	if resp := f.guard(t, cached, WithGuardLiveReader(live)).Handle(context.Background(), req); len(resp.Patch) == 0 {
		t.Fatal("live Secret is the placeholder: want the veto")
	}
	if n := ghDecisions(t, f.reg, GuardDecisionVeto); n != 1 {
		t.Fatalf("veto decisions = %v, want 1", n)
	}
}

// ghCountingReader counts Gets of Secrets.
type ghCountingReader struct {
	client.Reader
	mu      sync.Mutex
	secrets int
}

func (r *ghCountingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok {
		r.mu.Lock()
		r.secrets++
		r.mu.Unlock()
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

func (r *ghCountingReader) secretGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.secrets
}

// TestCertificateGuardDoesNotExistWhileThePlaceholderExists: cert-manager's
// trigger asks for an issuance because its cache has no Secret, while the
// placeholder exists (restored by adoption, or written by an issuance that
// just completed). The guard drops that issuance; on the trigger's first
// look at a Certificate whose Secret it has never written, it reads nothing.
func TestCertificateGuardDoesNotExistWhileThePlaceholderExists(t *testing.T) {
	t.Parallel()
	doesNotExist := func(c *cmapi.Certificate) {
		ghSetCond(c, time.Now(), cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "DoesNotExist", "Issuing certificate as Secret does not exist")
	}
	for _, fresh := range []bool{false, true} {
		f := ghNewFixture(t)
		if fresh {
			// A Certificate just created next to a restored placeholder.
			f.crt.Status = cmapi.CertificateStatus{}
			ghSetCond(f.crt, f.now.Add(-time.Second), cmapi.CertificateConditionReady, cmmeta.ConditionFalse, "DoesNotExist", "Issuing certificate as Secret does not exist")
		}
		req := f.request(t, doesNotExist)

		// The guard's cache holds the placeholder: the issuance is dropped.
		if resp := f.guard(t, f.reader(t, f.secret, f.cr)).Handle(context.Background(), req); len(resp.Patch) == 0 {
			t.Fatalf("fresh=%v: placeholder in the cache: want the issuance dropped, got %+v", fresh, resp.Result)
		} else if c := ghCond(ghApply(t, req, resp), cmapi.CertificateConditionIssuing); c != nil {
			t.Fatalf("fresh=%v: Issuing = %+v after the veto, want none", fresh, c)
		}

		// Neither cache has the Secret and this guard wrote no custody
		// record for it: no live read, the update passes.
		cached := f.reader(t, f.cr)
		live := &ghCountingReader{Reader: f.reader(t, f.secret, f.cr)}
		g := f.guard(t, cached, WithGuardLiveReader(live), WithGuardCacheTTL(time.Minute))
		if resp := g.Handle(context.Background(), req); !resp.Allowed || len(resp.Patch) != 0 {
			t.Fatalf("fresh=%v: Secret unknown to this guard: want the update through unmodified, got patch %s", fresh, resp.Patch)
		}
		if n := live.secretGets(); n != 0 {
			t.Fatalf("fresh=%v: %d live Secret reads for an issuance whose Secret this guard never wrote, want 0", fresh, n)
		}
		// The same guard's process has just written the record (the
		// adopter's or the scrub webhook's write primes it): the lagging
		// cache is not believed, the live placeholder is.
		g.Prime(f.secret, f.meta)
		resp := g.Handle(context.Background(), req)
		if len(resp.Patch) == 0 {
			t.Fatalf("fresh=%v: primed write, placeholder live: want the issuance dropped, got %+v", fresh, resp.Result)
		}
		if n := live.secretGets(); n != 1 {
			t.Fatalf("fresh=%v: %d live Secret reads after a primed write, want 1", fresh, n)
		}
		if c := ghCond(ghApply(t, req, resp), cmapi.CertificateConditionIssuing); c != nil {
			t.Fatalf("fresh=%v: Issuing = %+v after the veto, want none", fresh, c)
		}
		// The hint lasts as long as the cache TTL.
		f.clock.Step(time.Minute)
		g.Handle(context.Background(), req)
		if n := live.secretGets(); n != 1 {
			t.Fatalf("fresh=%v: %d live Secret reads after the hint expired, want still 1", fresh, n)
		}
	}
}
