// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

// TestCustodyOfExistingKeys: labelling a namespace that already holds
// cert-manager key Secrets moves every key into custody (the watcher), so no
// current revision in etcd holds one; the superseded revisions still do,
// in etcd's database file too, until the operator compacts and defragments
// etcd (docs/operations.md, "Taking existing keys into custody"). After
// that, a raw scan of the database file finds none of those keys.
//
// The stack runs without encryption at rest, as a cluster adopting Keyward
// may: with `keyward kms` the old revisions would be ciphertext anyway.
func TestCustodyOfExistingKeys(t *testing.T) {
	t.Parallel()
	st := keyward.StartStackForTest(t, keyward.StackOptions{PlaintextEtcd: true})
	ctx := context.Background()
	caClusterIssuer(t, st, "ca")
	const ns, n = "legacy", 5
	if err := st.CreateNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	createCertificates(t, st.Client, ns, n, cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "ca"})
	waitAllSettled(t, st.Client, ns, n, 2*time.Minute)

	// The keys as cert-manager stored them, outside custody: one line of
	// each key's PEM body identifies it in any file.
	needles := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("cert-%03d-tls", i)
		if rev := revision(t, st.Client, &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cert-%03d", i)}}); rev != 1 {
			t.Fatalf("Certificate cert-%03d at revision %d before custody, want 1", i, rev)
		}
		key := getSecret(t, st.Client, client.ObjectKey{Namespace: ns, Name: name}).Data[corev1.TLSPrivateKeyKey]
		lines := bytes.Split(bytes.TrimSpace(key), []byte("\n"))
		if !framework.HoldsPEMPrivateKey(key) || len(lines) < 3 {
			t.Fatalf("Secret %s/%s holds no PEM key before custody", ns, name)
		}
		needles[name] = lines[1]
	}

	// Opt the namespace in: the watcher takes every key into custody.
	var nsObj corev1.Namespace
	if err := st.Client.Get(ctx, client.ObjectKey{Name: ns}, &nsObj); err != nil {
		t.Fatal(err)
	}
	nsObj.Labels[custody.NamespaceLabelCustody] = "enabled"
	if err := st.Client.Update(ctx, &nsObj); err != nil {
		t.Fatal(err)
	}
	for name := range needles {
		waitFor(t, 30*time.Second, "Secret "+name+" taken into custody", func(ctx context.Context) (bool, error) {
			var s corev1.Secret
			if err := st.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
				return false, err
			}
			return isPlaceholder(&s), nil
		})
		assertScrubbed(t, st, ns, name, false)
	}

	// The guard kept cert-manager from re-issuing: every Certificate is
	// still at its first revision, Ready.
	for _, crt := range waitAllSettled(t, st.Client, ns, n, 30*time.Second) {
		if crt.Status.Revision == nil || *crt.Status.Revision != 1 {
			t.Errorf("Certificate %s re-issued when its namespace opted in (revision %v)", crt.Name, crt.Status.Revision)
		}
	}
	current, old := scanHistory(t, st, ns, needles)
	if current != 0 {
		t.Fatalf("%d current etcd revisions of %s still hold a private key after the watcher scrubbed it", current, ns)
	}
	if old < n {
		t.Fatalf("only %d superseded revisions hold the %d keys: the scan would prove nothing", old, n)
	}
	before, err := st.FindInEtcdFiles(needles)
	if err != nil {
		t.Fatal(err)
	}
	if inDB := inFile(before, "member/snap/db"); len(inDB) != n {
		t.Fatalf("before the purge, etcd's database file holds %d of the %d keys (%v): the scan would prove nothing", len(inDB), n, before)
	}
	t.Logf("after the watcher: 0 current revisions hold a key; %d superseded revisions and etcd's database file still hold all %d", old, n)

	rev, err := st.PurgeEtcdHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if current, old = scanHistory(t, st, ns, needles); current != 0 || old != 0 {
		t.Errorf("after compaction at revision %d: %d current and %d retained revisions hold a key", rev, current, old)
	}
	after, err := st.FindInEtcdFiles(needles)
	if err != nil {
		t.Fatal(err)
	}
	if inDB := inFile(after, "member/snap/db"); len(inDB) != 0 {
		t.Errorf("after compaction and defragmentation, etcd's database file still holds the keys of %v", inDB)
	}
	t.Logf("compacted at revision %d and defragmented: etcd's database file holds 0 of the %d keys; "+
		"the write-ahead log still holds %d of them until etcd snapshots and drops those WAL files (%v)",
		rev, n, len(inWAL(after)), inWAL(after))
}

// scanHistory counts the retained etcd revisions of the namespace's target
// Secrets that hold one of the keys: the current one of each Secret, and
// the superseded ones.
func scanHistory(t *testing.T, st *keyward.Stack, ns string, needles map[string][]byte) (current, old int) {
	t.Helper()
	revs, err := st.EtcdHistory(context.Background(), "/registry/secrets/"+ns+"/")
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	for _, r := range revs {
		last[r.Key] = r.Revision
	}
	for _, r := range revs {
		if r.Deleted || !holdsAny(r.Value, needles) {
			continue
		}
		if r.Revision == last[r.Key] {
			current++
		} else {
			old++
		}
	}
	return current, old
}

func holdsAny(b []byte, needles map[string][]byte) bool {
	for _, n := range needles {
		if bytes.Contains(b, n) {
			return true
		}
	}
	return false
}

// inFile lists the needles found in the file path.
func inFile(found map[string][]string, path string) []string {
	var out []string
	for name, files := range found {
		for _, f := range files {
			if f == path {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// inWAL lists the needles found in a write-ahead log file.
func inWAL(found map[string][]string) []string {
	var out []string
	for name, files := range found {
		for _, f := range files {
			if strings.HasPrefix(f, "member/wal/") {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
