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
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// TestCrashConsistency: 200 Certificates are issued at once while the Keyward
// process is killed with SIGKILL at random points and restarted, several
// times. Whatever was in flight, the end state must be what an undisturbed
// run gives: every Certificate Ready, its key in custody and matching
// tls.crt, no key ever at rest in a target Secret, no custody record without
// a Secret, and a bounded number of extra issuances.
func TestCrashConsistency(t *testing.T) {
	const (
		n     = 200
		kills = 5
		ns    = "crash"
	)
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	st := keyward.StartStackForTest(t, keyward.StackOptions{NoKeyward: true})
	ctx := context.Background()
	c := harnessClient(t, st)

	proc, err := st.StartKeywardProcess(ctx)
	if err != nil {
		t.Fatalf("starting keyward as a process: %v", err)
	}
	ref := vaultIssuerAndCustodyNamespace(t, st, c, ns)

	start := time.Now()
	createCertificates(t, c, ns, n, ref)
	t.Logf("created %d Certificates in %s", n, time.Since(start).Round(time.Millisecond))

	// Kill points are random points of the issuance: the moment a random
	// share (2–90 %) of the Certificates is Ready, once the process has also
	// been up a random 0.2–1 s, so kills land in every phase (start-up,
	// signing, scrubbing, guarding). Down time is random too, 0–1.5 s.
	// The schedule replays from the seed; the sleeps set it, they assert
	// nothing.
	points := make([]int, kills)
	for i := range points {
		points[i] = int(float64(n) * (0.02 + 0.88*rng.Float64()))
	}
	sort.Ints(points)
	inFlight := make([]int, 0, kills)
	for i, point := range points {
		upSince := time.Now()
		minUp := 200*time.Millisecond + time.Duration(rng.Int64N(int64(800*time.Millisecond)))
		down := time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d Certificates Ready (kill point %d)", point, i+1), func(ctx context.Context) (bool, error) {
			notReady, err := countNotReady(ctx, c, ns)
			return err == nil && n-notReady >= point, err
		})
		time.Sleep(time.Until(upSince.Add(minUp)))
		notReady, err := countNotReady(ctx, c, ns)
		if err != nil {
			t.Fatal(err)
		}
		if proc.Exited() {
			t.Fatalf("keyward process (pid %d) exited on its own before kill %d; see %s", proc.Pid(), i+1, proc.LogPath)
		}
		if err := proc.Kill(); err != nil {
			t.Fatal(err)
		}
		inFlight = append(inFlight, notReady)
		t.Logf("kill %d at +%s: SIGKILL to pid %d after %s up, %d of %d Certificates not Ready; restarting after %s",
			i+1, time.Since(start).Round(time.Millisecond), proc.Pid(), time.Since(upSince).Round(time.Millisecond), notReady, n, down.Round(time.Millisecond))
		time.Sleep(down)
		if proc, err = st.StartKeywardProcess(ctx); err != nil {
			t.Fatalf("restarting keyward after kill %d: %v", i+1, err)
		}
	}
	duringIssuance := 0
	for _, f := range inFlight {
		if f > 0 {
			duringIssuance++
		}
	}
	if duringIssuance < 3 {
		t.Fatalf("only %d of %d kills hit an issuance in flight (Certificates not Ready per kill: %v); at least 3 must", duringIssuance, kills, inFlight)
	}

	crts := waitAllSettled(t, c, ns, n, 3*time.Minute)
	t.Logf("admission calls the apiserver could not complete (from its log): %s", webhookFailures(t, st))
	t.Logf("CRASH: %d Certificates Ready %s after creation, with %d SIGKILLs of Keyward during issuance (seed %d)",
		n, time.Since(start).Round(time.Millisecond), kills, seed)
	if proc.Exited() {
		t.Errorf("the last keyward process exited on its own; see %s", proc.LogPath)
	}

	// Every Certificate's key is in custody and is the pair of tls.crt.
	var problems []string
	for _, crt := range crts {
		if err := checkCustody(t, st, c, ns, crt.Spec.SecretName, ""); err != nil {
			problems = append(problems, fmt.Sprintf("Certificate %s/%s: %v", ns, crt.Name, err))
		}
	}
	reportProblems(t, "custody check", problems)

	// No key at rest in any target Secret revision, ever.
	assertNoKeyAtRest(t, st, ns, false)

	// No custody record without a Secret. Keyward never deletes records;
	// they are keyed by namespace and Secret name, so a crash mid-write only
	// adds versions to the record of the same Secret, and a record outlives
	// its Secret only when the Secret is deleted (docs/operations.md,
	// "Custody records without a Secret"). Nothing here deletes Secrets, so
	// none may be orphaned. Older versions are kept up to max_versions (5)
	// and pruned by Vault as newer ones arrive; they are counted.
	orphans, versions, strayKeys := custodyInventory(t, st, c, ns)
	if len(orphans) > 0 {
		t.Errorf("%d custody records have no Secret (orphans): %v", len(orphans), orphans)
	}
	t.Logf("custody records: %d, none orphaned; %d record versions beyond the first, %d of them holding a key other than the record's current one (a key from an issuance whose Secret write did not complete, kept until max_versions prunes it)",
		n, versions, strayKeys)

	// Extra issuances. cert-manager keeps only the last CertificateRequest
	// per Certificate (revisionHistoryLimit defaults to 1), so count
	// creations in etcd's history, not what is left. A kill can cost an
	// issuance only for a Certificate whose issuance is in flight, at most
	// one per kill: its status updates are refused while Keyward is down
	// (failurePolicy Fail) and retried; a restarted guard whose caches are
	// not synced fails open (docs/guard.md); and a kill after the scrub
	// webhook's Vault write but before the apiserver stores the Secret
	// leaves a record whose current version the placeholder does not name,
	// which the guard reads as a mismatch, so it lets one re-issue through,
	// which rewrites the record. Under load cert-manager's trigger can also see the new Secret
	// late and ask again with reason DoesNotExist; the guard drops that when
	// it knows the placeholder (its cache holds it, or its process wrote the
	// record within the last 30 s), which a freshly restarted Keyward may
	// not. Measured before the guard looked at DoesNotExist: 0–2 extra for
	// 200 Certificates and 5 kills.
	created, several := requestsCreated(t, st, ns)
	extra := created - n
	bound := 0
	for _, f := range inFlight {
		bound += f
	}
	t.Logf("CertificateRequests created: %d for %d Certificates, %d extra with %d kills (%.1f per kill); bound: sum over kills of the Certificates in flight = %d; Certificates with several requests: %v",
		created, n, extra, kills, float64(extra)/kills, bound, several)
	if extra < 0 {
		t.Errorf("only %d CertificateRequests created for %d Ready Certificates", created, n)
	}
	if extra > bound {
		t.Errorf("%d extra CertificateRequests, more than the %d Certificates in flight summed over the %d kills: a kill costs more than one issuance per Certificate in flight", extra, bound, kills)
	}
	var reissued []string
	for i := range crts {
		if r := crts[i].Status.Revision; r != nil && *r > 1 {
			reissued = append(reissued, fmt.Sprintf("%s (revision %d)", crts[i].Name, *r))
		}
	}
	t.Logf("status.revision distribution: %s; issued more than once: %v", revisionHistogram(crts), reissued)
	assertLogsClean(t, st.Dir)
}

// TestDisasterRecovery: the custody mount is wiped (disabled and enabled
// again, same path and config) under 100 Ready Certificates. Nothing manual
// follows: the watcher's audit (period 2 s here; 5 min by default) releases
// every placeholder whose record is gone, the guard lets cert-manager's
// re-issue through, and each Certificate comes back Ready with a new key,
// held in the new mount.
func TestDisasterRecovery(t *testing.T) {
	const (
		n           = 100
		ns          = "dr"
		auditPeriod = 2 * time.Second
	)
	st := keyward.StartStackForTest(t, keyward.StackOptions{
		Options: func(o *app.Options) { o.CustodyAuditPeriod = auditPeriod },
	})
	ctx := context.Background()
	c := harnessClient(t, st)
	ref := vaultIssuerAndCustodyNamespace(t, st, c, ns)
	start := time.Now()
	createCertificates(t, c, ns, n, ref)
	before := waitAllSettled(t, c, ns, n, 2*time.Minute)
	t.Logf("%d Certificates Ready in %s", n, time.Since(start).Round(time.Millisecond))

	oldKeys := map[string]string{} // Secret name → key fingerprint before the wipe
	oldRevision := map[string]int{}
	var problems []string
	for _, crt := range before {
		if err := checkCustody(t, st, c, ns, crt.Spec.SecretName, ""); err != nil {
			problems = append(problems, fmt.Sprintf("Certificate %s/%s before the wipe: %v", ns, crt.Name, err))
			continue
		}
		sec := getSecret(t, c, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName})
		oldKeys[crt.Spec.SecretName] = keySHA256(t, sec.Data[corev1.TLSCertKey])
		oldRevision[crt.Name] = *crt.Status.Revision
	}
	reportProblems(t, "custody check before the wipe", problems)
	if t.Failed() {
		t.FailNow()
	}

	wiped := time.Now()
	wipeCustodyMount(t, st)

	// Recovered: Ready, not issuing, the Secret a placeholder again for a
	// new key, and the new mount holds that key.
	verified := map[string]bool{}
	var last []string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var crts cmapi.CertificateList
		if err := c.List(ctx, &crts, client.InNamespace(ns)); err != nil {
			return false, nil
		}
		last = last[:0]
		for i := range crts.Items {
			crt := &crts.Items[i]
			if verified[crt.Name] {
				continue
			}
			if !certificateSettled(crt) {
				last = append(last, fmt.Sprintf("%s: not settled (%s)", crt.Name, conditionSummary(crt)))
				continue
			}
			if err := checkCustody(t, st, c, ns, crt.Spec.SecretName, oldKeys[crt.Spec.SecretName]); err != nil {
				last = append(last, fmt.Sprintf("%s: %v", crt.Name, err))
				continue
			}
			verified[crt.Name] = true
		}
		return len(verified) == n, nil
	})
	recovery := time.Since(wiped)
	if err != nil {
		sort.Strings(last)
		t.Fatalf("after the custody mount was wiped, %d of %d Certificates did not recover within 3m: %s", n-len(verified), n, strings.Join(truncateList(last, 15), "; "))
	}
	t.Logf("DR: custody mount wiped under %d Ready Certificates; all %d back to Ready with a new key held in the new mount %s later (audit period %s, nothing manual)",
		n, n, recovery.Round(100*time.Millisecond), auditPeriod)

	// Final state, once more for all (nothing regressed after being
	// verified), and how many issuances the recovery took.
	after := waitAllSettled(t, c, ns, n, 30*time.Second)
	problems = problems[:0]
	reissues := map[int]int{}
	for _, crt := range after {
		if err := checkCustody(t, st, c, ns, crt.Spec.SecretName, oldKeys[crt.Spec.SecretName]); err != nil {
			problems = append(problems, fmt.Sprintf("Certificate %s/%s after recovery: %v", ns, crt.Name, err))
		}
		reissues[*crt.Status.Revision-oldRevision[crt.Name]]++
	}
	reportProblems(t, "custody check after recovery", problems)
	t.Logf("issuances per Certificate during recovery (issuances: Certificates): %v", reissues)
	// The documented recovery is one re-issue per lost key
	// (docs/operations.md, "Custody data lost"); a guard reading a lagging
	// cache may pass once more (docs/guard.md, "Stale cache"), never more.
	for k, count := range reissues {
		if k < 1 || k > 2 {
			t.Errorf("%d Certificates took %d issuances to recover, want 1 (at most 2)", count, k)
		}
	}
	assertNoKeyAtRest(t, st, ns, false)
	assertLogsClean(t, st.Dir)
}

// webhookFailures counts, per Keyward webhook, the calls the apiserver
// logged as failed: refused (Keyward was down) or reset (a SIGKILL hit the
// call in flight). Informational: it shows where the kills landed.
func webhookFailures(t *testing.T, st *keyward.Stack) string {
	t.Helper()
	counts, err := webhookFailureCounts(st)
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, hook := range keywardWebhooks {
		parts = append(parts, fmt.Sprintf("%s %d refused, %d cut off in flight", hook, counts[hook].refused, counts[hook].cut))
	}
	return strings.Join(parts, "; ")
}

var keywardWebhooks = []string{"secret-scrub.keyward.io", "custody-guard.keyward.io"}

// webhookFailureCount is how many calls to one webhook the apiserver logged
// as refused (nothing listening) or cut off in flight (reset, EOF).
type webhookFailureCount struct{ refused, cut int }

// webhookFailureCounts reads the apiserver's log for failed calls to
// Keyward's webhooks.
func webhookFailureCounts(st *keyward.Stack) (map[string]webhookFailureCount, error) {
	b, err := os.ReadFile(filepath.Join(st.Dir, "kube-apiserver.log"))
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver.log unreadable: %v", err)
	}
	out := map[string]webhookFailureCount{}
	for _, hook := range keywardWebhooks {
		var n webhookFailureCount
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, `failed calling webhook "`+hook+`"`) {
				continue
			}
			switch {
			case strings.Contains(line, "connection refused"):
				n.refused++
			case strings.Contains(line, "connection reset by peer"), strings.Contains(line, "EOF"):
				n.cut++
			}
		}
		out[hook] = n
	}
	return out, nil
}

// crashSeed is the kill schedule's seed: KEYWARD_CRASH_SEED replays one.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("KEYWARD_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("KEYWARD_CRASH_SEED=%q: %v", s, err)
		}
		return v
	}
	v := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d (KEYWARD_CRASH_SEED=%d replays it)", v, v)
	return v
}

// harnessClient is an administrator's client without client-side rate
// limiting, so creating and polling hundreds of objects is never throttled
// by the test itself, and without the apiserver's warnings about
// placeholder Secrets (an empty tls.key is the point of custody).
func harnessClient(t *testing.T, st *keyward.Stack) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(st.RESTConfig)
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.WarningHandler = rest.NoWarnings{}
	c, err := client.New(cfg, client.Options{Scheme: st.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createCertificates creates n Certificates cert-000… concurrently.
func createCertificates(t *testing.T, c client.Client, ns string, n int, ref cmmeta.IssuerReference) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := fmt.Sprintf("cert-%03d", i)
				crt := newCertificate(ns, name, ref, name+".example.com")
				if err := c.Create(context.Background(), crt); err != nil {
					errs <- fmt.Errorf("creating Certificate %s/%s: %w", ns, name, err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func countNotReady(ctx context.Context, c client.Client, ns string) (int, error) {
	var crts cmapi.CertificateList
	if err := c.List(ctx, &crts, client.InNamespace(ns)); err != nil {
		return 0, fmt.Errorf("listing Certificates in %s: %w", ns, err)
	}
	notReady := 0
	for i := range crts.Items {
		if !isReady(&crts.Items[i]) {
			notReady++
		}
	}
	return notReady, nil
}

// certificateSettled: cert-manager finished the current issuance (Ready, a revision,
// no Issuing condition).
func certificateSettled(crt *cmapi.Certificate) bool {
	issuing := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionIssuing)
	return isReady(crt) && crt.Status.Revision != nil && (issuing == nil || issuing.Status != cmmeta.ConditionTrue)
}

func conditionSummary(crt *cmapi.Certificate) string {
	var parts []string
	for _, cond := range crt.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s/%s", cond.Type, cond.Status, cond.Reason))
	}
	if len(parts) == 0 {
		return "no conditions"
	}
	return strings.Join(parts, ",")
}

// waitAllSettled waits until the namespace holds n settled Certificates and
// returns them; on timeout it names those that are not.
func waitAllSettled(t *testing.T, c client.Client, ns string, n int, timeout time.Duration) []cmapi.Certificate {
	t.Helper()
	var crts cmapi.CertificateList
	var pending []string
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.List(ctx, &crts, client.InNamespace(ns)); err != nil {
			return false, nil
		}
		pending = pending[:0]
		for i := range crts.Items {
			if !certificateSettled(&crts.Items[i]) {
				pending = append(pending, crts.Items[i].Name+" ("+conditionSummary(&crts.Items[i])+")")
			}
		}
		return len(crts.Items) == n && len(pending) == 0, nil
	})
	if err != nil {
		sort.Strings(pending)
		t.Fatalf("waiting %s for %d Certificates in %s to be Ready and settled: %d of %d are not: %s",
			timeout, n, ns, len(pending), len(crts.Items), strings.Join(truncateList(pending, 15), "; "))
	}
	return crts.Items
}

// checkCustody checks one target Secret against Vault (read with the root
// token): a placeholder (empty tls.key, custody label and annotations) whose
// named key is the key of tls.crt, and whose current custody record holds
// tls.crt and its private key. With notKey set, the key must differ from it.
func checkCustody(t *testing.T, st *keyward.Stack, c client.Client, ns, secret, notKey string) error {
	t.Helper()
	sec := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: secret}, sec); err != nil {
		return fmt.Errorf("reading Secret %s: %w", secret, err)
	}
	if k, ok := sec.Data[corev1.TLSPrivateKeyKey]; !ok || len(k) != 0 {
		return fmt.Errorf("Secret %s: tls.key must be present and empty, holds %d bytes (present %v)", secret, len(k), ok)
	}
	if sec.Labels[custody.LabelCustody] != custody.LabelCustodyVault {
		return fmt.Errorf("Secret %s is not a custody placeholder (label %s=%q)", secret, custody.LabelCustody, sec.Labels[custody.LabelCustody])
	}
	crtPEM := sec.Data[corev1.TLSCertKey]
	fp, err := spkiFingerprint(crtPEM)
	if err != nil {
		return fmt.Errorf("Secret %s tls.crt: %w", secret, err)
	}
	if notKey != "" && fp == notKey {
		return fmt.Errorf("Secret %s still holds the certificate of the key from before the wipe (%s)", secret, fp)
	}
	if got := sec.Annotations[custody.AnnotationKeySHA256]; got != fp {
		return fmt.Errorf("Secret %s names key %s, its tls.crt is for key %s", secret, got, fp)
	}
	rec, ok := readCustody(t, st, ns, secret)
	if !ok {
		return fmt.Errorf("no custody record for Secret %s", secret)
	}
	if v, err := strconv.Atoi(sec.Annotations[custody.AnnotationVersion]); err != nil || v < 1 || v > rec.Version {
		return fmt.Errorf("Secret %s names custody version %q, the record's current version is %d", secret, sec.Annotations[custody.AnnotationVersion], rec.Version)
	}
	if !bytes.Equal(rec.Cert, crtPEM) {
		return fmt.Errorf("custody record of Secret %s (version %d) holds another certificate than tls.crt", secret, rec.Version)
	}
	return keyMatchesCert(rec.Key, crtPEM)
}

// keyMatchesCert is assertKeyMatchesCert returning an error, for checks over
// many objects that report them all.
func keyMatchesCert(keyPEM, certPEM []byte) error {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return errors.New("custody key is not PEM")
	}
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
				return fmt.Errorf("custody key does not parse: %w", err)
			}
		}
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil {
		return errors.New("certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return errors.New("custody key is not a signing key")
	}
	if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
		return errors.New("custody key is not the pair of the certificate's public key")
	}
	return nil
}

// spkiFingerprint is the hex SHA-256 of the leaf's SubjectPublicKeyInfo, as
// Keyward annotates it.
func spkiFingerprint(certPEM []byte) (string, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return "", errors.New("not PEM")
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]), nil
}

// reportProblems fails the test with every problem found (the first 20
// spelled out), so one run shows the whole picture.
func reportProblems(t *testing.T, what string, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	sort.Strings(problems)
	t.Errorf("%s: %d problems:\n  %s", what, len(problems), strings.Join(truncateList(problems, 20), "\n  "))
}

func truncateList(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… and %d more", len(s)-n))
	}
	return s
}

// custodyInventory lists the namespace's custody records (root token) and
// returns those without a Secret, the number of record versions beyond the
// first, and how many of those hold a key other than the record's current
// version.
func custodyInventory(t *testing.T, st *keyward.Stack, c client.Client, ns string) (orphans []string, extraVersions, strayKeys int) {
	t.Helper()
	ctx := context.Background()
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	list, err := vc.Logical().ListWithContext(ctx, framework.VaultCustodyMount+"/metadata/"+framework.VaultCustodyPrefix+"/"+ns)
	if err != nil {
		t.Fatalf("listing custody records of %s: %v", ns, err)
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	exists := map[string]bool{}
	for _, s := range secrets.Items {
		exists[s.Name] = true
	}
	var names []string
	if list != nil {
		keys, _ := list.Data["keys"].([]any)
		for _, k := range keys {
			if name, ok := k.(string); ok {
				names = append(names, name)
			}
		}
	}
	kv := vc.KVv2(framework.VaultCustodyMount)
	for _, name := range names {
		if !exists[name] {
			orphans = append(orphans, name)
		}
		path := framework.VaultCustodyPrefix + "/" + ns + "/" + name
		md, err := kv.GetMetadata(ctx, path)
		if err != nil {
			t.Fatalf("reading custody metadata of %s/%s: %v", ns, name, err)
		}
		cur, err := kv.Get(ctx, path)
		if err != nil {
			t.Fatalf("reading custody record %s/%s: %v", ns, name, err)
		}
		curKey, _ := cur.Data[corev1.TLSPrivateKeyKey].(string)
		for v := range md.Versions {
			ver, err := strconv.Atoi(v)
			if err != nil || ver == md.CurrentVersion {
				continue
			}
			extraVersions++
			old, err := kv.GetVersion(ctx, path, ver)
			if err != nil {
				continue // deleted or destroyed version
			}
			if k, _ := old.Data[corev1.TLSPrivateKeyKey].(string); k != curKey {
				strayKeys++
			}
		}
	}
	sort.Strings(orphans)
	return orphans, extraVersions, strayKeys
}

// requestsCreated counts CertificateRequest creations in the namespace from
// etcd's history (every put of a key that did not exist before it), and
// names the requests of Certificates that got more than one.
func requestsCreated(t *testing.T, st *keyward.Stack, ns string) (int, []string) {
	t.Helper()
	prefix := "/registry/cert-manager.io/certificaterequests/" + ns + "/"
	revs, err := st.EtcdHistory(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	perCert := map[string][]string{}
	created := 0
	for _, r := range revs {
		switch {
		case r.Deleted:
			delete(live, r.Key)
		case !live[r.Key]:
			live[r.Key] = true
			created++
			name := strings.TrimPrefix(r.Key, prefix)
			// cert-manager names requests <certificate>-<revision>.
			crt := name[:max(strings.LastIndex(name, "-"), 0)]
			perCert[crt] = append(perCert[crt], name)
		}
	}
	var several []string
	for crt, names := range perCert {
		if len(names) > 1 {
			several = append(several, crt+": "+strings.Join(names, ","))
		}
	}
	sort.Strings(several)
	return created, several
}

// revisionHistogram renders "revision: Certificates" pairs.
func revisionHistogram(crts []cmapi.Certificate) string {
	h := map[int]int{}
	for i := range crts {
		if r := crts[i].Status.Revision; r != nil {
			h[*r]++
		}
	}
	keys := make([]int, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("revision %d: %d", k, h[k]))
	}
	return strings.Join(parts, ", ")
}

// wipeCustodyMount loses every custody record: the KV v2 mount is disabled
// and enabled again at the same path with the same configuration as
// framework.StartVault gives it.
func wipeCustodyMount(t *testing.T, st *keyward.Stack) {
	t.Helper()
	ctx := context.Background()
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := vc.Sys().UnmountWithContext(ctx, framework.VaultCustodyMount); err != nil {
		t.Fatalf("disabling the custody mount: %v", err)
	}
	if err := vc.Sys().MountWithContext(ctx, framework.VaultCustodyMount, &vaultapi.MountInput{
		Type: "kv", Options: map[string]string{"version": "2"},
	}); err != nil {
		t.Fatalf("enabling the custody mount again: %v", err)
	}
	if _, err := vc.Logical().WriteWithContext(ctx, framework.VaultCustodyMount+"/config", map[string]any{"max_versions": 5}); err != nil {
		t.Fatalf("configuring the new custody mount: %v", err)
	}
	list, err := vc.Logical().ListWithContext(ctx, framework.VaultCustodyMount+"/metadata/"+framework.VaultCustodyPrefix)
	if err != nil {
		t.Fatalf("listing the new custody mount: %v", err)
	}
	if list != nil && len(list.Data) > 0 {
		t.Fatalf("the custody mount still holds records after the wipe: %v", list.Data["keys"])
	}
}

// vaultIssuerAndCustodyNamespace creates the VaultClusterIssuer "vault"
// through c, waits for it to be Ready, creates custody namespace ns, and
// returns the issuer reference for Certificates.
func vaultIssuerAndCustodyNamespace(t *testing.T, st *keyward.Stack, c client.Client, ns string) cmmeta.IssuerReference {
	t.Helper()
	iss := keywardClusterIssuer(st, "vault")
	if err := c.Create(context.Background(), iss); err != nil {
		t.Fatal(err)
	}
	waitKeywardIssuerReady(t, c, iss)
	custodyNamespace(t, st, ns, nil)
	return cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "VaultClusterIssuer", Name: iss.Name}
}
