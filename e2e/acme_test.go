// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// The ACME scenarios share one stack: pebble (Let's Encrypt's test CA,
// validating every DNS-01 challenge for real), BIND 9 taking the rfc2136
// solver's TSIG-signed updates, cert-manager's ACME issuer in-process and
// Keyward. HTTP-01 needs a kubelet to run cert-manager's solver pod, which
// this stack does not have: DNS-01 is what is proven here.
//
// Rate limits are counted at the ACME server: every order pebble's log
// records must be held by an Order object of a known Certificate, and each
// Certificate must have exactly as many orders as issuances.

// acmeNS is the custody namespace of the ACME Certificates: demo, the one
// the shipped keyward-agent Vault policy grants, so the delivery scenario
// runs under that policy unchanged.
const acmeNS = "demo"

type acmeSuite struct {
	st       *keyward.Stack
	ref      cmmeta.IssuerReference
	root     []byte
	nextKeys *nextKeyWatch
	www      *cmapi.Certificate // ECDSA P-256
	apps     *cmapi.Certificate // RSA-2048, wildcard
	short    *cmapi.Certificate // short-lived profile: renews every 30 s
	internal *cmapi.Certificate // Keyward's Vault issuer, for comparison
}

// TestACME: public certificates from an ACME CA into custody, and the
// guarantees that protect the CA's rate limits.
func TestACME(t *testing.T) {
	// Mostly waiting on cert-manager's fixed 60 s DNS-01 propagation wait:
	// run beside the other parallel scenarios.
	t.Parallel()
	s := startACMESuite(t)
	t.Run("issuance", s.issuance)
	t.Run("steady state", func(t *testing.T) {
		t.Run("renews on schedule", func(t *testing.T) { t.Parallel(); s.renewsOnSchedule(t) })
		t.Run("quiet after Ready", func(t *testing.T) { t.Parallel(); s.quiet(t, 30*time.Second) })
	})
	t.Run("forced renewal makes one order", s.forcedRenewal)
	t.Run("deleted custody record makes one order", s.deletedRecord)
	t.Run("vault down while the order is finalised makes no extra order", s.vaultDown)
	t.Run("restarts make no order", s.restarts)
	t.Run("account key is left alone", s.accountKey)
	t.Run("delivery to nginx", s.delivery)
	t.Run("next-private-key lifetime", s.nextKeyLifetimes)
	t.Run("shipped ACME examples are valid", s.examples)
	assertNoKeyAtRest(t, s.st, acmeNS, false)
	assertLogsClean(t, s.st.Dir)
}

func startACMESuite(t *testing.T) *acmeSuite {
	st := keyward.StartStackForTest(t, keyward.StackOptions{
		Framework: framework.Options{ACME: true},
		Options: func(o *app.Options) {
			o.CustodyAuditPeriod = 2 * time.Second
			o.CustodyWriteTimeout = 2 * time.Second
		},
	})
	ctx := context.Background()
	s := &acmeSuite{st: st, ref: cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "acme"}}
	if _, err := st.CreateACMEClusterIssuer(ctx, "acme", framework.ACMEProfileDefault); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateACMEClusterIssuer(ctx, "acme-short", framework.ACMEProfileShortLived); err != nil {
		t.Fatal(err)
	}
	vault := keywardClusterIssuer(st, "vault")
	if err := st.Client.Create(ctx, vault); err != nil {
		t.Fatal(err)
	}
	waitClusterIssuerReady(t, st.Client, "acme", time.Minute)
	waitClusterIssuerReady(t, st.Client, "acme-short", time.Minute)
	waitKeywardIssuerReady(t, st.Client, vault)
	var err error
	if s.root, err = st.ACME.Pebble.RootPEM(ctx); err != nil {
		t.Fatal(err)
	}
	custodyNamespace(t, st, acmeNS, nil)
	s.nextKeys = watchNextKeys(t, st, acmeNS)

	s.www = newCertificate(acmeNS, "www", s.ref, "www."+framework.ACMEZone)
	s.apps = newCertificate(acmeNS, "apps", s.ref, "*.apps."+framework.ACMEZone, "apps."+framework.ACMEZone)
	s.apps.Spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.RSAKeyAlgorithm, Size: 2048, RotationPolicy: cmapi.RotationPolicyAlways}
	s.short = newCertificate(acmeNS, "short", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "acme-short"}, "short."+framework.ACMEZone)
	s.internal = newCertificate(acmeNS, "internal", cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "VaultClusterIssuer", Name: "vault"}, "internal.example.com")
	// ACME ignores spec.duration (the CA's profile decides); cert-manager
	// still validates it against renewBefore, so leave both unset.
	for _, crt := range []*cmapi.Certificate{s.www, s.apps, s.short} {
		crt.Spec.Duration = nil
	}
	for _, crt := range []*cmapi.Certificate{s.www, s.apps, s.short, s.internal} {
		if err := st.Client.Create(ctx, crt); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *acmeSuite) issuance(t *testing.T) {
	for _, crt := range []*cmapi.Certificate{s.www, s.apps} {
		start := crt.CreationTimestamp.Time
		ready := waitCertificateReady(t, s.st.Client, client.ObjectKeyFromObject(crt), 2*time.Minute)
		waitSettled(t, s.st, crt)
		_, rec := assertScrubbed(t, s.st, acmeNS, crt.Spec.SecretName, false)
		leaf := verifyChainTo(t, rec.Cert, s.root, crt.Spec.DNSNames[0], "pebble")
		t.Logf("%s: Ready %s after creation; %s key in custody version %d; issued by %q, valid %s",
			crt.Name, readySince(ready).Sub(start).Round(time.Second), leaf.PublicKeyAlgorithm, rec.Version,
			leaf.Issuer.CommonName, leaf.NotAfter.Sub(leaf.NotBefore).Round(time.Hour))
		if crt == s.apps {
			if !slices.Contains(leaf.DNSNames, "*.apps."+framework.ACMEZone) {
				t.Errorf("apps certificate lacks its wildcard name: %v", leaf.DNSNames)
			}
			if err := leaf.VerifyHostname("anything.apps." + framework.ACMEZone); err != nil {
				t.Errorf("wildcard certificate does not cover a subdomain: %v", err)
			}
		}
	}
	waitCertificateReady(t, s.st.Client, client.ObjectKeyFromObject(s.internal), time.Minute)
	counts := s.orderCounts(t)
	for _, crt := range []*cmapi.Certificate{s.www, s.apps} {
		if n, rev := counts[crt.Name], revision(t, s.st.Client, crt); n != 1 || rev != 1 {
			t.Errorf("%s: %d orders at the ACME server for %d issuances, want exactly 1 for 1", crt.Name, n, rev)
		}
	}
	added, _, err := s.st.ACME.DNS.ChallengeRecords()
	if err != nil {
		t.Fatal(err)
	}
	// www: one name; apps: the wildcard and the apex, one TXT each.
	if added < 3 {
		t.Errorf("BIND logged %d _acme-challenge updates, want at least 3 (the challenges went elsewhere?)", added)
	}
	t.Logf("orders at the ACME server per Certificate: %v; BIND took %d challenge records", counts, added)
}

// quiet: over d after Ready, no new order, request or issuance for the
// Certificates in custody, while the custody guard is being asked.
func (s *acmeSuite) quiet(t *testing.T, d time.Duration) {
	crts := []*cmapi.Certificate{s.www, s.apps}
	for _, crt := range crts {
		waitSettled(t, s.st, crt)
	}
	acted := guardActed(t, s.st)
	if acted == 0 {
		t.Fatalf("the custody guard has not vetoed or rewritten any status update: the quiet period would prove nothing")
	}
	before := s.orderCounts(t)
	requests := map[string]map[string]bool{}
	revs := map[string]int{}
	for _, crt := range crts {
		requests[crt.Name] = requestNames(t, s.st.Client, acmeNS, crt.Name)
		revs[crt.Name] = revision(t, s.st.Client, crt)
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, crt := range crts {
			cur := &cmapi.Certificate{}
			if err := s.st.Client.Get(context.Background(), client.ObjectKeyFromObject(crt), cur); err != nil {
				t.Fatal(err)
			}
			if !isReady(cur) {
				t.Fatalf("%s left Ready during the quiet period: %+v", crt.Name, cur.Status.Conditions)
			}
		}
		time.Sleep(time.Second) // the observation window, not a synchronisation
	}
	after := s.orderCounts(t)
	for _, crt := range crts {
		if after[crt.Name] != before[crt.Name] {
			t.Errorf("%s: %d new orders at the ACME server during a quiet %s", crt.Name, after[crt.Name]-before[crt.Name], d)
		}
		for name := range requestNames(t, s.st.Client, acmeNS, crt.Name) {
			if !requests[crt.Name][name] {
				t.Errorf("%s: new CertificateRequest %s during a quiet %s", crt.Name, name, d)
			}
		}
		if r := revision(t, s.st.Client, crt); r != revs[crt.Name] {
			t.Errorf("%s: revision went from %d to %d during a quiet %s", crt.Name, revs[crt.Name], r, d)
		}
	}
	t.Logf("quiet %s: 0 new orders, 0 new CertificateRequests, Ready throughout (guard vetoes and rewrites so far: %.0f; orders at the server meanwhile, other Certificates included: %v)", d, acted, after)
}

// renewsOnSchedule: the short-lived certificate (pebble's short profile)
// renews by itself, each renewal one order and one new custody version, and
// the Certificate stays Ready throughout.
func (s *acmeSuite) renewsOnSchedule(t *testing.T) {
	crt := s.short
	// Stop its renewals whatever happens here: later scenarios take Vault
	// away for a minute, longer than this certificate lives, and count the
	// next-private-key Secrets of the others.
	defer func() {
		if err := s.st.Client.Delete(context.Background(), crt); err != nil {
			t.Error(err)
		}
	}()
	ready := waitCertificateReady(t, s.st.Client, client.ObjectKeyFromObject(crt), 2*time.Minute)
	if ready.Status.NotAfter == nil || ready.Status.NotBefore == nil || ready.Status.RenewalTime == nil {
		t.Fatalf("status lacks notBefore/notAfter/renewalTime: %+v", ready.Status)
	}
	lifetime := ready.Status.NotAfter.Sub(ready.Status.NotBefore.Time)
	var first *corev1.Secret
	var rec custodyRecord
	waitFor(t, 30*time.Second, "a consistent first custody snapshot", func(context.Context) (bool, error) {
		var ok bool
		first, rec, ok = consistentCustody(t, s.st, acmeNS, crt.Spec.SecretName, false)
		return ok, nil
	})
	serials, versions := []string{first.Annotations[custody.AnnotationSerial]}, []int{rec.Version}
	notReady := 0
	// Two renewals come after about 2 x 2/3 of the lifetime.
	deadline := time.Now().Add(2*lifetime + 30*time.Second)
	for len(serials) < 3 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond) // sampling Ready, not a synchronisation
		cur := &cmapi.Certificate{}
		if err := s.st.Client.Get(context.Background(), client.ObjectKeyFromObject(crt), cur); err != nil {
			t.Fatal(err)
		}
		if !isReady(cur) {
			notReady++
			continue
		}
		sec, rec, ok := consistentCustody(t, s.st, acmeNS, crt.Spec.SecretName, false)
		if !ok {
			continue
		}
		if sn := sec.Annotations[custody.AnnotationSerial]; !slices.Contains(serials, sn) {
			serials, versions = append(serials, sn), append(versions, rec.Version)
		}
	}
	if len(serials) < 3 {
		t.Fatalf("saw %d distinct certificates in %s, want the first and 2 renewals (lifetime %s)", len(serials), 2*lifetime+30*time.Second, lifetime)
	}
	for i := 1; i < len(versions); i++ {
		if versions[i] <= versions[i-1] {
			t.Errorf("custody versions not increasing across renewals: %v", versions)
		}
	}
	if notReady > 0 {
		t.Errorf("Certificate was not Ready in %d samples during renewals", notReady)
	}
	waitSettled(t, s.st, crt)
	rev := revision(t, s.st.Client, crt)
	if n := s.orderCounts(t)[crt.Name]; n != rev {
		t.Errorf("%d orders at the ACME server for %d issuances, want one per issuance", n, rev)
	}
	t.Logf("certificate lifetime %s; renewals on schedule (%d issuances so far, one order each), custody versions %v for the last %d, Ready in every sample", lifetime, rev, versions, len(versions))
}

// consistentCustody reads a placeholder and its custody record as one
// snapshot: the Secret, then the record, then the Secret again. A renewal
// writes Vault before the Secret, so while one is landing the two disagree;
// such a moment (the Secret changed between the reads, or it names another
// version than the record read) is reported as !ok, not as a failure. A
// consistent snapshot must be a sound placeholder: empty tls.key, the
// record's certificate in tls.crt, the record's key its pair, and the
// annotations naming that key and serial. webhookDown is for scenarios
// without the scrub webhook: there cert-manager's next write stores a key
// under the markers of the last placeholder (server-side apply leaves
// Keyward's annotations in place) until the watcher scrubs it, so a sample
// holding a key is !ok there, and a failure everywhere else.
func consistentCustody(t *testing.T, st *keyward.Stack, ns, name string, webhookDown bool) (*corev1.Secret, custodyRecord, bool) {
	t.Helper()
	key := client.ObjectKey{Namespace: ns, Name: name}
	before := getSecret(t, st.Client, key)
	rec, found := readCustody(t, st, ns, name)
	after := getSecret(t, st.Client, key)
	if !found || !isPlaceholder(after) || before.ResourceVersion != after.ResourceVersion ||
		strconv.Itoa(rec.Version) != after.Annotations[custody.AnnotationVersion] {
		return nil, custodyRecord{}, false
	}
	if len(after.Data[corev1.TLSPrivateKeyKey]) != 0 {
		if webhookDown {
			return nil, custodyRecord{}, false
		}
		t.Fatalf("Secret %s holds a private key", key)
	}
	if !bytes.Equal(after.Data[corev1.TLSCertKey], rec.Cert) {
		t.Fatalf("Secret %s: tls.crt differs from custody version %d it names", key, rec.Version)
	}
	assertKeyMatchesCert(t, rec.Key, rec.Cert)
	if got := keySHA256(t, rec.Cert); got != after.Annotations[custody.AnnotationKeySHA256] {
		t.Fatalf("Secret %s names key %s, custody version %d holds %s", key, after.Annotations[custody.AnnotationKeySHA256], rec.Version, got)
	}
	b, _ := pem.Decode(rec.Cert)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !custody.SerialEqual(after.Annotations[custody.AnnotationSerial], custody.SerialHex(leaf)) {
		t.Fatalf("Secret %s names serial %s, custody version %d holds %s", key, after.Annotations[custody.AnnotationSerial], rec.Version, custody.SerialHex(leaf))
	}
	return after, rec, true
}

// forcedRenewal: a renewal forced as `cmctl renew` does makes one order.
func (s *acmeSuite) forcedRenewal(t *testing.T) {
	before, rev := s.orderCounts(t)[s.www.Name], revision(t, s.st.Client, s.www)
	renewAndWait(t, s.st, s.www, currentPlaceholder(t, s.st, acmeNS, s.www.Spec.SecretName))
	s.assertOneMoreOrder(t, s.www, before, rev)
}

// deletedRecord: the custody record is lost; the watcher's audit has the
// certificate re-issued, with one order.
func (s *acmeSuite) deletedRecord(t *testing.T) {
	ctx := context.Background()
	waitSettled(t, s.st, s.www)
	prev := currentPlaceholder(t, s.st, acmeNS, s.www.Spec.SecretName)
	before, rev := s.orderCounts(t)[s.www.Name], revision(t, s.st.Client, s.www)
	vc, err := s.st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := vc.KVv2(framework.VaultCustodyMount).DeleteMetadata(ctx, framework.VaultCustodyPrefix+"/"+acmeNS+"/"+s.www.Spec.SecretName); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "custody record re-created by a re-issue", func(ctx context.Context) (bool, error) {
		sec := &corev1.Secret{}
		if err := s.st.Client.Get(ctx, client.ObjectKey{Namespace: acmeNS, Name: s.www.Spec.SecretName}, sec); err != nil {
			return false, err
		}
		_, ok := readCustody(t, s.st, acmeNS, s.www.Spec.SecretName)
		return ok && sec.Annotations[custody.AnnotationSerial] != "" && sec.Annotations[custody.AnnotationSerial] != prev.serial, nil
	})
	s.assertOneMoreOrder(t, s.www, before, rev)
}

// vaultDown: Vault is unreachable for 60 s while a renewal's order is
// finalised. The signed certificate waits in the CertificateRequest; the
// Secret write is refused until the custody write succeeds; no second order.
func (s *acmeSuite) vaultDown(t *testing.T) {
	const outage = 60 * time.Second
	crt := s.apps
	waitSettled(t, s.st, crt)
	prev := currentPlaceholder(t, s.st, acmeNS, crt.Spec.SecretName)
	before, rev := s.orderCounts(t)[crt.Name], revision(t, s.st.Client, crt)
	refusedBefore := counterValue(t, s.st, "keyward_scrub_total", map[string]string{"path": "webhook", "result": "store_error"})
	if err := s.st.Vault.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			_ = s.st.Vault.Resume()
		}
	}()
	forceRenewal(t, s.st, crt, "renewal forced by the ACME e2e test during a Vault outage")
	// The path under test: the order was finalised (the request holds the
	// signed certificate) and the scrub webhook refused the Secret write.
	waitFor(t, outage, "order finalised and the custody write refused", func(ctx context.Context) (bool, error) {
		refused := counterValue(t, s.st, "keyward_scrub_total", map[string]string{"path": "webhook", "result": "store_error"})
		return refused > refusedBefore && s.requestSigned(ctx, t, crt, prev.serial), nil
	})
	finalised := time.Since(paused)
	if n := s.orderCounts(t)[crt.Name]; n != before+1 {
		t.Fatalf("%d orders at the ACME server after the renewal's order was finalised, want %d", n, before+1)
	}
	if sec := getSecret(t, s.st.Client, client.ObjectKey{Namespace: acmeNS, Name: crt.Spec.SecretName}); sec.Annotations[custody.AnnotationSerial] != prev.serial {
		t.Fatalf("the Secret changed while Vault was down")
	}
	// Keep Vault away for the whole outage; cert-manager retries the write.
	time.Sleep(time.Until(paused.Add(outage))) // the outage's length is the scenario, not a synchronisation
	refused := counterValue(t, s.st, "keyward_scrub_total", map[string]string{"path": "webhook", "result": "store_error"}) - refusedBefore
	if err := s.st.Vault.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := time.Now()
	waitFor(t, 3*time.Minute, "renewal lands in custody after Vault is back", func(ctx context.Context) (bool, error) {
		sec := &corev1.Secret{}
		if err := s.st.Client.Get(ctx, client.ObjectKey{Namespace: acmeNS, Name: crt.Spec.SecretName}, sec); err != nil {
			return false, err
		}
		return sec.Annotations[custody.AnnotationSerial] != prev.serial && isPlaceholder(sec), nil
	})
	t.Logf("Vault down %s: order finalised %s in, %.0f Secret writes refused; the certificate reached custody %s after Vault came back",
		outage, finalised.Round(time.Second), refused, time.Since(back).Round(time.Second))
	s.assertOneMoreOrder(t, crt, before, rev)
}

// restarts: cert-manager's controllers and Keyward restart; everything is
// reconciled again (the guard is asked again) and no order is made.
func (s *acmeSuite) restarts(t *testing.T) {
	ctx := context.Background()
	crts := []*cmapi.Certificate{s.www, s.apps}
	before := s.orderCounts(t)
	revs := map[string]int{}
	for _, crt := range crts {
		waitSettled(t, s.st, crt)
		revs[crt.Name] = revision(t, s.st.Client, crt)
	}
	if err := s.st.StopKeyward(); err != nil {
		t.Fatal(err)
	}
	if err := s.st.StartKeyward(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.st.RestartCertManager(ctx); err != nil {
		t.Fatal(err)
	}
	// The restarted cert-manager re-evaluates every Certificate and finds
	// an empty tls.key: the restarted Keyward's guard (fresh metrics) must
	// have been asked, else the quiet below proves nothing.
	waitFor(t, time.Minute, "the restarted guard asked again", func(context.Context) (bool, error) {
		return guardActed(t, s.st) > 0, nil
	})
	s.quiet(t, 15*time.Second)
	after := s.orderCounts(t)
	for _, crt := range crts {
		if after[crt.Name] != before[crt.Name] || revision(t, s.st.Client, crt) != revs[crt.Name] {
			t.Errorf("%s: restarts made %d orders and %d issuances, want 0", crt.Name, after[crt.Name]-before[crt.Name], revision(t, s.st.Client, crt)-revs[crt.Name])
		}
	}
}

// accountKey: cert-manager keeps the ACME account key in a Secret. An
// Issuer in a custody namespace keeps it there; custody scrubs the
// Certificate Secrets of that namespace and leaves the account key alone,
// so cert-manager never registers a second account.
func (s *acmeSuite) accountKey(t *testing.T) {
	ctx := context.Background()
	const ns = "acme-account"
	custodyNamespace(t, s.st, ns, nil)
	if err := s.st.Client.Create(ctx, s.st.ACME.TSIGSecret(ns)); err != nil {
		t.Fatal(err)
	}
	iss := &cmapi.Issuer{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: ns}, Spec: s.st.ACME.IssuerSpec("acme-account-key", framework.ACMEProfileDefault)}
	if err := s.st.Client.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "Issuer acme Ready", func(ctx context.Context) (bool, error) {
		cur := &cmapi.Issuer{}
		if err := s.st.Client.Get(ctx, client.ObjectKeyFromObject(iss), cur); err != nil {
			return false, err
		}
		return len(cur.Status.Conditions) > 0 && cur.Status.Conditions[0].Status == cmmeta.ConditionTrue, nil
	})
	ledger, err := s.st.ACME.Pebble.Ledger()
	if err != nil {
		t.Fatal(err)
	}
	accounts := ledger.Accounts
	account := getSecret(t, s.st.Client, client.ObjectKey{Namespace: ns, Name: "acme-account-key"})
	if !framework.HoldsPEMPrivateKey(account.Data[corev1.TLSPrivateKeyKey]) {
		t.Fatalf("account Secret holds no private key: keys %v", keysOf(account.Data))
	}
	crt := newCertificate(ns, "site", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.IssuerKind, Name: "acme"}, "site."+framework.ACMEZone)
	crt.Spec.Duration = nil
	if err := s.st.Client.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	waitCertificateReady(t, s.st.Client, client.ObjectKeyFromObject(crt), 2*time.Minute)
	// The path ran: custody is live in this namespace (the scrub webhook
	// moved the Certificate's key to Vault) while the account key sat there.
	assertScrubbed(t, s.st, ns, crt.Spec.SecretName, false)
	after := getSecret(t, s.st.Client, client.ObjectKey{Namespace: ns, Name: "acme-account-key"})
	if after.ResourceVersion != account.ResourceVersion || string(after.Data[corev1.TLSPrivateKeyKey]) != string(account.Data[corev1.TLSPrivateKeyKey]) {
		t.Errorf("the account key Secret was modified (resourceVersion %s -> %s)", account.ResourceVersion, after.ResourceVersion)
	}
	if _, ok := readCustody(t, s.st, ns, "acme-account-key"); ok {
		t.Errorf("the account key was copied into custody")
	}
	for _, name := range []string{"acme-account", "acme-short-account"} {
		if sec := getSecret(t, s.st.Client, client.ObjectKey{Namespace: framework.CertManagerNamespace, Name: name}); !framework.HoldsPEMPrivateKey(sec.Data[corev1.TLSPrivateKeyKey]) {
			t.Errorf("ClusterIssuer account Secret %s lost its key", name)
		}
	}
	if ledger, err = s.st.ACME.Pebble.Ledger(); err != nil {
		t.Fatal(err)
	} else if ledger.Accounts != accounts {
		t.Errorf("pebble registered %d new accounts after issuance, want 0 (the account key must stay usable)", ledger.Accounts-accounts)
	}
	t.Logf("account key Secret %s/acme-account-key untouched (resourceVersion %s) while custody scrubbed %s; %d ACME accounts in all, none new",
		ns, after.ResourceVersion, crt.Spec.SecretName, ledger.Accounts)
}

// nextKeyLifetimes reports how long cert-manager's temporary key Secret
// lived per issuance, ACME (DNS-01 propagation included) beside Vault.
func (s *acmeSuite) nextKeyLifetimes(t *testing.T) {
	crts := []*cmapi.Certificate{s.www, s.apps, s.internal}
	for _, crt := range crts {
		waitSettled(t, s.st, crt)
	}
	// Every issuance above has completed: none may still hold a key Secret.
	waitFor(t, 30*time.Second, "every next-private-key Secret deleted", func(context.Context) (bool, error) {
		return len(s.nextKeys.live()) == 0, nil
	})
	byCert := s.nextKeys.lifetimes()
	counts := s.orderCounts(t)
	var first, later []time.Duration
	for _, name := range []string{s.www.Name, s.apps.Name, s.short.Name} {
		lt := byCert[name]
		// One temporary key Secret per issuance, one issuance per order.
		if len(lt) != counts[name] {
			t.Errorf("%s: %d next-private-key Secrets seen for %d orders", name, len(lt), counts[name])
			continue
		}
		first, later = append(first, lt[0]), append(later, lt[1:]...)
	}
	vault := byCert[s.internal.Name]
	if len(first) != 3 || len(later) == 0 || len(vault) != 1 {
		t.Fatalf("next-private-key lifetimes observed: ACME first issuances %d, later issuances %d, Vault %d", len(first), len(later), len(vault))
	}
	t.Logf("next-private-key Secret lifetime per issuance: ACME first issuance (DNS-01 challenges, cert-manager's 60 s propagation wait per name) %s (n=%d); "+
		"ACME renewals and re-issues (authorizations reused) %s (n=%d); Keyward's Vault issuer %s (n=%d)",
		durationSummary(first), len(first), durationSummary(later), len(later), durationSummary(vault), len(vault))
}

// delivery: the ACME certificate reaches nginx through `keyward agent` as
// a Vault-issued one does: a forced renewal under load, 0 failed requests.
func (s *acmeSuite) delivery(t *testing.T) {
	n := runNginxDelivery(t, s.st, s.www, s.root)
	t.Logf("nginx served the ACME certificate through keyward agent: %d requests across a forced renewal", n)
}

// examples: deploy/examples' Let's Encrypt manifests pass the apiserver's
// strict validation against cert-manager's CRDs (server-side dry run; their
// namespace is created for real, as applying the file would).
func (s *acmeSuite) examples(t *testing.T) {
	ctx := context.Background()
	kinds := map[string]int{}
	for _, f := range []string{"acme-clusterissuer.yaml", "acme-certificate.yaml"} {
		for _, o := range exampleObjects(t, f) {
			kinds[o.GetKind()]++
			if o.GetKind() == "Namespace" {
				if err := s.st.Client.Create(ctx, o); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				continue
			}
			if err := s.st.Client.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil {
				t.Errorf("%s: %s %s rejected: %v", f, o.GetKind(), o.GetName(), err)
			}
		}
	}
	if kinds["ClusterIssuer"] != 2 || kinds["Certificate"] != 1 {
		t.Errorf("examples hold %v, want the staging and production ClusterIssuers and a Certificate", kinds)
	}
}

// runNginxDelivery serves crt's Secret from nginx through `keyward agent`
// (files sink) under HTTPS load, forces one renewal, and requires 25
// handshakes with each certificate, the old and the new, and 0 failed
// requests. It returns the number of requests served.
func runNginxDelivery(t *testing.T, st *keyward.Stack, crt *cmapi.Certificate, rootPEM []byte) int64 {
	t.Helper()
	ns, secret, host := crt.Namespace, crt.Spec.SecretName, crt.Spec.DNSNames[0]
	waitSettled(t, st, crt)
	cfg := gatewayIdentity(t, st, ns, "keyward-agent", secret)
	tokenFile := writeVaultToken(t, st, ns, "keyward-agent")
	nginxDir := t.TempDir()
	agent := startFilesAgent(t, st, cfg, ns+"/"+secret, st.Vault.Addr, tokenFile, filepath.Join(nginxDir, "nginx.pid"))
	tlsDir := filepath.Join(agent.dir, ns, secret)
	assertDeliveredFiles(t, tlsDir)
	port := startNginx(t, nginxBinary(t), nginxDir, tlsDir)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	load := startTLSLoad(context.Background(), "nginx", "127.0.0.1:"+strconv.Itoa(port), host, roots, 2)
	defer load.stop()
	// The load must run on both sides of the rotation: wait (on the
	// load's own count, not a clock) for servedEach handshakes with the
	// old certificate before renewing and with the new one after.
	const servedEach = 25
	first := currentPlaceholder(t, st, ns, secret)
	load.waitServed(t, first.serial, servedEach, 20*time.Second)
	next := renewAndWait(t, st, crt, first)
	seen := load.waitSerial(t, next.serial, 30*time.Second)
	t.Logf("nginx serves the renewed certificate (serial %s) %v after its custody version %d was written",
		next.serial, seen.Sub(custodyVersionTime(t, st, ns, secret, next.version)).Round(time.Millisecond), next.version)
	load.waitServed(t, next.serial, servedEach, 20*time.Second)
	load.stop()
	ok, failed, errs := load.result()
	if failed > 0 {
		t.Errorf("nginx: %d of %d requests failed, want 0; first errors: %v", failed, ok+failed, errs)
	}
	assertDeliveredFiles(t, tlsDir)
	return ok + failed
}

// assertOneMoreOrder: the Certificate settled after exactly one more
// issuance, made with exactly one more order at the ACME server.
func (s *acmeSuite) assertOneMoreOrder(t *testing.T, crt *cmapi.Certificate, before, rev int) {
	t.Helper()
	waitSettled(t, s.st, crt)
	if n := s.orderCounts(t)[crt.Name]; n != before+1 {
		t.Errorf("%s: %d new orders at the ACME server, want exactly 1", crt.Name, n-before)
	}
	if r := revision(t, s.st.Client, crt); r != rev+1 {
		t.Errorf("%s: %d new issuances, want exactly 1", crt.Name, r-rev)
	}
	_, rec := assertScrubbed(t, s.st, crt.Namespace, crt.Spec.SecretName, false)
	verifyChainTo(t, rec.Cert, s.root, strings.TrimPrefix(crt.Spec.DNSNames[0], "*."), "pebble")
}

// requestSigned: the Certificate's newest request holds a certificate other
// than the one in custody (the renewal's order was finalised).
func (s *acmeSuite) requestSigned(ctx context.Context, t *testing.T, crt *cmapi.Certificate, oldSerial string) bool {
	var list cmapi.CertificateRequestList
	if err := s.st.Client.List(ctx, &list, client.InNamespace(crt.Namespace)); err != nil {
		t.Fatal(err)
	}
	for _, cr := range list.Items {
		if cr.Annotations[cmapi.CertificateNameKey] != crt.Name || len(cr.Status.Certificate) == 0 {
			continue
		}
		b, _ := pem.Decode(cr.Status.Certificate)
		if b == nil {
			continue
		}
		if leaf, err := x509.ParseCertificate(b.Bytes); err == nil && !custody.SerialEqual(custody.SerialHex(leaf), oldSerial) {
			return true
		}
	}
	return false
}

// orderCounts maps every order pebble's log records to the Certificate
// whose Order object holds it, and counts orders per Certificate name. An
// order at the server that no Order object accounts for (cert-manager
// lost track of it: a rate-limit leak) fails the test once it has had time
// to be recorded.
func (s *acmeSuite) orderCounts(t *testing.T) map[string]int {
	t.Helper()
	var counts map[string]int
	var unaccounted []string
	err := framework.Poll(context.Background(), 15*time.Second, "every ACME order held by an Order object", func(ctx context.Context) (bool, error) {
		ledger, err := s.st.ACME.Pebble.Ledger()
		if err != nil {
			return false, err
		}
		owners, err := s.orderOwners(ctx)
		if err != nil {
			return false, err
		}
		counts, unaccounted = map[string]int{}, nil
		for _, id := range ledger.Orders {
			if c, ok := owners[id]; ok {
				counts[c]++
			} else {
				unaccounted = append(unaccounted, id)
			}
		}
		return len(unaccounted) == 0, nil
	})
	if err != nil {
		t.Fatalf("orders at the ACME server held by no Order object: %v (%v)", unaccounted, err)
	}
	return counts
}

// orderOwners maps pebble order IDs (the last element of Order
// status.url) to the name of the Certificate the Order was made for
// (cert-manager copies the request's annotations onto its Order). Orders
// outlive their requests here: this stack runs no garbage collector.
func (s *acmeSuite) orderOwners(ctx context.Context) (map[string]string, error) {
	var orders cmacme.OrderList
	if err := s.st.Client.List(ctx, &orders); err != nil {
		return nil, err
	}
	owners := map[string]string{}
	for _, o := range orders.Items {
		if o.Status.URL != "" {
			owners[path.Base(o.Status.URL)] = o.Annotations[cmapi.CertificateNameKey]
		}
	}
	return owners, nil
}

// readySince is when the Certificate's Ready condition last turned True.
func readySince(crt *cmapi.Certificate) time.Time {
	if c := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionReady); c != nil && c.LastTransitionTime != nil {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

// guardActed is the guard's vetoes plus rewrites in the running Keyward.
func guardActed(t *testing.T, st *keyward.Stack) float64 {
	return counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "veto"}) +
		counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "pass_rewritten"})
}

// verifyChainTo verifies a PEM chain (leaf first) to root for dnsName.
func verifyChainTo(t *testing.T, chainPEM, rootPEM []byte, dnsName, what string) *x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		t.Fatalf("chain holds %d certificates, want the leaf and pebble's intermediate", len(certs))
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("%s root does not parse", what)
	}
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: dnsName}); err != nil {
		t.Fatalf("chain does not verify to the %s root for %s: %v", what, dnsName, err)
	}
	return certs[0]
}

func keysOf(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func durationSummary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("min %s, median %s, max %s", s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

// nextKeyWatch records when each of cert-manager's next-private-key
// Secrets of a namespace appeared and disappeared, by Certificate.
type nextKeyWatch struct {
	mu      sync.Mutex
	added   map[string]time.Time // Secret name -> seen created
	owner   map[string]string    // Secret name -> Certificate name
	lived   map[string][]time.Duration
	stopped chan struct{}
}

func watchNextKeys(t *testing.T, st *keyward.Stack, ns string) *nextKeyWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := st.Kubernetes.CoreV1().Secrets(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "cert-manager.io/next-private-key=true"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	nk := &nextKeyWatch{added: map[string]time.Time{}, owner: map[string]string{}, lived: map[string][]time.Duration{}, stopped: make(chan struct{})}
	t.Cleanup(func() { cancel(); w.Stop(); <-nk.stopped })
	go func() {
		defer close(nk.stopped)
		for ev := range w.ResultChan() {
			sec, ok := ev.Object.(*corev1.Secret)
			if !ok {
				continue
			}
			now := time.Now()
			nk.mu.Lock()
			switch ev.Type {
			case watch.Added:
				nk.added[sec.Name] = now
				if ref := metav1.GetControllerOf(sec); ref != nil {
					nk.owner[sec.Name] = ref.Name
				}
			case watch.Deleted:
				if at, ok := nk.added[sec.Name]; ok {
					nk.lived[nk.owner[sec.Name]] = append(nk.lived[nk.owner[sec.Name]], now.Sub(at))
					delete(nk.added, sec.Name)
				}
			}
			nk.mu.Unlock()
		}
	}()
	return nk
}

func (nk *nextKeyWatch) lifetimes() map[string][]time.Duration {
	nk.mu.Lock()
	defer nk.mu.Unlock()
	out := map[string][]time.Duration{}
	for k, v := range nk.lived {
		out[k] = slices.Clone(v)
	}
	return out
}

func (nk *nextKeyWatch) live() []string {
	nk.mu.Lock()
	defer nk.mu.Unlock()
	var names []string
	for n := range nk.added {
		names = append(names, n)
	}
	return names
}
