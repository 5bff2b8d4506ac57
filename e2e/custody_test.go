// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/guard"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/scrubber"
	"github.com/keyward-io/keyward/webhook"
)

// custodyNamespace creates a namespace opted in to custody.
func custodyNamespace(t *testing.T, st *keyward.Stack, name string, extra map[string]string) {
	t.Helper()
	labels := map[string]string{custody.NamespaceLabelCustody: "enabled"}
	for k, v := range extra {
		labels[k] = v
	}
	if err := st.CreateNamespace(context.Background(), name, labels); err != nil {
		t.Fatal(err)
	}
}

// keywardClusterIssuer is the user's VaultClusterIssuer: Keyward's issuer with
// Kubernetes auth as the keyward ServiceAccount.
func keywardClusterIssuer(st *keyward.Stack, name string) *v1alpha1.VaultClusterIssuer {
	return &v1alpha1.VaultClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.VaultIssuerSpec{
			Server: st.Vault.Addr,
			Path:   framework.VaultIntPKIMount + "/sign/" + framework.VaultKeywardRole,
			Auth: v1alpha1.VaultAuth{Kubernetes: &v1alpha1.KubernetesAuth{
				Role:              "keyward-issuer",
				MountPath:         st.VaultKubernetesMount,
				ServiceAccountRef: v1alpha1.ServiceAccountRef{Name: framework.KeywardServiceAccount, Audiences: []string{framework.VaultAudience}},
			}},
		},
	}
}

// caClusterIssuer builds cert-manager's built-in CA ClusterIssuer from a
// self-signed root, to show custody works with any issuer.
func caClusterIssuer(t *testing.T, st *keyward.Stack, name string) {
	t.Helper()
	ctx := context.Background()
	c := st.Client
	selfSigned := &cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name + "-selfsigned"},
		Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}}}
	if err := c.Create(ctx, selfSigned); err != nil {
		t.Fatal(err)
	}
	root := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-root", Namespace: framework.CertManagerNamespace},
		Spec: cmapi.CertificateSpec{
			IsCA: true, CommonName: "test root", SecretName: name + "-root",
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: selfSigned.Name, Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"},
		},
	}
	if err := c.Create(ctx, root); err != nil {
		t.Fatal(err)
	}
	waitCertificateReady(t, c, client.ObjectKeyFromObject(root), 60*time.Second)
	ca := &cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: name + "-root"}}}}
	if err := c.Create(ctx, ca); err != nil {
		t.Fatal(err)
	}
	waitClusterIssuerReady(t, c, name, 60*time.Second)
}

func newCertificate(ns, name string, ref cmmeta.IssuerReference, dns ...string) *cmapi.Certificate {
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: cmapi.CertificateSpec{
			SecretName: name + "-tls",
			DNSNames:   dns,
			Duration:   &metav1.Duration{Duration: 24 * time.Hour},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmapi.RotationPolicyAlways},
			IssuerRef:  ref,
		},
	}
}

// custodyRecord reads a custody record with the root token (a test
// inspecting Vault; no Keyward component can read key data).
type custodyRecord struct {
	Key, Cert []byte
	Version   int
}

func readCustody(t *testing.T, st *keyward.Stack, ns, secret string) (custodyRecord, bool) {
	t.Helper()
	return readCustodyAt(t, st, custody.ClusterPrefix(framework.VaultCustodyPrefix, st.Options().ClusterName), ns, secret)
}

// readCustodyAt reads the record of ns/secret under prefix (a cluster's
// folder, custody.ClusterPrefix) with the root token.
func readCustodyAt(t *testing.T, st *keyward.Stack, prefix, ns, secret string) (custodyRecord, bool) {
	t.Helper()
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := vc.KVv2(framework.VaultCustodyMount).Get(context.Background(), prefix+"/"+ns+"/"+secret)
	if err != nil {
		if strings.Contains(err.Error(), "secret not found") {
			return custodyRecord{}, false
		}
		t.Fatalf("reading custody record %s/%s: %v", ns, secret, err)
	}
	key, _ := sec.Data["tls.key"].(string)
	crt, _ := sec.Data["tls.crt"].(string)
	return custodyRecord{Key: []byte(key), Cert: []byte(crt), Version: sec.VersionMetadata.Version}, true
}

// assertKeyMatchesCert checks that a PEM private key is the pair of a PEM certificate.
func assertKeyMatchesCert(t *testing.T, keyPEM, certPEM []byte) {
	t.Helper()
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		t.Fatalf("custody key is not PEM")
	}
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
				t.Fatalf("custody key does not parse: %v", err)
			}
		}
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil {
		t.Fatalf("certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.(crypto.Signer).Public()
	if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
		t.Fatalf("custody key does not match the certificate's public key")
	}
}

// requestNames lists the CertificateRequests of a Certificate. cert-manager
// names them <certificate>-<revision> and prunes old ones
// (revisionHistoryLimit), so a new request shows up as a new name.
func requestNames(t *testing.T, c client.Client, ns, certName string) map[string]bool {
	t.Helper()
	var list cmapi.CertificateRequestList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, cr := range list.Items {
		if cr.Annotations[cmapi.CertificateNameKey] == certName {
			names[cr.Name] = true
		}
	}
	return names
}

// revision is the Certificate's status.revision: the number of issuances.
func revision(t *testing.T, c client.Client, crt *cmapi.Certificate) int {
	t.Helper()
	cur := &cmapi.Certificate{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(crt), cur); err != nil {
		t.Fatal(err)
	}
	if cur.Status.Revision == nil {
		return 0
	}
	return *cur.Status.Revision
}

func isReady(crt *cmapi.Certificate) bool {
	return apiutil.CertificateHasCondition(crt, cmapi.CertificateCondition{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue})
}

// assertScrubbed checks the placeholder Secret and the custody record, and
// returns the leaf serial.
func assertScrubbed(t *testing.T, st *keyward.Stack, ns, secretName string, strict bool) (serial string, rec custodyRecord) {
	t.Helper()
	sec := getSecret(t, st.Client, client.ObjectKey{Namespace: ns, Name: secretName})
	if k, ok := sec.Data["tls.key"]; !ok || len(k) != 0 {
		t.Fatalf("secret %s/%s: tls.key must exist and be empty, has %d bytes (present %v)", ns, secretName, len(k), ok)
	}
	for _, a := range []string{custody.AnnotationPath, custody.AnnotationVersion, custody.AnnotationKeySHA256, custody.AnnotationScrubbedAt} {
		if sec.Annotations[a] == "" {
			t.Errorf("secret %s/%s lacks annotation %s", ns, secretName, a)
		}
	}
	if sec.Labels[custody.LabelCustody] != custody.LabelCustodyVault {
		t.Errorf("secret %s/%s lacks label %s=%s", ns, secretName, custody.LabelCustody, custody.LabelCustodyVault)
	}
	rec, ok := readCustody(t, st, ns, secretName)
	if !ok {
		t.Fatalf("no custody record for %s/%s", ns, secretName)
	}
	// The apiserver re-runs mutating admission when it retries a write on a
	// conflict, so one issuance can write the record twice (same key); the
	// Secret then names the version of the attempt that was persisted. What
	// must hold: that version exists, and Vault's current record holds the
	// key the Secret names.
	if got, err := strconv.Atoi(sec.Annotations[custody.AnnotationVersion]); err != nil || got < 1 || got > rec.Version {
		t.Errorf("secret names custody version %q, Vault's current version is %d", sec.Annotations[custody.AnnotationVersion], rec.Version)
	}
	if got := keySHA256(t, rec.Cert); got != sec.Annotations[custody.AnnotationKeySHA256] {
		t.Errorf("secret names key %s, Vault's current record holds key %s", sec.Annotations[custody.AnnotationKeySHA256], got)
	}
	certPEM := sec.Data["tls.crt"]
	if strict {
		if len(certPEM) != 0 {
			t.Errorf("strict mode: secret %s/%s still holds tls.crt", ns, secretName)
		}
		certPEM = rec.Cert
	} else if !bytes.Equal(certPEM, rec.Cert) {
		t.Errorf("custody certificate differs from the Secret's tls.crt")
	}
	assertKeyMatchesCert(t, rec.Key, certPEM)
	b, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Text(16), rec
}

// assertNoKeyAtRest scans every retained etcd revision of the namespace's
// Secrets: no target Secret may ever have held a PEM private key. cert-manager's
// temporary next-private-key Secrets are the one documented exception while
// they live; they are reported, not failed.
func assertNoKeyAtRest(t *testing.T, st *keyward.Stack, ns string, alsoNoCert bool) {
	t.Helper()
	revs, err := st.EtcdHistory(context.Background(), "/registry/secrets/"+ns+"/")
	if err != nil {
		t.Fatal(err)
	}
	var targets, temp int
	for _, r := range revs {
		if r.Deleted {
			continue
		}
		isTemp := bytes.Contains(r.Value, []byte("cert-manager.io/next-private-key"))
		if framework.HoldsPEMPrivateKey(r.Value) {
			if isTemp {
				temp++
				continue
			}
			t.Errorf("etcd revision %d of %s holds a PEM private key", r.Revision, r.Key)
		}
		if !isTemp {
			targets++
			if alsoNoCert && bytes.Contains(r.Value, []byte("-----BEGIN CERTIFICATE-----")) {
				t.Errorf("strict mode: etcd revision %d of %s holds a certificate", r.Revision, r.Key)
			}
		}
	}
	t.Logf("etcd scan of %s: %d target-Secret revisions with no private key; %d revisions of cert-manager's temporary next-private-key Secrets held one (the documented issuance window)", ns, targets, temp)
}

// assertQuiet watches for a quiet period: no new CertificateRequest, Ready stays True.
func assertQuiet(t *testing.T, st *keyward.Stack, crt *cmapi.Certificate, d time.Duration) {
	t.Helper()
	waitSettled(t, st, crt)
	// The quiet is the guard's doing only if the guard has been asked: the
	// redaction-induced transitions of the issuance must have reached it and
	// been dropped or rewritten (else the check below could pass with the
	// guard never called).
	acted := counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "veto"}) +
		counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "pass_rewritten"})
	if acted == 0 {
		t.Fatalf("the custody guard has not vetoed or rewritten any status update: the quiet period would prove nothing")
	}
	beforeNames := requestNames(t, st.Client, crt.Namespace, crt.Name)
	beforeRev := revision(t, st.Client, crt)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		cur := &cmapi.Certificate{}
		if err := st.Client.Get(context.Background(), client.ObjectKeyFromObject(crt), cur); err != nil {
			t.Fatal(err)
		}
		if !isReady(cur) {
			t.Fatalf("Certificate %s/%s left Ready during the quiet period: %+v", crt.Namespace, crt.Name, cur.Status.Conditions)
		}
		time.Sleep(time.Second) // sampling Ready over the quiet window, not a synchronisation
	}
	for name := range requestNames(t, st.Client, crt.Namespace, crt.Name) {
		if !beforeNames[name] {
			t.Fatalf("re-issue loop: new CertificateRequest %s during a quiet %s", name, d)
		}
	}
	if after := revision(t, st.Client, crt); after != beforeRev {
		t.Fatalf("re-issue loop: revision went from %d to %d during a quiet %s", beforeRev, after, d)
	}
	t.Logf("quiet %s: 0 new CertificateRequests, Ready stayed True (guard vetoes and rewrites so far: %.0f)", d, acted)
}

// recordCertificateVersions watches Certificate ns/name from now on and
// returns a function that lists the versions stored so far, in order.
func recordCertificateVersions(t *testing.T, st *keyward.Stack, ns, name string) func() []cmapi.Certificate {
	t.Helper()
	wc, err := client.NewWithWatch(st.RESTConfig, client.Options{Scheme: st.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &cmapi.CertificateList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []cmapi.Certificate
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if crt, ok := ev.Object.(*cmapi.Certificate); ok {
				mu.Lock()
				seen = append(seen, *crt.DeepCopy())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return func() []cmapi.Certificate {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// assertCompletedInOneWrite checks, on the stored versions of a freshly
// issued Certificate in custody, that the guard completed the write that
// ended its first issuance (the first version with revision 1): that
// version is already Ready=True with the guard's Vault message and names no
// next private key Secret, so cert-manager's readiness and key manager have
// no status write of their own left to make. One race is told apart, not
// failed: when cert-manager's readiness controller had written no condition
// yet, the issuing controller's write carries none and the guard's filter
// does not select it (docs/guard.md); readiness's next write then goes
// through the guard as for any Certificate, which the caller's Ready wait
// covers.
func assertCompletedInOneWrite(t *testing.T, versions func() []cmapi.Certificate) {
	t.Helper()
	// The caller's Ready wait polls with GET; the watch may deliver that
	// version a moment later.
	var v cmapi.Certificate
	waitFor(t, 10*time.Second, "the watch to deliver the version with revision 1", func(context.Context) (bool, error) {
		for _, cur := range versions() {
			if cur.Status.Revision != nil && *cur.Status.Revision == 1 {
				v = cur
				return true, nil
			}
		}
		return false, nil
	})
	if len(v.Status.Conditions) == 0 {
		t.Logf("the write ending the issuance (version %s) carried no condition: readiness had not written one yet, so the guard was not asked to complete it", v.ResourceVersion)
		return
	}
	r := apiutil.GetCertificateCondition(&v, cmapi.CertificateConditionReady)
	if r == nil || r.Status != cmmeta.ConditionTrue || r.Message != guard.ReadyMessage || v.Status.NextPrivateKeySecretName != nil {
		t.Fatalf("version %s ending the issuance: Ready %+v, nextPrivateKeySecretName %q; want Ready=True with the guard's message and no next key Secret named (the guard completes the issuance in that write)",
			v.ResourceVersion, r, ptr.Deref(v.Status.NextPrivateKeySecretName, ""))
	}
}

// waitSettled waits until cert-manager has finished the current issuance:
// Ready, a revision recorded, no Issuing condition.
func waitSettled(t *testing.T, st *keyward.Stack, crt *cmapi.Certificate) {
	t.Helper()
	waitFor(t, 30*time.Second, "Certificate "+crt.Name+" settled", func(ctx context.Context) (bool, error) {
		cur := &cmapi.Certificate{}
		if err := st.Client.Get(ctx, client.ObjectKeyFromObject(crt), cur); err != nil {
			return false, err
		}
		issuing := apiutil.GetCertificateCondition(cur, cmapi.CertificateConditionIssuing)
		return isReady(cur) && cur.Status.Revision != nil && (issuing == nil || issuing.Status != cmmeta.ConditionTrue), nil
	})
}

// keySHA256 is the hex SHA-256 of the leaf's SubjectPublicKeyInfo, as Keyward annotates it.
func keySHA256(t *testing.T, certPEM []byte) string {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatalf("certificate is not PEM")
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// assertLogsClean greps every component log for private key material.
func assertLogsClean(t *testing.T, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if framework.HoldsPEMPrivateKey(b) {
			t.Errorf("log %s contains PEM private key material", filepath.Base(f))
		}
	}
}

// TestCustodyWithVaultClusterIssuer is the user's story: a standard
// Certificate against Keyward's VaultClusterIssuer in a custody namespace.
func TestCustodyWithVaultClusterIssuer(t *testing.T) {
	st := keyward.StartStackForTest(t, keyward.StackOptions{
		Options: func(o *app.Options) { o.CustodyAuditPeriod = 2 * time.Second },
	})
	ctx := context.Background()
	c := st.Client
	iss := keywardClusterIssuer(st, "vault")
	if err := c.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	custodyNamespace(t, st, "team-a", nil)
	crt := newCertificate("team-a", "web", cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "VaultClusterIssuer", Name: iss.Name}, "web.example.com")
	versions := recordCertificateVersions(t, st, "team-a", "web")
	start := time.Now()
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	ready := waitCertificateReady(t, c, client.ObjectKeyFromObject(crt), 90*time.Second)
	t.Logf("Ready after %s", time.Since(start).Round(time.Millisecond))
	assertCompletedInOneWrite(t, versions)
	serial, rec := assertScrubbed(t, st, "team-a", "web-tls", false)
	verifyChain(t, rec.Cert, st.Vault.RootCAPEM, "web.example.com")
	if ready.Status.RenewalTime == nil || ready.Status.NotAfter == nil {
		t.Fatalf("status lacks renewalTime/notAfter: %+v", ready.Status)
	}

	t.Run("no re-issue loop", func(t *testing.T) {
		assertQuiet(t, st, crt, 60*time.Second)
	})

	t.Run("spec change re-issues once", func(t *testing.T) {
		waitSettled(t, st, crt)
		before := revision(t, c, crt)
		cur := &cmapi.Certificate{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(crt), cur); err != nil {
			t.Fatal(err)
		}
		cur.Spec.DNSNames = append(cur.Spec.DNSNames, "www.example.com")
		if err := c.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, "re-issue with the new name", func(ctx context.Context) (bool, error) {
			s, err := readLeaf(ctx, st, "team-a", "web-tls")
			if err != nil {
				return false, err
			}
			return len(s.DNSNames) == 2, nil
		})
		waitCertificateReady(t, c, client.ObjectKeyFromObject(crt), 30*time.Second)
		newSerial, _ := assertScrubbed(t, st, "team-a", "web-tls", false)
		if newSerial == serial {
			t.Fatalf("serial unchanged after a spec change")
		}
		serial = newSerial
		assertQuiet(t, st, crt, 10*time.Second)
		if n := revision(t, c, crt) - before; n != 1 {
			t.Fatalf("spec change led to %d issuances, want 1", n)
		}
	})

	t.Run("deleted custody record re-issues once", func(t *testing.T) {
		waitSettled(t, st, crt)
		before := revision(t, c, crt)
		vc, _ := st.Vault.RootClient()
		if err := vc.KVv2(framework.VaultCustodyMount).DeleteMetadata(ctx, framework.VaultCustodyPrefix+"/team-a/web-tls"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, "custody record re-created by a re-issue", func(ctx context.Context) (bool, error) {
			_, ok := readCustody(t, st, "team-a", "web-tls")
			return ok, nil
		})
		waitCertificateReady(t, c, client.ObjectKeyFromObject(crt), 30*time.Second)
		newSerial, _ := assertScrubbed(t, st, "team-a", "web-tls", false)
		if newSerial == serial {
			t.Fatalf("serial unchanged after the custody record was lost")
		}
		assertQuiet(t, st, crt, 10*time.Second)
		if n := revision(t, c, crt) - before; n != 1 {
			t.Fatalf("lost custody record led to %d issuances, want 1", n)
		}
	})

	assertNoKeyAtRest(t, st, "team-a", false)
	assertLogsClean(t, st.Dir)
}

// TestCustodyRenewsOnSchedule: a short-lived certificate keeps renewing under
// custody; each renewal's key lands in Vault as a new version.
func TestCustodyRenewsOnSchedule(t *testing.T) {
	st := keyward.StartStackForTest(t, keyward.StackOptions{})
	ctx := context.Background()
	caClusterIssuer(t, st, "ca")
	custodyNamespace(t, st, "renew", nil)
	crt := newCertificate("renew", "short", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "ca"}, "short.example.com")
	crt.Spec.Duration = &metav1.Duration{Duration: time.Hour}
	crt.Spec.RenewBefore = &metav1.Duration{Duration: time.Hour - 15*time.Second}
	if err := st.Client.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(crt), 60*time.Second)
	_, rec := assertScrubbed(t, st, "renew", "short-tls", false)
	first := getSecret(t, st.Client, client.ObjectKey{Namespace: "renew", Name: "short-tls"}).Annotations[custody.AnnotationSerial]
	serials := map[string]bool{first: true}
	versions := []int{rec.Version}
	deadline := time.Now().Add(75 * time.Second)
	for len(serials) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Second) // polling for the next renewal (ends as soon as it lands)
		cur := &cmapi.Certificate{}
		if err := st.Client.Get(ctx, client.ObjectKeyFromObject(crt), cur); err != nil || !isReady(cur) {
			continue
		}
		// A renewal writes its custody record before its Secret is stored:
		// sample only a consistent pair (the Secret unchanged around the
		// record read, naming that record's version).
		sec, r, ok := consistentCustody(t, st, "renew", "short-tls", false)
		if !ok {
			continue
		}
		if s := sec.Annotations[custody.AnnotationSerial]; !serials[s] {
			serials[s] = true
			versions = append(versions, r.Version)
		}
	}
	if len(serials) < 3 {
		t.Fatalf("saw %d distinct certificates in 75s, want the original and at least 2 renewals (renewal every ~15s)", len(serials))
	}
	for i := 1; i < len(versions); i++ {
		if versions[i] <= versions[i-1] {
			t.Errorf("custody versions not increasing across renewals: %v", versions)
		}
	}
	t.Logf("renewals observed: %d, custody versions %v", len(serials)-1, versions)
	assertNoKeyAtRest(t, st, "renew", false)
}

// TestCustodyWithCAIssuerAndStrictMode: cert-manager's built-in CA issuer, in
// a namespace that also redacts certificates.
func TestCustodyWithCAIssuerAndStrictMode(t *testing.T) {
	st := keyward.StartStackForTest(t, keyward.StackOptions{})
	ctx := context.Background()
	caClusterIssuer(t, st, "ca")
	ref := cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "ca"}

	custodyNamespace(t, st, "plain", nil)
	plain := newCertificate("plain", "api", ref, "api.example.com")
	custodyNamespace(t, st, "strict", map[string]string{custody.NamespaceLabelRedactCertificates: "true"})
	strict := newCertificate("strict", "api", ref, "api.example.com")
	for _, crt := range []*cmapi.Certificate{plain, strict} {
		if err := st.Client.Create(ctx, crt); err != nil {
			t.Fatal(err)
		}
	}
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(plain), 60*time.Second)
	assertScrubbed(t, st, "plain", "api-tls", false)
	ready := waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(strict), 60*time.Second)
	_, rec := assertScrubbed(t, st, "strict", "api-tls", true)
	b, _ := pem.Decode(rec.Cert)
	leaf, _ := x509.ParseCertificate(b.Bytes)
	if ready.Status.NotAfter == nil || !ready.Status.NotAfter.Time.Equal(leaf.NotAfter) {
		t.Errorf("strict mode: status.notAfter %v, certificate says %v", ready.Status.NotAfter, leaf.NotAfter)
	}
	if ready.Status.RenewalTime == nil {
		t.Errorf("strict mode: status.renewalTime missing")
	} else if want := leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 3); ready.Status.RenewalTime.Time.Sub(want).Abs() > 2*time.Second {
		t.Errorf("strict mode: status.renewalTime %v, want about %v (2/3 of the lifetime)", ready.Status.RenewalTime.Time, want)
	}
	assertQuiet(t, st, plain, 30*time.Second)
	assertQuiet(t, st, strict, 5*time.Second)
	assertNoKeyAtRest(t, st, "plain", false)
	assertNoKeyAtRest(t, st, "strict", true)
	assertLogsClean(t, st.Dir)
}

// TestCustodyWatcherBackstop: the scrub webhook is unreachable and configured
// to fail open; the watcher scrubs the key and reports how long it was exposed.
func TestCustodyWatcherBackstop(t *testing.T) {
	ignore := admissionv1.Ignore
	st := keyward.StartStackForTest(t, keyward.StackOptions{
		WebhookConfig: func(o *webhook.ConfigOptions) {
			o.Service = nil
			o.URL = "https://127.0.0.1:1" // nothing listens: the webhook is down
			o.SecretFailurePolicy = &ignore
			o.GuardFailurePolicy = &ignore
		},
	})
	ctx := context.Background()
	caClusterIssuer(t, st, "ca")
	custodyNamespace(t, st, "backstop", nil)
	crt := newCertificate("backstop", "svc", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "ca"}, "svc.example.com")
	if err := st.Client.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "watcher scrub", func(ctx context.Context) (bool, error) {
		sec := &corev1.Secret{}
		if err := st.Client.Get(ctx, client.ObjectKey{Namespace: "backstop", Name: "svc-tls"}, sec); err != nil {
			return false, err
		}
		k, ok := sec.Data["tls.key"]
		return ok && len(k) == 0 && sec.Annotations[custody.AnnotationScrubbedBy] == scrubber.ByWatcher, nil
	})
	// cert-manager may write the Secret again while it finishes issuing (the
	// webhook is down, so each write carries the key); the watcher scrubs
	// each one. Wait for Ready, then for the key to be gone again.
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(crt), 60*time.Second)
	// With the guard down too, nothing stops cert-manager from issuing
	// again after each scrub, so the Secret may carry a new key again at
	// any moment: every check below is made on one consistent sample (the
	// same Secret revision before and after reading its record), which
	// consistentCustody verifies whole (empty tls.key, tls.crt, key,
	// fingerprint, serial and version against Vault's record), never on a
	// second read.
	var sec *corev1.Secret
	waitFor(t, 30*time.Second, "watcher scrub after issuance settled", func(ctx context.Context) (bool, error) {
		s := &corev1.Secret{}
		if err := st.Client.Get(ctx, client.ObjectKey{Namespace: "backstop", Name: "svc-tls"}, s); err != nil {
			return false, err
		}
		if k, ok := s.Data["tls.key"]; !ok || len(k) != 0 {
			return false, nil
		}
		var ok bool
		sec, _, ok = consistentCustody(t, st, "backstop", "svc-tls", true)
		return ok, nil
	})
	if sec.Annotations[custody.AnnotationScrubbedBy] != scrubber.ByWatcher || sec.Labels[custody.LabelCustody] != custody.LabelCustodyVault {
		t.Errorf("scrubbed Secret: scrubbed-by %q, custody label %q; want the watcher's placeholder", sec.Annotations[custody.AnnotationScrubbedBy], sec.Labels[custody.LabelCustody])
	}
	scrubbedAt, err := time.Parse(time.RFC3339Nano, sec.Annotations[custody.AnnotationScrubbedAt])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("watcher scrubbed at %s; key exposure recorded in keyward_key_exposure_seconds: %s", scrubbedAt.Format(time.RFC3339Nano), exposureSummary(t, st))
	assertPlaceholderWarningDropped(t, st.Dir)
}

// assertPlaceholderWarningDropped: the kube-apiserver warns on every
// placeholder write (its tls.key holds no PEM); Keyward's log must not
// repeat that warning for each of the watcher's writes, which its log
// shows happened.
func assertPlaceholderWarningDropped(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "keyward.log"))
	if err != nil {
		t.Fatal(err)
	}
	writes := bytes.Count(b, []byte(`"msg":"watcher moved key to custody"`))
	if writes == 0 {
		t.Fatal("keyward.log shows no placeholder written by the watcher")
	}
	if n := bytes.Count(b, []byte(app.PlaceholderWarning)); n > 0 {
		t.Errorf("keyward.log repeats the kube-apiserver's placeholder warning %d times over %d watcher writes, want 0", n, writes)
	}
}

// TestCustodyVaultDown: with Vault unreachable the Secret write is denied, so
// nothing with a key is persisted; when Vault is back, issuance completes.
func TestCustodyVaultDown(t *testing.T) {
	st := keyward.StartStackForTest(t, keyward.StackOptions{
		Options: func(o *app.Options) { o.CustodyWriteTimeout = 2 * time.Second },
	})
	ctx := context.Background()
	caClusterIssuer(t, st, "ca")
	custodyNamespace(t, st, "outage", nil)
	if err := st.Vault.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = st.Vault.Resume()
		}
	}()
	crt := newCertificate("outage", "db", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "ca"}, "db.example.com")
	if err := st.Client.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	// The failure path, not a fixed window: the scrub webhook must have
	// refused the Secret write (custody write failed) at least twice, so
	// cert-manager has already retried once while Vault was down.
	waitFor(t, 90*time.Second, "two refused custody writes", func(context.Context) (bool, error) {
		return counterValue(t, st, "keyward_scrub_total", map[string]string{"path": "webhook", "result": "store_error"}) >= 2, nil
	})
	target := &cmapi.Certificate{}
	if err := st.Client.Get(ctx, client.ObjectKeyFromObject(crt), target); err != nil {
		t.Fatal(err)
	}
	if isReady(target) {
		t.Fatalf("Certificate became Ready while Vault was down")
	}
	assertNoKeyAtRest(t, st, "outage", false)
	if err := st.Vault.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	start := time.Now()
	// cert-manager's issuing controller retries the denied Secret write with
	// its own backoff; no human action is needed.
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(crt), 120*time.Second)
	t.Logf("issuance completed %s after Vault came back", time.Since(start).Round(time.Millisecond))
	assertScrubbed(t, st, "outage", "db-tls", false)
	assertNoKeyAtRest(t, st, "outage", false)
}

// counterValue sums the counter series of Keyward's registry whose labels
// include labels.
func counterValue(t *testing.T, st *keyward.Stack, name string, labels map[string]string) float64 {
	t.Helper()
	return metricSum(t, st, name, labels)
}

// gaugeSum sums the gauge series of Keyward's registry whose labels
// include labels.
func gaugeSum(t *testing.T, st *keyward.Stack, name string, labels map[string]string) float64 {
	t.Helper()
	return metricSum(t, st, name, labels)
}

// metricSum sums the counter or gauge series named name (a series holds
// one or the other), or the sample counts of its histogram series, whose
// labels include labels.
func metricSum(t *testing.T, st *keyward.Stack, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := st.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			lbl := labelMap(m)
			for k, v := range labels {
				if lbl[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func readLeaf(ctx context.Context, st *keyward.Stack, ns, name string) (*x509.Certificate, error) {
	rec, ok := func() (custodyRecord, bool) {
		vc, err := st.Vault.RootClient()
		if err != nil {
			return custodyRecord{}, false
		}
		sec, err := vc.KVv2(framework.VaultCustodyMount).Get(ctx, framework.VaultCustodyPrefix+"/"+ns+"/"+name)
		if err != nil {
			return custodyRecord{}, false
		}
		crt, _ := sec.Data["tls.crt"].(string)
		return custodyRecord{Cert: []byte(crt)}, true
	}()
	if !ok {
		return nil, fmt.Errorf("no custody record for %s/%s yet", ns, name)
	}
	b, _ := pem.Decode(rec.Cert)
	if b == nil {
		return nil, fmt.Errorf("custody certificate of %s/%s is not PEM", ns, name)
	}
	return x509.ParseCertificate(b.Bytes)
}

// exposureSummary reads the watcher's exposure histogram from Keyward's registry.
func exposureSummary(t *testing.T, st *keyward.Stack) string {
	t.Helper()
	mfs, err := st.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keyward_key_exposure_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h.GetSampleCount() > 0 {
				return fmt.Sprintf("%d keys, mean %.1f ms", h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount()))
			}
		}
	}
	t.Fatalf("keyward_key_exposure_seconds has no observation after a watcher scrub")
	return ""
}
