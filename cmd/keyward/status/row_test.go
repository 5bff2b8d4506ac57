// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package status

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/guard"
)

const fp = "3f2a9c0d1e4b5a6978877665544332211000ffeeddccbbaa9988776655443322"

var base = time.Date(2026, 3, 7, 10, 0, 0, 0, time.UTC)

func fixtureCertificate(ready cmmeta.ConditionStatus, reason string) *cmapi.Certificate {
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"},
		Spec:       cmapi.CertificateSpec{SecretName: "web-tls"},
		Status: cmapi.CertificateStatus{
			Conditions:  []cmapi.CertificateCondition{{Type: cmapi.CertificateConditionReady, Status: ready, Reason: reason}},
			NotAfter:    &metav1.Time{Time: base.Add(90 * 24 * time.Hour)},
			RenewalTime: &metav1.Time{Time: base.Add(60 * 24 * time.Hour)},
		},
	}
}

func placeholderView(version string) *SecretView {
	return &SecretView{
		Name:   "web-tls",
		Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault},
		Annotations: map[string]string{
			custody.AnnotationPath:       "custody/tls/apps/web-tls",
			custody.AnnotationVersion:    version,
			custody.AnnotationKeySHA256:  fp,
			custody.AnnotationSerial:     "1a2b",
			custody.AnnotationScrubbedAt: "2026-03-07T09:00:00Z",
			custody.AnnotationScrubbedBy: "webhook",
		},
	}
}

func TestBuildRow(t *testing.T) {
	t.Parallel()
	meta := func(v int) *StoreView {
		return &StoreView{Meta: custody.Metadata{Version: v, KeySHA256: fp, Serial: "1A2B"}}
	}
	for _, tc := range []struct {
		name        string
		in          Input
		custody     string
		store       string
		problem     string // a substring of the only problem; "" for none
		wantVersion int
	}{
		{name: "in custody, not checked", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3")},
			custody: CustodyInCustody, store: StoreNotChecked, wantVersion: 3},
		{name: "matches", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3"), Store: meta(3)},
			custody: CustodyInCustody, store: StoreMatches, wantVersion: 3},
		{name: "record missing", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3"), Store: &StoreView{Missing: true}},
			custody: CustodyInCustody, store: StoreMissing, problem: "custody record custody/tls/apps/web-tls is missing", wantVersion: 3},
		{name: "record newer", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3"), Store: meta(4)},
			custody: CustodyInCustody, store: StoreNewer, problem: "at version 4, the Secret names version 3", wantVersion: 3},
		{name: "record of another key", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3"),
			Store: &StoreView{Meta: custody.Metadata{Version: 3, KeySHA256: strings.Repeat("0", 64), Serial: "1a2b"}}},
			custody: CustodyInCustody, store: StoreDiffers, problem: "another key", wantVersion: 3},
		{name: "torn record", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3"), Store: &StoreView{Meta: custody.Metadata{Version: 3, Torn: true}}},
			custody: CustodyInCustody, store: StoreTorn, problem: "no matching metadata", wantVersion: 3},
		{name: "another cluster's path", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3"), Store: &StoreView{Path: "custody/tls/prod/apps/web-tls"}},
			custody: CustodyInCustody, store: StoreOtherPath, problem: "this cluster's record is custody/tls/prod/apps/web-tls", wantVersion: 3},
		{name: "secret missing", in: Input{Certificate: fixtureCertificate("True", "Ready"), Store: meta(3)},
			custody: CustodySecretGone, store: StoreNotApplicable, problem: "Secret web-tls does not exist"},
		{name: "key in the API", in: Input{Certificate: fixtureCertificate("True", "Ready"),
			Secret: &SecretView{Name: "web-tls", Type: corev1.SecretTypeTLS, KeyInAPI: true, Serial: "1a2b"}},
			custody: CustodyKeyInAPI, store: StoreNotApplicable, problem: "its private key is in the Kubernetes API"},
		{name: "released, no key", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: &SecretView{Name: "web-tls", Type: corev1.SecretTypeTLS}},
			custody: CustodyNone, store: StoreNotApplicable, problem: "carries no custody markers"},
		{name: "hand-written version is not a placeholder", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("0")},
			custody: CustodyNone, store: StoreNotApplicable, problem: "carries no custody markers"},
		{name: "opaque target", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: &SecretView{Name: "web-tls", Type: corev1.SecretTypeOpaque}},
			custody: CustodyOpaque, store: StoreNotApplicable, problem: "of type Opaque"},
		{name: "placeholder still holding a key", in: Input{Certificate: fixtureCertificate("True", "Ready"), Secret: func() *SecretView {
			v := placeholderView("3")
			v.Type, v.KeyInAPI = corev1.SecretTypeTLS, true
			return v
		}(), Store: meta(3)},
			custody: CustodyInCustody, store: StoreMatches, problem: "still holds a private key", wantVersion: 3},
		{name: "not ready", in: Input{Certificate: fixtureCertificate("False", "Issuing"), Secret: placeholderView("3"), Store: meta(3)},
			custody: CustodyInCustody, store: StoreMatches, problem: "not Ready (Issuing)", wantVersion: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := BuildRow(tc.in)
			if r.Custody != tc.custody || r.Store != tc.store || r.CustodyVersion != tc.wantVersion {
				t.Errorf("custody %q store %q version %d; want %q %q %d", r.Custody, r.Store, r.CustodyVersion, tc.custody, tc.store, tc.wantVersion)
			}
			switch {
			case tc.problem == "" && len(r.Problems) != 0:
				t.Errorf("problems %q, want none", r.Problems)
			case tc.problem != "" && (len(r.Problems) != 1 || !strings.Contains(r.Problems[0], tc.problem)):
				t.Errorf("problems %q, want exactly one containing %q", r.Problems, tc.problem)
			}
			if r.Namespace != "apps" || r.Name != "web" || r.SecretName != "web-tls" || !r.NotAfter.Equal(base.Add(90*24*time.Hour)) {
				t.Errorf("identity or times wrong: %+v", r)
			}
		})
	}
}

func TestBuildRowPlaceholderColumns(t *testing.T) {
	t.Parallel()
	r := BuildRow(Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3")})
	if r.KeySHA256 != fp || r.Serial != "1a2b" || r.CustodyPath != "custody/tls/apps/web-tls" || r.ScrubbedBy != "webhook" || r.ScrubbedAt != "2026-03-07T09:00:00Z" {
		t.Errorf("placeholder columns: %+v", r)
	}
}

func TestBuildRowEvents(t *testing.T) {
	t.Parallel()
	evs := []Event{
		{Type: "Normal", Reason: guard.EventReasonReady, Message: "Ready: issuance completed", Time: base.Add(-3 * time.Minute)},
		{Type: "Normal", Reason: guard.EventReasonKept, Message: "RedactionOnly: change caused only by the private key being held in Vault; dropped", Time: base.Add(-time.Minute)},
		{Type: "Normal", Reason: "Issuing", Message: "Issuing certificate as Secret does not contain a private key", Time: base},
		{Type: "Warning", Reason: "CustodyRejected", Time: base.Add(-5 * time.Minute)},
		{Type: "Warning", Reason: "CustodyKeyUnservable", Time: base.Add(-4 * time.Minute)},
		{Type: "Warning", Reason: "IncorrectCertificate", Time: base.Add(-6 * time.Minute)},
		{Type: "Warning", Reason: "Old", Time: base.Add(-time.Hour)},
	}
	r := BuildRow(Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3"), Events: evs})
	want := &Guard{Event: guard.EventReasonKept, Reason: guard.DecisionRedactionOnly, Message: "change caused only by the private key being held in Vault; dropped", Time: base.Add(-time.Minute)}
	if r.Guard == nil || *r.Guard != *want {
		t.Errorf("guard %+v, want %+v", r.Guard, want)
	}
	var reasons []string
	for _, e := range r.Warnings {
		reasons = append(reasons, e.Reason)
	}
	if got := strings.Join(reasons, ","); got != "CustodyKeyUnservable,CustodyRejected,IncorrectCertificate" {
		t.Errorf("warnings %s, want the newest %d, newest first", got, maxEvents)
	}
}

func TestViewSecretKeepsNoData(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0xabcdef), Subject: pkix.Name{CommonName: "web"}, NotBefore: base, NotAfter: base.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "web-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), corev1.TLSPrivateKeyKey: keyPEM},
	}
	v := ViewSecret(s, s)
	cert, _ := x509.ParseCertificate(der)
	if !v.KeyInAPI || v.Serial != "abcdef" || v.KeySHA256 != custody.Fingerprint(cert.RawSubjectPublicKeyInfo) || v.Type != corev1.SecretTypeTLS {
		t.Errorf("view %+v", v)
	}
	// Nothing a row or its output holds may carry the key.
	r := BuildRow(Input{Certificate: fixtureCertificate("True", "Ready"), Secret: &v})
	var out bytes.Buffer
	if err := WriteJSON(&out, []Row{r}); err != nil {
		t.Fatal(err)
	}
	if err := WriteTable(&out, []Row{r}, base); err != nil {
		t.Fatal(err)
	}
	body := strings.Split(strings.TrimSpace(string(keyPEM)), "\n")[1]
	if strings.Contains(out.String(), body) || strings.Contains(out.String(), "PRIVATE KEY") {
		t.Fatalf("output holds key material:\n%s", out.String())
	}
	if r.Custody != CustodyKeyInAPI || r.Serial != "abcdef" {
		t.Errorf("row %+v", r)
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	t.Parallel()
	good := BuildRow(Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3"),
		Store:  &StoreView{Meta: custody.Metadata{Version: 3, KeySHA256: fp, Serial: "1a2b"}},
		Events: []Event{{Type: "Normal", Reason: guard.EventReasonKept, Message: "RedactionOnly: dropped", Time: base.Add(-2 * time.Minute)}}})
	bad := BuildRow(Input{Certificate: fixtureCertificate("True", "Ready"), Secret: placeholderView("3"), Store: &StoreView{Missing: true},
		Events: []Event{{Type: "Warning", Reason: "CustodyRejected", Message: "vault unreachable", Object: "Certificate/web", Count: 4, Time: base.Add(-90 * time.Second)}}})
	bad.Namespace = "other"
	var table bytes.Buffer
	if err := WriteTable(&table, []Row{good, bad}, base); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(table.String(), "\n")
	for i, want := range [][]string{
		{"NAMESPACE", "NAME", "READY", "CUSTODY", "STORE", "KEY", "SERIAL", "GUARD"},
		{"apps", "web", "True", "web-tls", "in custody", "v3", "matches (v3)", fp[:12] + "…", "1a2b", "2026-06-05T10:00Z", "2026-05-06T10:00Z", "Kept/RedactionOnly 2m"},
		{"other", "web", "record missing", "-"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("table line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
	for _, w := range []string{
		"guard    CustodyGuardKept 2m ago: RedactionOnly: dropped",
		"PROBLEM  custody record custody/tls/apps/web-tls is missing",
		"Warning  CustodyRejected x4 (Certificate/web, 1m ago): vault unreachable",
		"2 Certificate(s), 1 with problems.",
	} {
		if !strings.Contains(table.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, table.String())
		}
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, []Row{good, bad}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Items    []map[string]any `json:"items"`
		Problems int              `json:"problems"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Problems != 1 || len(got.Items) != 2 || got.Items[0]["store"] != "matches" || got.Items[0]["custodyVersion"] != 3.0 ||
		got.Items[0]["keySHA256"] != fp || got.Items[1]["store"] != "record missing" {
		t.Errorf("json: %s", js.String())
	}
	if g, _ := got.Items[0]["guard"].(map[string]any); g["event"] != guard.EventReasonKept || g["reason"] != "RedactionOnly" {
		t.Errorf("json guard: %v", got.Items[0]["guard"])
	}
	if !HasProblems([]Row{good, bad}) || HasProblems([]Row{good}) {
		t.Error("HasProblems disagrees with the rows")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"defaults", func(*Options) {}, ""},
		{"bad output", func(o *Options) { o.Output = "yaml" }, `-o "yaml"`},
		{"names with -A", func(o *Options) { o.AllNamespaces, o.Names = true, []string{"web"} }, "need one namespace"},
		{"vault without token", func(o *Options) { o.VaultAddr = "http://127.0.0.1:8200" }, "VAULT_TOKEN is empty"},
		{"vault not a URL", func(o *Options) { o.VaultAddr, o.VaultToken = "vault:8200", "t" }, "not an http(s) URL"},
		{"vault ok", func(o *Options) { o.VaultAddr, o.VaultToken = "https://vault:8200", "t" }, ""},
		{"bad cluster name", func(o *Options) { o.ClusterName = "Prod/1" }, "--cluster-name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := &Options{Output: OutputTable, CustodyMount: "custody", CustodyPrefix: "tls", Timeout: time.Second}
			tc.mod(o)
			err := o.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	o := NewOptions()
	o.Kubeconfig, o.VaultAddr, o.VaultToken = "/nonexistent/kubeconfig", "", "s.never-printed"
	if code := Run(t.Context(), o, &stdout, &stderr); code != ExitError || !strings.Contains(stderr.String(), "loading kubeconfig") {
		t.Errorf("Run without a kubeconfig = %d, stderr %q; want %d naming the kubeconfig", code, stderr.String(), ExitError)
	}
	stderr.Reset()
	o.Output = "yaml"
	if code := Run(t.Context(), o, &stdout, &stderr); code != ExitError || !strings.Contains(stderr.String(), "invalid usage") {
		t.Errorf("Run -o yaml = %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := Main(t.Context(), "kubectl keyward status", []string{"--help"}, &stdout, &stderr); code != ExitOK ||
		!strings.HasPrefix(stderr.String(), "Usage: kubectl keyward status [NAME...]") || !strings.Contains(stderr.String(), "Exit status: 0") {
		t.Errorf("--help = %d:\n%s", code, stderr.String())
	}
	if code := Main(t.Context(), "keyward status", []string{"--no-such-flag"}, &stdout, &stderr); code != ExitError {
		t.Errorf("unknown flag = %d, want %d", code, ExitError)
	}
	if strings.Contains(stdout.String()+stderr.String(), "s.never-printed") {
		t.Error("the Vault token was printed")
	}
}
