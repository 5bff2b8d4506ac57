// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/e2e/framework"
)

// TestKMSMigration is docs/kms.md's migration of a cluster whose Secrets
// are plaintext in etcd, step by step on the real apiserver and etcd:
// restart with kms first and identity after it, rewrite every Secret,
// restart with kms alone, compact and defragment etcd. It measures what is
// left in plaintext after each step.
func TestKMSMigration(t *testing.T) {
	t.Parallel()
	env := framework.StartForTest(t, framework.Options{WithoutCertManager: true, RestartableAPIServer: true})
	ctx := context.Background()
	const ns, n = "legacy", 40
	if err := env.CreateNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		key, cert := selfSignedPair(t, fmt.Sprintf("legacy-%d.example.com", i))
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tls-%02d", i), Namespace: ns}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSPrivateKeyKey: key, corev1.TLSCertKey: cert}}
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	plain, _ := rawState(t, env, ns)
	if plain != n {
		t.Fatalf("before the migration: %d of %d Secrets hold a plaintext key in etcd, want all (the scan would prove nothing)", plain, n)
	}

	plugin, err := framework.StartKMS(ctx, env.Vault, env.Dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plugin.Close)
	restartWithEncryption(t, env, plugin, true)
	// Still readable (identity), and new writes are encrypted.
	if s := getSecret(t, env.Client, client.ObjectKey{Namespace: ns, Name: "tls-00"}); !framework.HoldsPEMPrivateKey(s.Data[corev1.TLSPrivateKeyKey]) {
		t.Fatalf("a plaintext Secret does not read after enabling kms with identity")
	}
	start := time.Now()
	rewritten := rewriteSecrets(t, env.Client, client.InNamespace(ns))
	rewrite := time.Since(start)
	plainRevs, current := rawState(t, env, ns)
	if current != 0 {
		t.Fatalf("after the rewrite, %d current values are still plaintext", current)
	}
	t.Logf("rewrite of %d Secrets took %s: every current value is KMS v2 ciphertext; %d older revisions still hold a plaintext key", rewritten, rewrite.Round(time.Millisecond), plainRevs)

	restartWithEncryption(t, env, plugin, false)
	if s := getSecret(t, env.Client, client.ObjectKey{Namespace: ns, Name: "tls-39"}); !framework.HoldsPEMPrivateKey(s.Data[corev1.TLSPrivateKeyKey]) {
		t.Fatalf("a rewritten Secret does not read with kms alone")
	}
	before, err := env.ScanEtcdFiles()
	if err != nil {
		t.Fatal(err)
	}
	compactAndDefrag(t, env)
	after, err := env.ScanEtcdFiles()
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := rawState(t, env, ns); left != 0 {
		t.Errorf("after compaction %d retained revisions still hold a plaintext key", left)
	}
	var dbHits, walHits []string
	for _, f := range after.Hits {
		if strings.HasSuffix(f, ".wal") {
			walHits = append(walHits, f)
		} else {
			dbHits = append(dbHits, f)
		}
	}
	if len(dbHits) > 0 {
		t.Errorf("after compaction and defragmentation, etcd files other than the WAL hold a plaintext key: %v", dbHits)
	}
	t.Logf("etcd files with a plaintext key: before compaction %v; after compaction and defragmentation %v (the database is clean; the write-ahead log keeps its entries until etcd snapshots and purges old WAL files)", before.Hits, after.Hits)

	restartWhileVaultDown(t, env, ns)
}

// restartWhileVaultDown: an apiserver that restarts while Vault is away has
// no DEK seed it can decrypt: it answers, but cannot read a Secret, until
// Vault is back.
func restartWhileVaultDown(t *testing.T, env *framework.Env, ns string) {
	t.Helper()
	if err := env.Vault.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = env.Vault.Resume()
		}
	}()
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- env.StartAPIServer() }()
	var readErr error
	waitFor(t, 15*time.Second, "the restarted apiserver refusing to read a Secret while Vault is down", func(ctx context.Context) (bool, error) {
		_, err := env.Kubernetes.CoreV1().Secrets(ns).Get(ctx, "tls-00", metav1.GetOptions{})
		if err == nil {
			return false, fmt.Errorf("a Secret was read through a restarted apiserver although Vault is down")
		}
		readErr = err
		// An answer from the apiserver, not a refused connection.
		return apierrors.IsInternalError(err) || strings.Contains(err.Error(), "decrypt"), nil
	})
	if err := env.Vault.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := time.Now()
	if err := <-started; err != nil {
		t.Fatalf("the apiserver did not become ready after Vault came back: %v", err)
	}
	waitFor(t, 30*time.Second, "Secrets readable again", func(ctx context.Context) (bool, error) {
		s, err := env.Kubernetes.CoreV1().Secrets(ns).Get(ctx, "tls-00", metav1.GetOptions{})
		return err == nil && framework.HoldsPEMPrivateKey(s.Data[corev1.TLSPrivateKeyKey]), nil
	})
	t.Logf("apiserver restarted while Vault was down: reading a Secret failed (%v); readable %s after Vault came back",
		readErr, time.Since(back).Round(time.Millisecond))
}

// rawState counts, under /registry/secrets/<ns>/, the revisions whose raw
// value holds a PEM private key and, of those, the ones that are current.
func rawState(t *testing.T, env *framework.Env, ns string) (plainRevisions, plainCurrent int) {
	t.Helper()
	revs, err := env.EtcdHistoryRaw(context.Background(), "/registry/secrets/"+ns+"/")
	if err != nil {
		t.Fatal(err)
	}
	last := map[string][]byte{}
	for _, r := range revs {
		if r.Deleted {
			delete(last, r.Key)
			continue
		}
		last[r.Key] = r.Value
		if framework.HoldsPEMPrivateKey(r.Value) {
			plainRevisions++
		}
	}
	for _, v := range last {
		if framework.HoldsPEMPrivateKey(v) && !bytes.HasPrefix(v, []byte(framework.KMSPrefix)) {
			plainCurrent++
		}
	}
	return plainRevisions, plainCurrent
}

// restartWithEncryption restarts the apiserver with deploy/kms's
// EncryptionConfiguration on the plugin's socket, with identity after kms
// (the migration step) or without it.
func restartWithEncryption(t *testing.T, env *framework.Env, plugin *framework.KMSPlugin, identity bool) {
	t.Helper()
	path, err := plugin.WriteEncryptionConfig(env.Dir, identity)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	env.SetAPIServerFlag("encryption-provider-config", path)
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
}

// compactAndDefrag compacts etcd to its current revision and defragments
// it, as docs/kms.md tells operators to after the rewrite.
func compactAndDefrag(t *testing.T, env *framework.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{env.EtcdEndpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rev, err := env.EtcdRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compacting etcd to revision %d: %v", rev, err)
	}
	if _, err := cli.Defragment(ctx, env.EtcdEndpoint); err != nil {
		t.Fatalf("defragmenting etcd: %v", err)
	}
}
