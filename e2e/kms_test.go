// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kmstypes "k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

// TestKMS: the kube-apiserver encrypts Secrets at rest through `keyward kms`
// (the KMS v2 plugin on Vault Transit, run from bin/keyward as its static
// pod would run it). After an issuance burst inside and outside custody and
// an ACME issuance, nothing under /registry/secrets/ in etcd is plaintext:
// not cert-manager's temporary next-private-key Secrets, not the ACME
// account key, not the Secrets outside custody; nor in etcd's files.
func TestKMS(t *testing.T) {
	t.Parallel()
	st := keyward.StartStackForTest(t, keyward.StackOptions{Framework: framework.Options{KMS: true, ACME: true, RestartableAPIServer: true}})
	ctx := context.Background()
	caClusterIssuer(t, st, "ca")
	ref := cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "ca"}
	custodyNamespace(t, st, "kms-custody", nil)
	if err := st.CreateNamespace(ctx, "kms-plain", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateACMEClusterIssuer(ctx, "acme", framework.ACMEProfileDefault); err != nil {
		t.Fatal(err)
	}
	acme := newCertificate("kms-custody", "public", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "acme"}, "kms."+framework.ACMEZone)
	acme.Spec.Duration = nil
	if err := st.Client.Create(ctx, acme); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	createCertificates(t, st.Client, "kms-custody", 100, ref)
	createCertificates(t, st.Client, "kms-plain", 20, ref)
	waitAllSettled(t, st.Client, "kms-plain", 20, 3*time.Minute)
	waitAllSettled(t, st.Client, "kms-custody", 101, 4*time.Minute)
	t.Logf("121 Certificates (100 + the ACME one in custody, 20 outside) settled in %s with Secrets encrypted at rest", time.Since(start).Round(time.Second))

	v1 := assertEncryptedAtRest(t, st, "")
	// Through the API the data is plaintext: a Secret outside custody holds its key.
	plain := getSecret(t, st.Client, client.ObjectKey{Namespace: "kms-plain", Name: "cert-000-tls"})
	if !framework.HoldsPEMPrivateKey(plain.Data[corev1.TLSPrivateKeyKey]) {
		t.Fatalf("reading a Secret outside custody through the API: no PEM key (decryption broken?)")
	}
	account := getSecret(t, st.Client, client.ObjectKey{Namespace: framework.CertManagerNamespace, Name: "acme-account"})
	if !framework.HoldsPEMPrivateKey(account.Data[corev1.TLSPrivateKeyKey]) {
		t.Fatalf("the ACME account key Secret reads without a key through the API")
	}

	t.Run("transit key rotation", func(t *testing.T) { kmsRotation(t, st, v1) })
	t.Run("vault unreachable for 60 s", func(t *testing.T) { kmsVaultDown(t, st) })
	t.Run("plugin SIGKILL and restart", func(t *testing.T) { kmsPluginRestart(t, st) })
	assertEncryptedAtRest(t, st, "")
}

// assertEncryptedAtRest scans every retained revision under
// /registry/secrets/ and every file of etcd's data directory: each value
// must be a KMS v2 envelope from this plugin (and, with wantKeyID, from
// that key version) and nothing may hold a PEM private key. It returns the
// key ID of the newest revision.
func assertEncryptedAtRest(t *testing.T, st *keyward.Stack, wantKeyID string) string {
	t.Helper()
	revs, err := st.EtcdHistoryRaw(context.Background(), "/registry/secrets/")
	if err != nil {
		t.Fatal(err)
	}
	keyIDs := map[string]int{}
	var live, nextKey, newest string
	var scanned int
	for _, r := range revs {
		if r.Deleted {
			continue
		}
		scanned++
		if !bytes.HasPrefix(r.Value, []byte(framework.KMSPrefix)) {
			t.Errorf("etcd revision %d of %s is not KMS v2 ciphertext (starts %q)", r.Revision, r.Key, r.Value[:min(len(r.Value), 24)])
			continue
		}
		if framework.HoldsPEMPrivateKey(r.Value) {
			t.Errorf("etcd revision %d of %s holds a PEM private key", r.Revision, r.Key)
		}
		var obj kmstypes.EncryptedObject
		if err := proto.Unmarshal(r.Value[len(framework.KMSPrefix):], &obj); err != nil {
			t.Errorf("etcd revision %d of %s: not a KMS v2 EncryptedObject: %v", r.Revision, r.Key, err)
			continue
		}
		keyIDs[obj.GetKeyID()]++
		newest = obj.GetKeyID()
		if strings.Contains(r.Key, "/kms-custody/") && !strings.HasSuffix(r.Key, "-tls") {
			nextKey = r.Key // cert-manager's temporary key Secrets are named <cert>-<random>
		}
		live = r.Key
	}
	files, err := st.ScanEtcdFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files.Hits {
		t.Errorf("etcd file %s holds a PEM private key", f)
	}
	if wantKeyID != "" && keyIDs[wantKeyID] == 0 {
		t.Errorf("no revision under key ID %s: %v", wantKeyID, keyIDs)
	}
	if scanned < 240 || nextKey == "" {
		t.Fatalf("scanned %d revisions (a next-private-key Secret among them: %v): too few for the burst", scanned, nextKey != "")
	}
	t.Logf("etcd: %d Secret revisions, all KMS v2 ciphertext (key IDs %v; e.g. %s, a next-private-key Secret %s), 0 PEM keys; etcd files: %d (%d MiB), 0 PEM keys",
		scanned, keyIDs, live, nextKey, files.Files, files.Bytes>>20)
	return newest
}

// kmsRotation: rotating the Transit key changes the plugin's key ID; the
// apiserver picks it up at its next status check and writes new Secrets
// with a new DEK under it; old Secrets still read; rewriting every Secret
// moves them all to the new key.
func kmsRotation(t *testing.T, st *keyward.Stack, before string) {
	ctx := context.Background()
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc.Logical().WriteWithContext(ctx, framework.VaultTransitMount+"/keys/"+framework.VaultTransitKey+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	want := strings.TrimSuffix(before, "v1") + "v2"
	// The apiserver asks the plugin's status once a minute while healthy:
	// write a probe Secret every 2 s until one is encrypted under the new key.
	var probes int
	deadline := time.Now().Add(2 * time.Minute)
	for {
		probes++
		name := fmt.Sprintf("rotation-probe-%d", probes)
		if err := st.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kms-plain"}, StringData: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
		id, err := secretKeyID(ctx, st, "kms-plain", name)
		if err != nil {
			t.Fatal(err)
		}
		if id == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Secret written under %s within 2 minutes of the rotation (last: %s)", want, id)
		}
		time.Sleep(2 * time.Second) // pacing the probes, not a synchronisation: each probe checks
	}
	t.Logf("Transit key rotated: new writes under %s after %s (%d probe Secrets)", want, time.Since(rotated).Round(time.Second), probes)
	// Old Secrets still read.
	old := getSecret(t, st.Client, client.ObjectKey{Namespace: "kms-plain", Name: "cert-001-tls"})
	if !framework.HoldsPEMPrivateKey(old.Data[corev1.TLSPrivateKeyKey]) {
		t.Fatalf("a Secret written before the rotation no longer reads")
	}
	// The documented rewrite (docs/kms.md): an unchanged update of every
	// Secret; the apiserver writes the ones encrypted under a stale key ID.
	rewritten := rewriteSecrets(t, st.Client)
	ids, err := currentKeyIDs(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	for key, id := range ids {
		if id != want {
			t.Errorf("%s after the rewrite: key ID %q, want %s", key, id, want)
		}
	}
	t.Logf("rewrote %d Secrets: all %d current values under %s", rewritten, len(ids), want)
}

// rewriteSecrets is docs/kms.md's rewrite (kubectl get secrets -o json |
// kubectl replace -f -): an unchanged update of every Secret in opts' scope.
// The apiserver writes back the ones it read under a stale key or provider.
// It returns how many it updated.
func rewriteSecrets(t *testing.T, c client.Client, opts ...client.ListOption) int {
	t.Helper()
	ctx := context.Background()
	var list corev1.SecretList
	if err := c.List(ctx, &list, opts...); err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		key := client.ObjectKeyFromObject(&list.Items[i])
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur := &corev1.Secret{}
			if err := c.Get(ctx, key, cur); err != nil {
				return err
			}
			return c.Update(ctx, cur)
		}); err != nil {
			t.Fatalf("rewriting Secret %s: %v", key, err)
		}
	}
	return len(list.Items)
}

// currentKeyIDs maps every live Secret's etcd key to the KMS key ID its
// current value was encrypted under.
func currentKeyIDs(ctx context.Context, st *keyward.Stack) (map[string]string, error) {
	revs, err := st.EtcdHistoryRaw(ctx, "/registry/secrets/")
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, r := range revs {
		if r.Deleted {
			delete(ids, r.Key)
			continue
		}
		var obj kmstypes.EncryptedObject
		if err := proto.Unmarshal(bytes.TrimPrefix(r.Value, []byte(framework.KMSPrefix)), &obj); err != nil {
			return nil, fmt.Errorf("%s revision %d: %w", r.Key, r.Revision, err)
		}
		ids[r.Key] = obj.GetKeyID()
	}
	return ids, nil
}

// secretKeyID is the KMS key ID of one Secret's current value in etcd.
func secretKeyID(ctx context.Context, st *keyward.Stack, ns, name string) (string, error) {
	key := "/registry/secrets/" + ns + "/" + name
	revs, err := st.EtcdHistoryRaw(ctx, key)
	if err != nil {
		return "", err
	}
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].Key != key || revs[i].Deleted {
			continue
		}
		var obj kmstypes.EncryptedObject
		if err := proto.Unmarshal(bytes.TrimPrefix(revs[i].Value, []byte(framework.KMSPrefix)), &obj); err != nil {
			return "", err
		}
		return obj.GetKeyID(), nil
	}
	return "", fmt.Errorf("no value for %s in etcd", key)
}

// kmsVaultDown: with Vault paused for 60 s the apiserver keeps reading and
// writing Secrets on its cached DEK, while the plugin reports why it is
// unhealthy.
func kmsVaultDown(t *testing.T, st *keyward.Stack) {
	ctx := context.Background()
	if err := st.Vault.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			_ = st.Vault.Resume()
		}
	}()
	waitFor(t, 30*time.Second, "the plugin reports Vault unreachable", func(ctx context.Context) (bool, error) {
		return !st.KMS.Ready(ctx), nil
	})
	var writes, reads int
	for i := 0; time.Since(paused) < 60*time.Second; i++ {
		name := fmt.Sprintf("outage-%d", i)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := st.Client.Create(wctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kms-plain"}, StringData: map[string]string{"k": name}})
		cancel()
		if err != nil {
			t.Fatalf("writing a Secret %s after Vault has been down: %v", time.Since(paused).Round(time.Second), err)
		}
		writes++
		if s := getSecret(t, st.Client, client.ObjectKey{Namespace: "kms-plain", Name: name}); string(s.Data["k"]) != name {
			t.Fatalf("reading back %s during the outage: %q", name, s.Data["k"])
		}
		reads++
		time.Sleep(2 * time.Second) // pacing the writes across the outage, not a synchronisation
	}
	if err := st.Vault.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if err := st.KMS.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("Vault down 60 s: %d Secret writes and %d reads through the apiserver all succeeded (cached DEK); plugin ready again after Vault came back", writes, reads)
}

// kmsPluginRestart: the plugin is SIGKILLed and restarted, then the
// apiserver restarts too (its DEK cache is gone, so every read needs the
// new plugin process to decrypt); every Secret still reads, writes work.
func kmsPluginRestart(t *testing.T, st *keyward.Stack) {
	ctx := context.Background()
	var before corev1.SecretList
	if err := st.Client.List(ctx, &before); err != nil {
		t.Fatal(err)
	}
	st.KMS.Kill()
	if err := st.KMS.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.KMS.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	decrypts := kmsMetric(t, st, `keyward_kms_requests_total{op="decrypt",result="ok"}`)
	if err := st.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := st.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	var after corev1.SecretList
	waitFor(t, time.Minute, "every Secret readable through the restarted apiserver", func(ctx context.Context) (bool, error) {
		return st.Client.List(ctx, &after) == nil, nil
	})
	if len(after.Items) != len(before.Items) {
		t.Errorf("%d Secrets before the plugin SIGKILL, %d after: want none lost", len(before.Items), len(after.Items))
	}
	if n := kmsMetric(t, st, `keyward_kms_requests_total{op="decrypt",result="ok"}`) - decrypts; n < 1 {
		t.Errorf("the restarted apiserver read %d Secrets without asking the restarted plugin to decrypt a DEK", len(after.Items))
	} else {
		t.Logf("plugin SIGKILLed and restarted, apiserver restarted: %d Secrets read back, %.0f DEK seeds decrypted by the new plugin process", len(after.Items), n)
	}
	if err := st.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "after-restart", Namespace: "kms-plain"}, StringData: map[string]string{"k": "v"}}); err != nil {
		t.Fatalf("writing after the restarts: %v", err)
	}
}

// kmsMetric reads one sample from the plugin's /metrics (0 if absent).
func kmsMetric(t *testing.T, st *keyward.Stack, series string) float64 {
	t.Helper()
	resp, err := http.Get(st.KMS.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
