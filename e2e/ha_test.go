// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/guard"
)

// haCertificates is how many Certificates TestVaultRaftFailover issues
// while the Raft leader is killed.
const haCertificates = 200

// raftStack starts a three-node Vault Raft cluster and a Keyward stack
// using it (framework.Options.SharedVault), both logging under one
// artifacts directory (the cluster in its vault-raft/ folder).
func raftStack(t *testing.T, opts keyward.StackOptions) (*framework.RaftCluster, *keyward.Stack) {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "e2e", "_artifacts", strings.ReplaceAll(t.Name(), "/", "_")+"-"+time.Now().Format("20060102-150405.000"))
	if err := os.MkdirAll(filepath.Join(dir, "vault-raft"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	raft := framework.RaftForTest(t, filepath.Join(dir, "vault-raft"))
	t.Logf("vault raft cluster of %d nodes initialised, unsealed and configured in %s; clients use %s (front forwarding to the active node)",
		len(raft.Nodes), time.Since(start).Round(time.Millisecond), raft.Vault.Addr)
	opts.Framework.Dir = dir
	opts.Framework.SharedVault = raft.Vault
	return raft, keyward.StartStackForTest(t, opts)
}

// TestVaultRaftFailover: Keyward, its issuer and its KMS plugin use a Vault
// Raft cluster of three nodes through one address (a front forwarding to
// the active node, as a load balancer or the vault-active Service does).
// The Raft leader is killed with SIGKILL while Certificates are being
// issued into custody: every Certificate ends Ready, each custody record
// is whole and matches its tls.crt, no key is ever at rest in a target
// Secret. Then one standby is stopped while renewals run, and brought back:
// the renewals complete as usual.
func TestVaultRaftFailover(t *testing.T) {
	t.Parallel()
	const ns = "ha"
	n := haCertificates
	raft, st := raftStack(t, keyward.StackOptions{})
	ctx := context.Background()
	c := harnessClient(t, st)
	ref := vaultIssuerAndCustodyNamespace(t, st, c, ns)
	start := time.Now()
	createCertificates(t, c, ns, n, ref)

	// Kill the leader once a quarter of the Certificates is Ready: the rest
	// are in flight.
	waitFor(t, 3*time.Minute, fmt.Sprintf("%d Certificates Ready", n/4), func(ctx context.Context) (bool, error) {
		notReady, err := countNotReady(ctx, c, ns)
		return err == nil && n-notReady >= n/4, err
	})
	leader, err := raft.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	notReady, err := countNotReady(ctx, c, ns)
	if err != nil {
		t.Fatal(err)
	}
	writeErrors := counterValue(t, st, "keyward_custody_write_errors_total", nil)
	killed := time.Now()
	if err := raft.KillNode(leader); err != nil {
		t.Fatal(err)
	}
	next := -1
	waitFor(t, 30*time.Second, "a new vault raft leader", func(ctx context.Context) (bool, error) {
		next, _ = raft.Leader(ctx)
		return next >= 0 && next != leader, nil
	})
	elected := time.Since(killed)
	crts := waitAllSettled(t, c, ns, n, 4*time.Minute)
	allReady := time.Since(killed)
	firstWrite, writesAfter := firstCustodyWriteAfter(t, st, ns, killed)
	t.Logf("SIGKILL to the vault raft leader (%s) with %d of %d Certificates not Ready: %s leads %s later; first custody write %s after the kill (%d record versions written after it); all %d Ready %s after the kill, %s after creation; custody write errors seen by keyward during the failover: %.0f",
		raft.Nodes[leader].ID, notReady, n, raft.Nodes[next].ID, elected.Round(time.Millisecond), firstWrite.Round(time.Millisecond), writesAfter,
		n, allReady.Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
		counterValue(t, st, "keyward_custody_write_errors_total", nil)-writeErrors)
	assertCustodyWhole(t, st, c, ns, crts, 0)
	created, several := requestsCreated(t, st, ns)
	t.Logf("CertificateRequests created: %d for %d Certificates (extra: %d; Certificates with several: %v)", created, n, created-n, several)

	restart := time.Now()
	if err := raft.StartNode(ctx, leader); err != nil {
		t.Fatal(err)
	}
	if err := raft.WaitHealthy(ctx, len(raft.Nodes), time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed node %s restarted, unsealed and a voter again in %s", raft.Nodes[leader].ID, time.Since(restart).Round(time.Millisecond))

	baseline := renewBatch(t, st, c, crts[5:10], nil)
	standby := (next + 1) % len(raft.Nodes)
	stopped := renewBatch(t, st, c, crts[:5], func() {
		if err := raft.StopNode(standby); err != nil {
			t.Fatal(err)
		}
	})
	if err := raft.StartNode(ctx, standby); err != nil {
		t.Fatal(err)
	}
	if err := raft.WaitHealthy(ctx, len(raft.Nodes), time.Minute); err != nil {
		t.Fatal(err)
	}
	if l, err := raft.Leader(ctx); err != nil || l != next {
		t.Errorf("vault raft leader after a standby came back: %d (%v), want %s unchanged", l, err, raft.Nodes[next].ID)
	}
	t.Logf("5 forced renewals with every vault node up: all done in %s; 5 with standby %s stopped (SIGTERM) right after they were forced: all done in %s; the standby is back, unsealed, a voter",
		baseline.Round(time.Millisecond), raft.Nodes[standby].ID, stopped.Round(time.Millisecond))
	crts = waitAllSettled(t, c, ns, n, time.Minute)
	assertCustodyWhole(t, st, c, ns, crts, 10)
	assertLogsClean(t, st.Dir)
	assertLogsClean(t, filepath.Join(st.Dir, "vault-raft"))
}

// assertCustodyWhole is assertAllInCustody plus the namespace's custody
// inventory: no record without its Secret, and no older record version
// holding another key than its current one except the key a renewal
// replaced (a torn or lost write, or an extra issuance, would show as one
// or the other, or as a failed custody check).
func assertCustodyWhole(t *testing.T, st *keyward.Stack, c client.Client, ns string, crts []cmapi.Certificate, renewed int) {
	t.Helper()
	assertAllInCustody(t, st, c, ns, crts)
	orphans, extra, stray := custodyInventory(t, st, c, ns)
	if len(orphans) > 0 || stray != renewed {
		t.Errorf("custody inventory of %s: records without a Secret %v; %d older versions hold another key than the current one, want %d (one per renewal)", ns, orphans, stray, renewed)
	}
	t.Logf("custody of %s: %d Certificates, each record whole and matching tls.crt; %d older record versions (%d of them the keys before %d renewals), 0 orphans", ns, len(crts), extra, stray, renewed)
}

// firstCustodyWriteAfter is how long after t0 Vault stored the first
// custody record version of the namespace, and how many versions it
// stored after t0 (record metadata, read with the root token).
func firstCustodyWriteAfter(t *testing.T, st *keyward.Stack, ns string, t0 time.Time) (time.Duration, int) {
	t.Helper()
	ctx := context.Background()
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	list, err := vc.Logical().ListWithContext(ctx, framework.VaultCustodyMount+"/metadata/"+framework.VaultCustodyPrefix+"/"+ns)
	if err != nil || list == nil {
		t.Fatalf("listing custody records of %s: %v", ns, err)
	}
	keys, _ := list.Data["keys"].([]any)
	var first time.Time
	after := 0
	for _, k := range keys {
		name, _ := k.(string)
		md, err := vc.KVv2(framework.VaultCustodyMount).GetMetadata(ctx, framework.VaultCustodyPrefix+"/"+ns+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range md.Versions {
			if v.CreatedTime.After(t0) {
				after++
				if first.IsZero() || v.CreatedTime.Before(first) {
					first = v.CreatedTime
				}
			}
		}
	}
	if first.IsZero() {
		t.Fatalf("no custody record of %s was written after the kill", ns)
	}
	return first.Sub(t0), after
}

// renewBatch forces a renewal of each Certificate, runs during (if set)
// right after, and waits until each placeholder names a new serial and the
// Certificate is settled. It returns how long that took.
func renewBatch(t *testing.T, st *keyward.Stack, c client.Client, crts []cmapi.Certificate, during func()) time.Duration {
	t.Helper()
	before := map[string]string{}
	for i := range crts {
		before[crts[i].Name] = secretSerial(t, c, crts[i].Namespace, crts[i].Spec.SecretName)
	}
	start := time.Now()
	for i := range crts {
		forceRenewal(t, st, &crts[i], "renewal forced by the vault raft e2e test")
	}
	if during != nil {
		during()
	}
	for i := range crts {
		crt := &crts[i]
		waitFor(t, 2*time.Minute, "renewal of "+crt.Name, func(ctx context.Context) (bool, error) {
			var cur cmapi.Certificate
			if err := c.Get(ctx, client.ObjectKeyFromObject(crt), &cur); err != nil {
				return false, err
			}
			return certificateSettled(&cur) && secretSerial(t, c, crt.Namespace, crt.Spec.SecretName) != before[crt.Name], nil
		})
	}
	return time.Since(start)
}

// TestVaultSnapshotRestore: a Raft snapshot is taken while custody is in
// use, the whole cluster is destroyed (every node killed, its data
// deleted), a new cluster is initialised, the snapshot restored into it
// (snapshot-force) and unsealed with the old cluster's keys, and it is put
// behind the same client address. Every placeholder's record is back at
// the version the placeholder names, with the same certificate serial, and
// nothing is re-issued. The audit trail of the custody write, the guard's
// description read and an agent's read is in both audit devices, with actor,
// time and path and no key material.
func TestVaultSnapshotRestore(t *testing.T) {
	t.Parallel()
	const (
		ns    = "demo" // the namespace deploy/vault/keyward-agent.hcl grants
		n     = 5
		agent = "edge"
	)
	raft, st := raftStack(t, keyward.StackOptions{
		// The watcher's custody audit runs throughout: through the outage
		// and against the restored cluster (5 min by default).
		Options: func(o *app.Options) { o.CustodyAuditPeriod = 2 * time.Second },
	})
	ctx := context.Background()
	c := harnessClient(t, st)
	ref := vaultIssuerAndCustodyNamespace(t, st, c, ns)
	createCertificates(t, c, ns, n, ref)
	crts := waitAllSettled(t, c, ns, n, 2*time.Minute)
	assertCustodyWhole(t, st, c, ns, crts, 0)
	gatewayIdentity(t, st, ns, agent, "cert-000-tls")
	placed := map[string]custody.Placeholder{}
	for _, crt := range crts {
		ph, ok := custody.ParsePlaceholder(getSecret(t, c, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName}))
		if !ok {
			t.Fatalf("Secret %s/%s is not a placeholder", ns, crt.Spec.SecretName)
		}
		placed[crt.Spec.SecretName] = ph
	}
	requests, _ := requestsCreated(t, st, ns)

	snap := filepath.Join(st.Dir, "vault-raft.snap")
	t0 := time.Now()
	if err := raft.SnapshotSave(ctx, snap); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(snap)
	if err != nil {
		t.Fatal(err)
	}
	saved := time.Since(t0)
	if err := raft.Destroy(); err != nil {
		t.Fatal(err)
	}
	destroyed := time.Now()
	fresh, err := framework.StartVaultRaft(ctx, framework.RaftOptions{
		Dir: filepath.Join(st.Dir, "vault-raft-restored"), Unconfigured: true, Front: raft.Front, Shipper: raft.Shipper,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fresh.Stop)
	started := time.Since(destroyed)
	if err := fresh.SnapshotRestore(ctx, snap, raft); err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot of %d bytes saved in %s; cluster destroyed; a new cluster started in %s, restored, unsealed with the old keys and behind %s %s after the destruction",
		info.Size(), saved.Round(time.Millisecond), started.Round(time.Millisecond), raft.Vault.Addr, time.Since(destroyed).Round(time.Millisecond))

	assertRecordsRestored(t, st, placed)
	// Keyward, its issuer and its KMS plugin reach the new cluster at the
	// same address. The custody audit (every 2 s) must find every record:
	// two audits finish after the restore, so one ran wholly against the
	// restored cluster (an audit that missed a record would release its
	// Secret, which the version check below catches).
	audits := func() float64 { return counterValue(t, st, "keyward_custody_audit_duration_seconds", nil) }
	auditsBefore := audits()
	waitFor(t, time.Minute, "two custody audits after the restore", func(context.Context) (bool, error) {
		return audits() >= auditsBefore+2, nil
	})
	// Then every Secret is touched, so cert-manager checks each Certificate
	// again, finds tls.key empty and would re-issue: the guard must find
	// the record in the restored cluster and stop it. Its answers for these
	// records were cached (primed by the custody writes) before the
	// snapshot; the touch comes once they have expired, so the guard reads
	// the restored cluster and does not answer from its cache.
	if wait := time.Until(t0.Add(guard.DefaultCacheTTL)); wait > 0 {
		t.Logf("waiting %s for the guard's cached answers (%s) from before the snapshot to expire", wait.Round(time.Millisecond), guard.DefaultCacheTTL)
		time.Sleep(wait)
	}
	guardAnswers := func() float64 {
		return counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "veto"}) +
			counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "pass_rewritten"})
	}
	storeReads := func() float64 {
		return counterValue(t, st, "keyward_guard_custody_lookups_total", map[string]string{"result": guard.LookupStore})
	}
	guardBefore, readsBefore := guardAnswers(), storeReads()
	for _, crt := range crts {
		touchSecret(t, c, ns, crt.Spec.SecretName)
	}
	guardDecisions := func() float64 { return guardAnswers() - guardBefore }
	storeLookups := func() float64 { return storeReads() - readsBefore }
	// Each touched Certificate gets a guard decision (the re-issue the
	// guard stops would start with that status update), on its record as
	// read from the restored cluster.
	waitFor(t, time.Minute, "a guard decision on a record read from the restored cluster per touched Certificate", func(context.Context) (bool, error) {
		return guardDecisions() >= n && storeLookups() >= n, nil
	})
	crts = waitAllSettled(t, c, ns, n, time.Minute)
	guarded, read := guardDecisions(), storeLookups()
	for _, crt := range crts {
		ph := currentPlaceholder(t, st, ns, crt.Spec.SecretName)
		if want := placed[crt.Spec.SecretName]; ph.version != want.Version || ph.serial != want.Serial {
			t.Errorf("Secret %s/%s names version %d serial %s after the restore, want version %d serial %s", ns, crt.Spec.SecretName, ph.version, ph.serial, want.Version, want.Serial)
		}
	}
	if after, several := requestsCreated(t, st, ns); after != requests {
		t.Errorf("CertificateRequests: %d before the snapshot, %d after the restore (re-issues: %v), want 0 re-issues", requests, after, several)
	}
	t.Logf("restored: %d of %d placeholders find their record at the version they name with the same serial; 0 CertificateRequests after the restore (custody audit every 2 s; %.0f guard vetoes or rewrites and %.0f custody reads from the restored cluster after every Secret was touched)", len(placed), n, guarded, read)
	assertCustodyWhole(t, st, c, ns, crts, 0)

	agentRead(t, st, ns, agent, placed["cert-000-tls"])
	assertAuditTrail(t, st, raft, ns, "cert-000-tls", agent)
	assertLogsClean(t, st.Dir)
}

// assertRecordsRestored reads, with the root token, the custody record
// version each placeholder names: it must hold the placeholder's serial
// and a key that is the pair of its certificate.
func assertRecordsRestored(t *testing.T, st *keyward.Stack, placed map[string]custody.Placeholder) {
	t.Helper()
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for name, ph := range placed {
		rel := strings.TrimPrefix(ph.Path, framework.VaultCustodyMount+"/")
		sec, err := vc.KVv2(framework.VaultCustodyMount).GetVersion(context.Background(), rel, ph.Version)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: version %d of %s: %v", name, ph.Version, ph.Path, err))
			continue
		}
		certPEM, _ := sec.Data[corev1.TLSCertKey].(string)
		keyPEM, _ := sec.Data[corev1.TLSPrivateKeyKey].(string)
		if serial := pemSerial(certPEM); serial != ph.Serial {
			problems = append(problems, fmt.Sprintf("%s: version %d holds serial %s, the placeholder names %s", name, ph.Version, serial, ph.Serial))
		}
		if err := keyMatchesCert([]byte(keyPEM), []byte(certPEM)); err != nil {
			problems = append(problems, fmt.Sprintf("%s: version %d: %v", name, ph.Version, err))
		}
	}
	reportProblems(t, "custody records after the restore", problems)
}

// touchSecret adds an annotation to a Secret: an update cert-manager reacts
// to like any other change of a Certificate's Secret.
func touchSecret(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &corev1.Secret{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return err
		}
		s.Annotations["e2e.keyward.io/touched"] = time.Now().Format(time.RFC3339Nano)
		return c.Update(context.Background(), s)
	}); err != nil {
		t.Fatalf("touching Secret %s/%s: %v", ns, name, err)
	}
}

// pemSerial is custody.SerialHex of a PEM certificate ("" if it does not parse).
func pemSerial(certPEM string) string {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return ""
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return ""
	}
	return custody.SerialHex(leaf)
}

// agentRead reads the record version ph names as `keyward agent` does:
// Kubernetes auth as the gateway's ServiceAccount (role keyward-agent,
// policy deploy/vault/keyward-agent.hcl), GET of that one version.
func agentRead(t *testing.T, st *keyward.Stack, ns, sa string, ph custody.Placeholder) {
	t.Helper()
	ctx := context.Background()
	vc, _, err := vaultLogin(ctx, t, st.Env, ns, sa, framework.VaultAudience, "keyward-agent")
	if err != nil {
		t.Fatalf("agent login to the restored cluster: %v", err)
	}
	dataPath := framework.VaultCustodyMount + "/data/" + strings.TrimPrefix(ph.Path, framework.VaultCustodyMount+"/")
	sec, err := vc.Logical().ReadWithDataWithContext(ctx, dataPath, map[string][]string{"version": {strconv.Itoa(ph.Version)}})
	if err != nil || sec == nil {
		t.Fatalf("agent read of %s version %d: %v", dataPath, ph.Version, err)
	}
	if serial := pemSerial(nestedString(sec.Data, "data", corev1.TLSCertKey)); serial != ph.Serial {
		t.Errorf("the agent reads serial %s from the restored cluster, the placeholder names %s", serial, ph.Serial)
	}
}

// timedAuditEntry is auditEntry with the entry's time and error.
type timedAuditEntry struct {
	auditEntry
	Time  time.Time `json:"time"`
	Error string    `json:"error"`
}

// readTimedAudit parses every line of an audit log.
func readTimedAudit(t *testing.T, path string) []timedAuditEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []timedAuditEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e timedAuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: a line is not JSON: %v", filepath.Base(path), err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// assertAuditTrail checks, in the file audit device's log and in the log
// the second (socket) device shipped, that the custody write of ns/secret,
// a guard description read in ns (the guard reads a record version's
// description through the subkeys endpoint when a status update needs a
// decision, not for every Secret) and the agent's read
// of ns/secret each appear with
// the actor's policies and display name, a time and the path; and that no
// private key of the namespace appears in either log.
func assertAuditTrail(t *testing.T, st *keyward.Stack, raft *framework.RaftCluster, ns, secret, agent string) {
	t.Helper()
	prefix := framework.VaultCustodyMount + "/%s/" + framework.VaultCustodyPrefix + "/" + ns + "/" + secret
	want := []struct {
		what, path, policy, displayName string
		ops                             []string
	}{
		{"custody write", fmt.Sprintf(prefix, "data"), framework.PolicyCustodyWriter, framework.KeywardServiceAccount, []string{"create", "update"}},
		{"guard description read", strings.TrimSuffix(fmt.Sprintf(prefix, "subkeys"), secret), framework.PolicyGuard, framework.KeywardServiceAccount, []string{"read"}},
		{"agent read", fmt.Sprintf(prefix, "data"), "keyward-agent", agent, []string{"read"}},
	}
	keys := namespaceKeys(t, st, ns)
	for _, log := range []string{raft.Vault.AuditLogPath, raft.ShippedAuditLogPath} {
		entries := readTimedAudit(t, log)
		var found []string
		for _, w := range want {
			i := slices.IndexFunc(entries, func(e timedAuditEntry) bool {
				return e.Type == "response" && e.Error == "" && (e.Request.Path == w.path || strings.HasSuffix(w.path, "/") && strings.HasPrefix(e.Request.Path, w.path)) && slices.Contains(w.ops, e.Request.Operation) &&
					slices.Contains(e.Auth.Policies, w.policy)
			})
			if i < 0 {
				t.Errorf("%s: no successful %s of %s by a token with policy %s", filepath.Base(log), w.what, w.path, w.policy)
				continue
			}
			e := entries[i]
			if !strings.Contains(e.Auth.DisplayName, w.displayName) || e.Time.IsZero() || time.Since(e.Time) > 30*time.Minute {
				t.Errorf("%s: %s of %s recorded with display name %q and time %s, want the actor %q and a time", filepath.Base(log), w.what, w.path, e.Auth.DisplayName, e.Time, w.displayName)
			}
			found = append(found, fmt.Sprintf("%s of %s by %s %v at %s", w.what, e.Request.Path, e.Auth.DisplayName, e.Auth.Policies, e.Time.Format(time.RFC3339Nano)))
		}
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("PRIVATE KEY-----")) {
			t.Errorf("%s holds a PEM private key marker", filepath.Base(log))
		}
		for name, k := range keys {
			for _, line := range strings.Split(strings.TrimSpace(k), "\n") {
				if !strings.HasPrefix(line, "-----") && bytes.Contains(b, []byte(line)) {
					t.Errorf("%s holds a line of the private key of %s/%s", filepath.Base(log), ns, name)
				}
			}
		}
		t.Logf("%s: %d entries; %s; none of the %d private keys of %s in it", filepath.Base(log), len(entries), strings.Join(found, "; "), len(keys), ns)
	}
}

// namespaceKeys reads the current private key of every custody record of
// ns with the root token.
func namespaceKeys(t *testing.T, st *keyward.Stack, ns string) map[string]string {
	t.Helper()
	var secrets corev1.SecretList
	if err := st.Client.List(context.Background(), &secrets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range secrets.Items {
		if rec, ok := readCustody(t, st, ns, s.Name); ok {
			out[s.Name] = string(rec.Key)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no custody record in %s", ns)
	}
	return out
}
