// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/scrubber"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// scrubFakeStore is an in-memory custody.Store that can be told to fail.
type scrubFakeStore struct {
	mu      sync.Mutex
	records map[string]custody.Record
	version map[string]int
	putErr  error
	puts    int
}

func newScrubFakeStore() *scrubFakeStore {
	return &scrubFakeStore{records: map[string]custody.Record{}, version: map[string]int{}}
}

func (f *scrubFakeStore) Put(_ context.Context, rec custody.Record, cas int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if f.putErr != nil {
		return 0, f.putErr
	}
	k := rec.Namespace + "/" + rec.Name
	if cas >= 0 && cas != f.version[k] {
		return 0, fmt.Errorf("cas %d, current %d: %w", cas, f.version[k], custody.ErrConflict)
	}
	f.version[k]++
	rec.Meta.Version = f.version[k]
	f.records[k] = rec
	return f.version[k], nil
}

func (f *scrubFakeStore) Metadata(_ context.Context, ns, name string) (custody.Metadata, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.records[ns+"/"+name]
	if !ok {
		return custody.Metadata{}, custody.ErrNotFound
	}
	return r.Meta, nil
}

func (f *scrubFakeStore) Delete(_ context.Context, ns, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.records, ns+"/"+name)
	return nil
}

func (f *scrubFakeStore) Path(ns, name string) string { return "custody/tls/" + ns + "/" + name }

type scrubTPair struct {
	keyPEM, certPEM []byte
	cert            *x509.Certificate
}

func scrubTNewPair(t *testing.T) scrubTPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "web.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	return scrubTPair{
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		cert:    cert,
	}
}

func scrubTSecret(p scrubTPair) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-tls", Annotations: map[string]string{scrubber.AnnotationCertificateName: "web"}},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.key": p.keyPEM, "tls.crt": p.certPEM, "ca.crt": p.certPEM},
	}
}

func scrubTRequest(t *testing.T, s *corev1.Secret, op admissionv1.Operation, dryRun bool) admission.Request {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Secret"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "secrets"},
		Namespace: s.Namespace,
		Name:      s.Name,
		Operation: op,
		Object:    runtime.RawExtension{Raw: raw},
		DryRun:    ptr.To(dryRun),
	}}
}

// applyScrubPatch applies the response's patch to the request's object.
func applyScrubPatch(t *testing.T, req admission.Request, resp admission.Response) *corev1.Secret {
	t.Helper()
	ops, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(req.Object.Raw)
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func newScrubHandler(t *testing.T, store custody.Store, strict bool) (*SecretScrubber, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000+int64(time.Now().UnixNano()%1_000_000), 0))
	s, err := scrubber.NewScrubber(store, clk, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewSecretScrubber(s, scrubber.FixedStrictMode(strict))
	if err != nil {
		t.Fatal(err)
	}
	return h, clk
}

func TestSecretScrubber(t *testing.T) {
	t.Parallel()
	pair := scrubTNewPair(t)
	sum := sha256.Sum256(pair.cert.RawSubjectPublicKeyInfo)
	fp := hex.EncodeToString(sum[:])

	t.Run("scrubs after the custody write", func(t *testing.T) {
		t.Parallel()
		store := newScrubFakeStore()
		h, clk := newScrubHandler(t, store, false)
		req := scrubTRequest(t, scrubTSecret(pair), admissionv1.Create, false)
		resp := h.Handle(context.Background(), req)
		if !resp.Allowed || len(resp.Patches) == 0 {
			t.Fatalf("response = %+v, want allowed with patch", resp.Result)
		}
		got := applyScrubPatch(t, req, resp)
		if v, ok := got.Data["tls.key"]; !ok || len(v) != 0 {
			t.Errorf("tls.key not emptied")
		}
		if string(got.Data["tls.crt"]) != string(pair.certPEM) {
			t.Errorf("tls.crt changed")
		}
		want := map[string]string{
			custody.AnnotationPath:       "custody/tls/team-a/web-tls",
			custody.AnnotationVersion:    "1",
			custody.AnnotationKeySHA256:  fp,
			custody.AnnotationScrubbedBy: "webhook",
			custody.AnnotationScrubbedAt: clk.Now().UTC().Format(time.RFC3339Nano),
			custody.AnnotationSerial:     pair.cert.SerialNumber.Text(16),
		}
		for k, v := range want {
			if got.Annotations[k] != v {
				t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
			}
		}
		if got.Labels[custody.LabelCustody] != custody.LabelCustodyVault {
			t.Errorf("custody label missing")
		}
		for _, op := range resp.Patches {
			if !strings.HasPrefix(op.Path, "/data") && !strings.HasPrefix(op.Path, "/metadata/annotations") && !strings.HasPrefix(op.Path, "/metadata/labels") {
				t.Errorf("patch touches %s", op.Path)
			}
		}
		rec := store.records["team-a/web-tls"]
		if string(rec.Key) != string(pair.keyPEM) || rec.Meta.KeySHA256 != fp {
			t.Errorf("custody record does not hold the key")
		}
		// The patch must not carry the key anywhere.
		if b, _ := json.Marshal(resp.Patches); strings.Contains(string(b), base64.StdEncoding.EncodeToString(pair.keyPEM)) {
			t.Errorf("patch carries the key")
		}

		// An update with a new key writes the next version with check-and-set.
		pair2 := scrubTNewPair(t)
		s2 := got.DeepCopy()
		s2.Data["tls.key"], s2.Data["tls.crt"] = pair2.keyPEM, pair2.certPEM
		req2 := scrubTRequest(t, s2, admissionv1.Update, false)
		resp2 := h.Handle(context.Background(), req2)
		if !resp2.Allowed {
			t.Fatalf("update denied: %v", resp2.Result)
		}
		if v := applyScrubPatch(t, req2, resp2).Annotations[custody.AnnotationVersion]; v != "2" {
			t.Errorf("custody version = %q, want 2", v)
		}
	})

	t.Run("store failure denies without patch", func(t *testing.T) {
		t.Parallel()
		store := newScrubFakeStore()
		store.putErr = errors.New("vault sealed")
		h, _ := newScrubHandler(t, store, false)
		resp := h.Handle(context.Background(), scrubTRequest(t, scrubTSecret(pair), admissionv1.Create, false))
		if resp.Allowed || len(resp.Patches) != 0 || resp.PatchType != nil {
			t.Fatalf("allowed=%v patches=%d, want denied without patch", resp.Allowed, len(resp.Patches))
		}
		msg := resp.Result.Message
		for _, want := range []string{"team-a/web-tls", "fail closed", "vault sealed"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		if resp.Result.Code != 503 {
			t.Errorf("code = %d, want 503", resp.Result.Code)
		}
	})

	t.Run("conflict denies", func(t *testing.T) {
		t.Parallel()
		store := newScrubFakeStore()
		store.putErr = fmt.Errorf("vault: %w", custody.ErrConflict)
		h, _ := newScrubHandler(t, store, false)
		resp := h.Handle(context.Background(), scrubTRequest(t, scrubTSecret(pair), admissionv1.Update, false))
		if resp.Allowed || len(resp.Patches) != 0 || resp.Result.Code != 409 {
			t.Fatalf("allowed=%v code=%d, want 409 denial", resp.Allowed, resp.Result.Code)
		}
	})

	t.Run("invalid key is denied naming the secret", func(t *testing.T) {
		t.Parallel()
		store := newScrubFakeStore()
		h, _ := newScrubHandler(t, store, false)
		s := scrubTSecret(pair)
		s.Data["tls.crt"] = scrubTNewPair(t).certPEM
		resp := h.Handle(context.Background(), scrubTRequest(t, s, admissionv1.Create, false))
		if resp.Allowed || store.puts != 0 {
			t.Fatalf("allowed=%v puts=%d", resp.Allowed, store.puts)
		}
		want := "keyward: secret team-a/web-tls not admitted: planning custody for secret team-a/web-tls: tls.key: private key does not match the certificate's public key"
		if !strings.HasPrefix(resp.Result.Message, want) {
			t.Errorf("message = %q, want prefix %q", resp.Result.Message, want)
		}
	})

	t.Run("key-bearing output formats are denied", func(t *testing.T) {
		t.Parallel()
		store := newScrubFakeStore()
		h, _ := newScrubHandler(t, store, false)
		s := scrubTSecret(pair)
		s.Data["keystore.p12"] = []byte("p12")
		resp := h.Handle(context.Background(), scrubTRequest(t, s, admissionv1.Create, false))
		if resp.Allowed || store.puts != 0 || len(resp.Patches) != 0 {
			t.Fatalf("allowed=%v puts=%d", resp.Allowed, store.puts)
		}
		want := "keyward: secret team-a/web-tls not admitted: planning custody for secret team-a/web-tls: keystore.p12: key-bearing output formats are not supported under key custody: remove additionalOutputFormats and keystores from Certificate web and build them from the custody record"
		if resp.Result.Message != want {
			t.Errorf("message = %q\nwant %q", resp.Result.Message, want)
		}
	})

	t.Run("dry run leaves the store untouched", func(t *testing.T) {
		t.Parallel()
		store := newScrubFakeStore()
		h, _ := newScrubHandler(t, store, false)
		resp := h.Handle(context.Background(), scrubTRequest(t, scrubTSecret(pair), admissionv1.Create, true))
		if !resp.Allowed || len(resp.Patches) != 0 {
			t.Fatalf("allowed=%v patches=%d, want allowed unmodified", resp.Allowed, len(resp.Patches))
		}
		if store.puts != 0 || len(store.records) != 0 {
			t.Errorf("dry run wrote to the store")
		}
		if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "dry run") {
			t.Errorf("warnings = %v", resp.Warnings)
		}
	})

	t.Run("already scrubbed is untouched", func(t *testing.T) {
		t.Parallel()
		store := newScrubFakeStore()
		h, _ := newScrubHandler(t, store, false)
		s := scrubTSecret(pair)
		s.Data["tls.key"] = []byte{}
		s.Labels = map[string]string{custody.LabelCustody: custody.LabelCustodyVault}
		s.Annotations[custody.AnnotationPath] = "custody/tls/team-a/web-tls"
		s.Annotations[custody.AnnotationVersion] = "4"
		s.Annotations[custody.AnnotationKeySHA256] = fp
		resp := h.Handle(context.Background(), scrubTRequest(t, s, admissionv1.Update, false))
		if !resp.Allowed || len(resp.Patches) != 0 || store.puts != 0 {
			t.Fatalf("allowed=%v patches=%d puts=%d", resp.Allowed, len(resp.Patches), store.puts)
		}
	})

	t.Run("out of scope is untouched", func(t *testing.T) {
		t.Parallel()
		store := newScrubFakeStore()
		h, _ := newScrubHandler(t, store, false)
		// Not cert-manager's: no certificate-name annotation (an Opaque
		// Secret that is cert-manager's is refused: TestSecretScrubberRefusesOpaqueTarget).
		s := scrubTSecret(pair)
		s.Type = corev1.SecretTypeOpaque
		delete(s.Annotations, scrubber.AnnotationCertificateName)
		resp := h.Handle(context.Background(), scrubTRequest(t, s, admissionv1.Create, false))
		if !resp.Allowed || len(resp.Patches) != 0 || store.puts != 0 {
			t.Fatalf("allowed=%v patches=%d puts=%d", resp.Allowed, len(resp.Patches), store.puts)
		}
	})

	t.Run("strict mode empties certificates", func(t *testing.T) {
		t.Parallel()
		store := newScrubFakeStore()
		h, _ := newScrubHandler(t, store, true)
		req := scrubTRequest(t, scrubTSecret(pair), admissionv1.Create, false)
		resp := h.Handle(context.Background(), req)
		got := applyScrubPatch(t, req, resp)
		if len(got.Data["tls.crt"]) != 0 || len(got.Data["ca.crt"]) != 0 {
			t.Errorf("strict mode kept certificates")
		}
		if got.Annotations[custody.AnnotationNotAfter] != pair.cert.NotAfter.UTC().Format(time.RFC3339) {
			t.Errorf("not-after = %q", got.Annotations[custody.AnnotationNotAfter])
		}
		if string(store.records["team-a/web-tls"].Certificate) != string(pair.certPEM) {
			t.Errorf("certificate not in custody")
		}
	})
}

func TestExpectedCustodyRecord(t *testing.T) {
	withVersion := func(v string) []byte {
		b, err := json.Marshal(corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Name: "web-tls", Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault},
			Annotations: map[string]string{custody.AnnotationVersion: v, custody.AnnotationPath: "custody/tls/ns/web-tls", custody.AnnotationKeySHA256: "ab"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		op   admissionv1.Operation
		old  []byte
		want *int
	}{
		{"create", admissionv1.Create, nil, ptr.To(0)},
		{"update of a placeholder", admissionv1.Update, withVersion("7"), ptr.To(7)},
		{"update without annotation", admissionv1.Update, []byte(`{"metadata":{"name":"web-tls"}}`), nil},
		{"update, annotation not a number", admissionv1.Update, withVersion("seven"), nil},
		{"update, annotation zero", admissionv1.Update, withVersion("0"), nil},
		{"update, old object missing", admissionv1.Update, nil, nil},
		{"update, old object not JSON", admissionv1.Update, []byte("{"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Operation: tc.op, OldObject: runtime.RawExtension{Raw: tc.old},
			}}
			got, _, _ := expectedCustodyRecord(req)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("expectedCustodyRecord version = %v, want %v", ptrString(got), ptrString(tc.want))
			}
		})
	}
}

func ptrString(p *int) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func TestSecretScrubberRejectionEvents(t *testing.T) {
	t.Parallel()
	pair, other := scrubTNewPair(t), scrubTNewPair(t)
	scheme := runtime.NewScheme()
	if err := cmapi.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "uid-web"}}
	certs := fake.NewClientBuilder().WithScheme(scheme).WithObjects(crt).Build()

	for _, tc := range []struct {
		name      string
		putErr    error
		mutate    func(s *corev1.Secret)
		dryRun    bool
		wantEvent string // substring; empty: no event
	}{
		{name: "invalid input", mutate: func(s *corev1.Secret) { s.Data["tls.crt"] = other.certPEM },
			wantEvent: "Warning CustodyRejected Secret web-tls was not admitted and its key was not moved to custody: planning custody for secret team-a/web-tls: tls.key: private key does not match"},
		{name: "store down", putErr: errors.New("vault unreachable"),
			wantEvent: "Warning CustodyRejected Secret web-tls was not admitted and its key was not moved to custody: vault unreachable"},
		{name: "dry run", mutate: func(s *corev1.Secret) { s.Data["tls.crt"] = other.certPEM }, dryRun: true},
		{name: "Certificate not in the cache", mutate: func(s *corev1.Secret) {
			s.Data["tls.crt"] = other.certPEM
			s.Annotations[scrubber.AnnotationCertificateName] = "gone"
		}},
		{name: "admitted", mutate: func(*corev1.Secret) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := newScrubFakeStore()
			store.putErr = tc.putErr
			h, _ := newScrubHandler(t, store, false)
			rec := events.NewFakeRecorder(4)
			h.WithRejectionEvents(certs, rec)
			s := scrubTSecret(pair)
			if tc.mutate != nil {
				tc.mutate(s)
			}
			h.Handle(context.Background(), scrubTRequest(t, s, admissionv1.Create, tc.dryRun))
			var got []string
			for len(rec.Events) > 0 {
				got = append(got, <-rec.Events)
			}
			switch {
			case tc.wantEvent == "" && len(got) != 0:
				t.Errorf("events %q, want none", got)
			case tc.wantEvent != "" && (len(got) != 1 || !strings.Contains(got[0], tc.wantEvent)):
				t.Errorf("events %q, want one containing %q", got, tc.wantEvent)
			}
			for _, e := range got {
				if strings.Contains(e, "PRIVATE KEY") {
					t.Errorf("event carries key material: %q", e)
				}
			}
		})
	}
}
