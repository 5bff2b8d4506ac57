// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/adopt"
	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/scrubber"
	"github.com/keyward-io/keyward/webhook"
)

// TestSecondClusterAdoptsCustody: two clusters (two apiserver + etcd
// pairs, each with cert-manager and Keyward) share one Vault. Each writes
// its records under its own cluster name, so they never meet by accident.
// A Certificate issued in cluster "east" is applied, with the same
// Namespace and issuer manifests, in cluster "west", whose namespace says
// keyward.io/adopt-from-cluster=east: west's Keyward copies east's record
// to its own and restores the placeholder Secret before cert-manager sees
// the Certificate, so west makes 0 CertificateRequests, holds the same key
// and serial, and an agent in west delivers it. A Certificate that does not
// fit the record is refused with the field that differs (and nothing is
// written), one without a record is issued as usual, and a placeholder
// Secret restored from a backup (as Velero restores it, Secret before
// Certificate) is accepted without a re-issue.
func TestSecondClusterAdoptsCustody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	east := keyward.StartStackForTest(t, keyward.StackOptions{
		PlaintextEtcd: true,
		Options:       func(o *app.Options) { o.ClusterName = "east" },
	})
	west := keyward.StartStackForTest(t, keyward.StackOptions{
		PlaintextEtcd: true,
		Framework:     framework.Options{SharedVault: east.Vault, VaultKubernetesMount: "kubernetes-west"},
		WebhookConfig: func(c *webhook.ConfigOptions) { c.Adoption = true },
		ChartValues:   []string{"adoption.enabled=true"},
		Options: func(o *app.Options) {
			o.ClusterName = "west"
			o.VaultAdoptRole = "keyward-adopter"
		},
	})
	const ns = "shop"
	ref := cmmeta.IssuerReference{Group: "vault.keyward.io", Kind: "VaultClusterIssuer", Name: "vault"}

	// East: the usual story, records under tls/east.
	custodyNamespace(t, east, ns, nil)
	if err := east.Client.Create(ctx, keywardClusterIssuer(east, "vault")); err != nil {
		t.Fatal(err)
	}
	web := newCertificate(ns, "web", ref, "web.shop.example.com")
	api := newCertificate(ns, "api", ref, "api.shop.example.com")
	for _, c := range []*cmapi.Certificate{web, api} {
		if err := east.Client.Create(ctx, c.DeepCopy()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*cmapi.Certificate{web, api} {
		waitCertificateReady(t, east.Client, client.ObjectKeyFromObject(c), 60*time.Second)
	}
	eastSerial, eastRec := assertScrubbed(t, east, ns, web.Spec.SecretName, false)
	if _, ok := readCustodyAt(t, east, framework.VaultCustodyPrefix, ns, web.Spec.SecretName); ok {
		t.Errorf("east wrote a record outside its cluster folder (%s/%s/%s)", framework.VaultCustodyPrefix, ns, web.Spec.SecretName)
	}

	// West: the same Namespace (plus the explicit adoption label), issuer
	// and Certificate manifests.
	custodyNamespace(t, west, ns, map[string]string{custody.NamespaceLabelAdoptFromCluster: "east"})
	if err := west.Client.Create(ctx, keywardClusterIssuer(west, "vault")); err != nil {
		t.Fatal(err)
	}
	// A Certificate that does not fit the record is refused, naming the
	// field, and leaves nothing behind.
	wrong := api.DeepCopy()
	wrong.Spec.DNSNames = []string{"api.elsewhere.example.com"}
	err := west.Client.Create(ctx, wrong)
	if err == nil || !strings.Contains(err.Error(), "does not match the Certificate") || !strings.Contains(err.Error(), "spec.dnsNames") {
		t.Fatalf("creating a Certificate that does not fit east's record: got %v, want a refusal naming spec.dnsNames", err)
	}
	t.Logf("refused as expected: %v", err)
	if _, ok := readCustodyAt(t, west, "tls/west", ns, api.Spec.SecretName); ok {
		t.Errorf("a refused adoption wrote west's record of %s", api.Spec.SecretName)
	}
	for _, c := range []*cmapi.Certificate{web, api} {
		if err := west.Client.Create(ctx, c.DeepCopy()); err != nil {
			t.Fatalf("creating Certificate %s in west: %v", c.Name, err)
		}
	}
	// No record in east: issued as usual, into west's own folder.
	fresh := newCertificate(ns, "fresh", ref, "fresh.shop.example.com")
	if err := west.Client.Create(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*cmapi.Certificate{web, api, fresh} {
		waitCertificateReady(t, west.Client, client.ObjectKeyFromObject(c), 60*time.Second)
	}
	if n := counterValue(t, west, "keyward_custody_adoptions_total", map[string]string{"result": string(adopt.Adopted)}); n != 2 {
		t.Errorf("keyward_custody_adoptions_total{result=adopted} = %v, want 2", n)
	}
	for result, want := range map[string]float64{"refused": 1, string(adopt.NoRecord): 1} {
		if n := counterValue(t, west, "keyward_custody_adoptions_total", map[string]string{"result": result}); n != want {
			t.Errorf("keyward_custody_adoptions_total{result=%s} = %v, want %v", result, n, want)
		}
	}

	// Same key, same serial, in west's own record; the placeholder says so.
	westSerial, westRec := assertScrubbed(t, west, ns, web.Spec.SecretName, false)
	if westSerial != eastSerial || string(westRec.Key) != string(eastRec.Key) || string(westRec.Cert) != string(eastRec.Cert) {
		t.Fatalf("west holds serial %s (key equal: %v), east %s: adoption must keep the key and the certificate",
			westSerial, string(westRec.Key) == string(eastRec.Key), eastSerial)
	}
	sec := getSecret(t, west.Client, client.ObjectKey{Namespace: ns, Name: web.Spec.SecretName})
	if sec.Annotations[custody.AnnotationScrubbedBy] != scrubber.ByAdoption || !strings.HasPrefix(sec.Annotations[custody.AnnotationPath], "custody/tls/west/") {
		t.Errorf("west placeholder: scrubbed-by %q, path %q; want %q under custody/tls/west/",
			sec.Annotations[custody.AnnotationScrubbedBy], sec.Annotations[custody.AnnotationPath], scrubber.ByAdoption)
	}
	// 0 CertificateRequests for the adopted Certificates, while the guard
	// has been asked (the negative check covers the path under test).
	assertNoRequests(t, west, ns, 10*time.Second, web.Name, api.Name)
	if got := len(requestNames(t, west.Client, ns, fresh.Name)); got != 1 {
		t.Errorf("Certificate %s (no record in east) has %d CertificateRequests in west, want 1", fresh.Name, got)
	}
	assertNoKeyAtRest(t, west, ns, false)

	// keyward agent in west delivers east's certificate and key from west's record.
	assertWestAgentDelivers(t, west, ns, web.Spec.SecretName, eastSerial)

	// A restore from backup in east, without the adoption label: the
	// placeholder Secret first, then the Certificate.
	assertBackupRestoreKeepsKey(t, east, web)
}

// assertNoRequests waits for the guard to have acted in st, then watches
// for quiet: none of the named Certificates gets a CertificateRequest and
// each stays Ready.
func assertNoRequests(t *testing.T, st *keyward.Stack, ns string, quiet time.Duration, names ...string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the custody guard acted in "+ns, func(context.Context) (bool, error) {
		acted := counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "veto"}) +
			counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "pass_rewritten"})
		return acted > 0, nil
	})
	deadline := time.Now().Add(quiet)
	for {
		for _, name := range names {
			if got := requestNames(t, st.Client, ns, name); len(got) != 0 {
				t.Fatalf("Certificate %s/%s has CertificateRequests %v: it was issued instead of adopted", ns, name, got)
			}
			var crt cmapi.Certificate
			if err := st.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &crt); err != nil {
				t.Fatal(err)
			}
			if !isReady(&crt) {
				t.Fatalf("Certificate %s/%s left Ready: %+v", ns, name, crt.Status.Conditions)
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second) // sampling over the quiet window, not a synchronisation
	}
	t.Logf("quiet %s: 0 CertificateRequests for %v, Ready stayed True", quiet, names)
}

// assertWestAgentDelivers runs `keyward agent` (the binary, as a gateway's
// sidecar) in west with --cluster-name west and a Vault role whose policy
// reads only west's record of the Secret, and checks the files it delivers
// hold serial and its key.
func assertWestAgentDelivers(t *testing.T, st *keyward.Stack, ns, secret, serial string) {
	t.Helper()
	ctx := context.Background()
	root, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	policy := "west-agent-" + secret
	if err := root.Sys().PutPolicyWithContext(ctx, policy,
		`path "`+framework.VaultCustodyMount+`/data/tls/west/`+ns+`/`+secret+`" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	const sa = "keyward-agent"
	cfg := gatewayIdentityWithPolicy(t, st, ns, sa, secret, policy)
	agent := startFilesAgent(t, st, cfg, ns+"/"+secret, st.Vault.Addr, writeVaultToken(t, st, ns, sa),
		filepath.Join(t.TempDir(), "no-server.pid"), "--cluster-name", "west")
	dir := filepath.Join(agent.dir, ns, secret)
	certPEM, err := os.ReadFile(filepath.Join(dir, delivery.FileCert))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, delivery.FileKey))
	if err != nil {
		t.Fatal(err)
	}
	assertKeyMatchesCert(t, keyPEM, certPEM)
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatalf("%s holds no PEM certificate", delivery.FileCert)
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.SerialNumber.Text(16); got != serial {
		t.Errorf("keyward agent in west delivers serial %s, want east's %s", got, serial)
	}
}

// assertBackupRestoreKeepsKey deletes crt and its placeholder Secret and
// restores both from copies, Secret first, as Velero does: the Certificate
// is Ready again on the same serial, with no new CertificateRequest.
func assertBackupRestoreKeepsKey(t *testing.T, st *keyward.Stack, crt *cmapi.Certificate) {
	t.Helper()
	ctx := context.Background()
	key := client.ObjectKeyFromObject(crt)
	var savedCrt cmapi.Certificate
	if err := st.Client.Get(ctx, key, &savedCrt); err != nil {
		t.Fatal(err)
	}
	savedSec := getSecret(t, st.Client, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName})
	serial := savedSec.Annotations[custody.AnnotationSerial]
	before := requestNames(t, st.Client, crt.Namespace, crt.Name)
	acted := counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "veto"}) +
		counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "pass_rewritten"})
	if err := st.Client.Delete(ctx, &savedCrt); err != nil {
		t.Fatal(err)
	}
	if err := st.Client.Delete(ctx, savedSec); err != nil {
		t.Fatal(err)
	}
	restoredSec := &corev1.Secret{ObjectMeta: backupMeta(savedSec.ObjectMeta), Type: savedSec.Type, Data: savedSec.Data}
	if err := st.Client.Create(ctx, restoredSec); err != nil {
		t.Fatalf("restoring the placeholder Secret: %v", err)
	}
	restoredCrt := &cmapi.Certificate{ObjectMeta: backupMeta(savedCrt.ObjectMeta), Spec: savedCrt.Spec}
	if err := st.Client.Create(ctx, restoredCrt); err != nil {
		t.Fatalf("restoring the Certificate: %v", err)
	}
	waitCertificateReady(t, st.Client, key, 60*time.Second)
	waitFor(t, 30*time.Second, "the custody guard acted on the restored Certificate", func(context.Context) (bool, error) {
		now := counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "veto"}) +
			counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "pass_rewritten"})
		return now > acted, nil
	})
	if got := getSecret(t, st.Client, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}).Annotations[custody.AnnotationSerial]; got != serial {
		t.Errorf("after the restore the Secret holds serial %s, before %s: it was re-issued", got, serial)
	}
	for name := range requestNames(t, st.Client, crt.Namespace, crt.Name) {
		if !before[name] {
			t.Errorf("restore from backup made CertificateRequest %s", name)
		}
	}
	t.Logf("restore from backup: Certificate %s Ready on serial %s, no new CertificateRequest", crt.Name, serial)
}

// backupMeta is what a backup keeps of an object's metadata: name,
// namespace, labels and annotations; the server-set fields are dropped.
func backupMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, Labels: m.Labels, Annotations: m.Annotations}
}
