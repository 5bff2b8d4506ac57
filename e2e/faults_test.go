// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/issuer"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/scrubber"
	"github.com/keyward-io/keyward/webhook"
)

const (
	// outageLength is how long Vault is unreachable (issue 7: 60 s).
	outageLength = 60 * time.Second
	// recoveryBound is how soon after Vault is back issuance and renewal
	// must have completed on their own (issue 7: 30 s).
	recoveryBound = 30 * time.Second
	// renewalInOutage is how far into the outage the renewing Certificates
	// fall due.
	renewalInOutage = 10 * time.Second
)

// TestVaultOutage: Vault is unreachable for 60 s while new Certificates are
// being issued and existing ones fall due for renewal, with Keyward's
// default settings.
//
// "Unreachable" is a hang, not a refusal: the Vault process is frozen with
// SIGSTOP, so the kernel still accepts connections and every request waits
// until the caller's timeout, as with a network partition or an overloaded
// Vault. It is the harder case: each attempt costs its full timeout (30 s
// for a sign, 5 s for a custody write, 2 s for a guard lookup) instead of
// failing at once, and requests queued in the socket are answered when
// SIGCONT ends the outage.
func TestVaultOutage(t *testing.T) {
	t.Parallel()
	st := keyward.StartStackForTest(t, keyward.StackOptions{})
	ctx := context.Background()
	c := st.Client
	const ns = "outage"

	// Keyward's issuer first: its health-check schedule starts with it.
	iss := keywardClusterIssuer(st, "vault")
	if err := c.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	custodyNamespace(t, st, ns, nil)
	caClusterIssuer(t, st, "ca")
	waitKeywardIssuerReady(t, c, iss)
	vaultRef := cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.VaultClusterIssuerKind, Name: iss.Name}
	caRef := cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "ca"}

	// The renewing Certificates fall due renewIn after issuance (cert-manager
	// renews at notAfter - renewBefore, notAfter is issuance + duration); the
	// outage starts renewalInOutage before the first of them is due.
	const renewIn = 45 * time.Second
	short := func(name string, ref cmmeta.IssuerReference) *cmapi.Certificate {
		crt := newCertificate(ns, name, ref, name+".example.com")
		crt.Spec.Duration = &metav1.Duration{Duration: time.Hour}
		crt.Spec.RenewBefore = &metav1.Duration{Duration: time.Hour - renewIn}
		return crt
	}
	renewing := []*cmapi.Certificate{short("renew-vault-0", vaultRef), short("renew-vault-1", vaultRef), short("renew-ca-0", caRef), short("renew-ca-1", caRef)}
	steady := newCertificate(ns, "steady", vaultRef, "steady.example.com")
	before := append(slices.Clone(renewing), steady)
	for _, crt := range before {
		if err := c.Create(ctx, crt); err != nil {
			t.Fatal(err)
		}
	}
	snap := map[string]outageSnapshot{}
	for _, crt := range before {
		ready := waitCertificateReady(t, c, client.ObjectKeyFromObject(crt), 60*time.Second)
		waitSettled(t, st, crt)
		serial, rec := assertScrubbed(t, st, ns, crt.Spec.SecretName, false)
		sec := getSecret(t, c, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName})
		snap[crt.Name] = outageSnapshot{
			revision:      revision(t, c, crt),
			serial:        serial,
			recordVersion: rec.Version,
			secretVersion: sec.Annotations[custody.AnnotationVersion],
			renewalTime:   ready.Status.RenewalTime,
		}
	}
	var pauseAt time.Time
	for _, crt := range renewing {
		rt := snap[crt.Name].renewalTime
		if rt == nil {
			t.Fatalf("Certificate %s/%s has no renewalTime", ns, crt.Name)
		}
		if at := rt.Time.Add(-renewalInOutage); pauseAt.IsZero() || at.Before(pauseAt) {
			pauseAt = at
		}
	}
	if time.Until(pauseAt) < 0 {
		t.Fatalf("setting up took too long: the renewing Certificates fall due at %s, the outage should have started %s ago",
			pauseAt.Add(renewalInOutage).Format(time.RFC3339), -time.Until(pauseAt).Round(time.Second))
	}
	for _, crt := range renewing {
		if rt := snap[crt.Name].renewalTime.Time; !rt.Before(pauseAt.Add(outageLength - 15*time.Second)) {
			t.Fatalf("Certificate %s/%s renews at %s, too late in the outage [%s, %s) for its renewal to be attempted during it",
				ns, crt.Name, rt.Format(time.RFC3339), pauseAt.Format(time.RFC3339), pauseAt.Add(outageLength).Format(time.RFC3339))
		}
	}
	metricsBefore := outageMetrics(t, st)
	time.Sleep(time.Until(pauseAt))
	revPaused, err := st.EtcdRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Vault.Pause(); err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			_ = st.Vault.Resume()
		}
	}()

	// New Certificates while Vault is unreachable: two signed by Keyward's
	// issuer (blocked at signing), two by cert-manager's CA issuer (signed at
	// once, blocked at the custody write when the target Secret is stored).
	fresh := []*cmapi.Certificate{
		newCertificate(ns, "new-vault-0", vaultRef, "new-vault-0.example.com"),
		newCertificate(ns, "new-vault-1", vaultRef, "new-vault-1.example.com"),
		newCertificate(ns, "new-ca-0", caRef, "new-ca-0.example.com"),
		newCertificate(ns, "new-ca-1", caRef, "new-ca-1.example.com"),
	}
	for _, crt := range fresh {
		if err := c.Create(ctx, crt); err != nil {
			t.Fatal(err)
		}
	}

	// During the outage: watch what every object says, without calling Vault.
	obs := watchOutage(t, st, iss, ns, pausedAt.Add(outageLength), fresh, renewing, steady, snap)
	metricsDuring := outageMetrics(t, st)
	revResumed, err := st.EtcdRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Vault.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	resumedAt := time.Now()

	rec := watchRecovery(t, st, iss, ns, resumedAt, fresh, renewing, snap)
	metricsAfter := outageMetrics(t, st)

	// Recovery on its own, within the bound.
	var lines []string
	for _, crt := range append(slices.Clone(fresh), renewing...) {
		d, ok := rec.done[crt.Name]
		switch {
		case !ok:
			t.Errorf("Certificate %s/%s did not complete its %s within %s after Vault came back", ns, crt.Name, rec.what(crt.Name), rec.limit)
			lines = append(lines, crt.Name+"=never")
		case d > recoveryBound:
			t.Errorf("Certificate %s/%s completed its %s %s after Vault came back, over the %s bound", ns, crt.Name, rec.what(crt.Name), d.Round(time.Millisecond), recoveryBound)
			lines = append(lines, fmt.Sprintf("%s=%s", crt.Name, d.Round(100*time.Millisecond)))
		default:
			lines = append(lines, fmt.Sprintf("%s=%s", crt.Name, d.Round(100*time.Millisecond)))
		}
	}
	if rec.issuerReady < 0 {
		t.Errorf("VaultClusterIssuer %s did not become Ready again within %s after Vault came back", iss.Name, rec.limit)
	} else if rec.issuerReady > recoveryBound {
		t.Errorf("VaultClusterIssuer %s became Ready %s after Vault came back, over the %s bound", iss.Name, rec.issuerReady, recoveryBound)
	}
	sort.Strings(lines)
	issuerStory := "issuer stayed Ready=True"
	if obs.issuerReason != "" {
		issuerStory = fmt.Sprintf("issuer Ready=False/%s %s into the outage, Ready again %s after SIGCONT",
			obs.issuerReason, obs.issuerFalseAt.Round(100*time.Millisecond), rec.issuerReady.Round(100*time.Millisecond))
	}
	t.Logf("OUTAGE: vault frozen (SIGSTOP) %s from %s; %s; completed after SIGCONT in: %s",
		resumedAt.Sub(pausedAt).Round(time.Millisecond), pausedAt.Format("15:04:05.000"), issuerStory, strings.Join(lines, " "))

	// The issuer told the story: Ready=False naming Vault during, True after.
	if obs.issuerReason == "" {
		t.Errorf("VaultClusterIssuer %s stayed Ready=True through the %s outage although %v sign attempts against it failed "+
			"(a hung Vault is a transient sign error, which never marks the issuer; only the periodic health check does, every %s by default)",
			iss.Name, outageLength, metricsDuring.signNotSuccess-metricsBefore.signNotSuccess, issuer.DefaultHealthCheckPeriod)
	} else if obs.issuerReason != issuer.ReasonVaultUnreachable || !strings.Contains(obs.issuerMessage, vaultHost(st)) {
		t.Errorf("VaultClusterIssuer %s Ready=False with reason %q, message %q: want reason %s naming %s", iss.Name, obs.issuerReason, obs.issuerMessage, issuer.ReasonVaultUnreachable, vaultHost(st))
	}
	assertIssuerEvents(t, st, iss.Name, pausedAt)

	// Requests name the cause. A hung Vault call holds Keyward's only
	// CertificateRequest worker for the whole sign timeout, so during a
	// 60 s hang only the first requests are looked at; require one.
	if len(obs.requestsNamingVault) == 0 {
		t.Errorf("no CertificateRequest of Keyward's issuer had a condition naming Vault during the outage; seen: %v", obs.requestMessages)
	}
	t.Logf("during the outage: requests naming Vault %v; Certificates that went Ready=False %v; Keyward requests no worker looked at (one hung sign call holds the only worker) %v",
		obs.requestsNamingVault, obs.wentNotReady, obs.requestsUntouched)
	// Certificates signed by another issuer wait on the custody write; the
	// webhook's refusal reaches only cert-manager's log, Keyward's log and
	// metrics: nothing on the Certificate or Secret says why.
	for name, msgs := range obs.caMessages {
		named := slices.ContainsFunc(msgs, func(m string) bool {
			return strings.Contains(strings.ToLower(m), "vault") || strings.Contains(strings.ToLower(m), "keyward")
		})
		if !named {
			t.Logf("GAP: Certificate %s/%s (CA issuer, blocked at the custody write) never named the cause during the outage; its conditions said: %q", ns, name, msgs)
		}
	}
	for _, crt := range renewing {
		if !obs.issuing[crt.Name] {
			t.Errorf("Certificate %s/%s never had Issuing=True during the outage, although its renewal fell inside it", ns, crt.Name)
		}
	}

	// Metrics behind the alerts in deploy/prometheus/keyward-rules.yaml.
	checkOutageMetrics(t, iss, obs, metricsBefore, metricsDuring, metricsAfter)

	// Already-issued Certificates kept their custody records.
	for _, crt := range before {
		checkRecordKept(t, st, ns, crt, snap[crt.Name])
	}
	if got := revision(t, c, steady); got != snap[steady.Name].revision {
		t.Errorf("Certificate %s/%s was re-issued (revision %d -> %d) although nothing was due", ns, steady.Name, snap[steady.Name].revision, got)
	}
	for _, crt := range fresh {
		assertScrubbed(t, st, ns, crt.Spec.SecretName, false)
	}

	// Nothing with a key reached etcd, during the outage or after it.
	scanOutageEtcd(t, st, ns, revPaused, revResumed)
	assertLogsClean(t, st.Dir)
}

// outageSnapshot is a Certificate's state before the outage.
type outageSnapshot struct {
	revision      int
	serial        string
	recordVersion int
	secretVersion string
	renewalTime   *metav1.Time
}

// outageObservations is what the objects said while Vault was frozen.
type outageObservations struct {
	issuerFalseAt       time.Duration // since the outage began
	issuerReason        string
	issuerMessage       string
	readyGaugeZero      bool
	issuing             map[string]bool     // Certificates seen with Issuing=True
	wentNotReady        map[string]string   // Certificate -> Ready=False reason
	requestsNamingVault map[string]string   // Certificate -> request condition message
	requestMessages     map[string][]string // Certificate -> messages seen
	requestsUntouched   []string            // Keyward requests with no Ready condition at the end
	caMessages          map[string][]string // CA-issued Certificate -> condition messages seen
}

// watchOutage polls until end: the issuer's condition and gauge, every
// Certificate and request, and the Secrets of those issued before. It must
// not call Vault (it is frozen).
func watchOutage(t *testing.T, st *keyward.Stack, iss *v1alpha1.VaultClusterIssuer, ns string, end time.Time,
	fresh, renewing []*cmapi.Certificate, steady *cmapi.Certificate, snap map[string]outageSnapshot) outageObservations {
	t.Helper()
	ctx := context.Background()
	c := st.Client
	start := time.Now()
	obs := outageObservations{
		issuing:             map[string]bool{},
		wentNotReady:        map[string]string{},
		requestsNamingVault: map[string]string{},
		requestMessages:     map[string][]string{},
		caMessages:          map[string][]string{},
	}
	host := vaultHost(st)
	for time.Now().Before(end) {
		cur := &v1alpha1.VaultClusterIssuer{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(iss), cur); err != nil {
			t.Fatalf("reading VaultClusterIssuer %s: %v", iss.Name, err)
		}
		if cond := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady); cond != nil && cond.Status != metav1.ConditionTrue && obs.issuerReason == "" {
			obs.issuerFalseAt, obs.issuerReason, obs.issuerMessage = time.Since(start), cond.Reason, cond.Message
		}
		if v, ok := gaugeValue(t, st, "keyward_issuer_ready", map[string]string{"issuer": "vaultclusterissuer/" + iss.Name}); ok && v == 0 {
			obs.readyGaugeZero = true
		}

		var crts cmapi.CertificateList
		if err := c.List(ctx, &crts, client.InNamespace(ns)); err != nil {
			t.Fatalf("listing Certificates in %s: %v", ns, err)
		}
		for i := range crts.Items {
			crt := &crts.Items[i]
			if cond := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionIssuing); cond != nil && cond.Status == cmmeta.ConditionTrue {
				obs.issuing[crt.Name] = true
			}
			if cond := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionReady); cond != nil && cond.Status != cmmeta.ConditionTrue {
				if _, seen := obs.wentNotReady[crt.Name]; !seen {
					obs.wentNotReady[crt.Name] = cond.Reason
				}
				if crt.Name == steady.Name {
					t.Errorf("Certificate %s/%s, valid and not due, went Ready=False during the outage: %s: %s", ns, crt.Name, cond.Reason, cond.Message)
				}
			}
			if crt.Spec.IssuerRef.Kind == cmapi.ClusterIssuerKind {
				for _, cond := range crt.Status.Conditions {
					if m := string(cond.Type) + ": " + cond.Message; !slices.Contains(obs.caMessages[crt.Name], m) {
						obs.caMessages[crt.Name] = append(obs.caMessages[crt.Name], m)
					}
				}
			}
			if slices.ContainsFunc(fresh, func(f *cmapi.Certificate) bool { return f.Name == crt.Name }) && isReady(crt) {
				t.Errorf("Certificate %s/%s became Ready while Vault was unreachable", ns, crt.Name)
			}
		}

		var crs cmapi.CertificateRequestList
		if err := c.List(ctx, &crs, client.InNamespace(ns)); err != nil {
			t.Fatalf("listing CertificateRequests in %s: %v", ns, err)
		}
		obs.requestsUntouched = nil
		for i := range crs.Items {
			cr := &crs.Items[i]
			if cr.Spec.IssuerRef.Kind != v1alpha1.VaultClusterIssuerKind || cr.CreationTimestamp.Time.Before(start.Add(-time.Second)) {
				continue
			}
			crtName := cr.Annotations[cmapi.CertificateNameKey]
			cond := apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
			if cond == nil {
				obs.requestsUntouched = append(obs.requestsUntouched, cr.Name)
				continue
			}
			if !slices.Contains(obs.requestMessages[crtName], cond.Message) {
				obs.requestMessages[crtName] = append(obs.requestMessages[crtName], cond.Message)
			}
			// Keyward's transient-error message names the Vault call
			// ("signing with vault <path>: <error>"); an issuer marked not
			// Ready names the reason and address.
			if strings.Contains(cond.Message, host) || strings.Contains(cond.Message, issuer.ReasonVaultUnreachable) ||
				strings.Contains(cond.Message, "signing with vault") {
				obs.requestsNamingVault[crtName] = cond.Message
			}
		}

		for _, crt := range append(slices.Clone(renewing), steady) {
			sec := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName}, sec); err != nil {
				t.Fatalf("reading Secret %s/%s: %v", ns, crt.Spec.SecretName, err)
			}
			if got := sec.Annotations[custody.AnnotationVersion]; got != snap[crt.Name].secretVersion {
				t.Errorf("Secret %s/%s changed custody version %s -> %s while Vault was unreachable", ns, sec.Name, snap[crt.Name].secretVersion, got)
			}
			if len(sec.Data["tls.key"]) != 0 {
				t.Errorf("Secret %s/%s holds a key while Vault is unreachable", ns, sec.Name)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return obs
}

// outageRecovery is how long after Vault came back each step took.
type outageRecovery struct {
	limit       time.Duration
	issuerReady time.Duration // -1: never
	done        map[string]time.Duration
	renewals    map[string]bool
}

func (r outageRecovery) what(name string) string {
	if r.renewals[name] {
		return "renewal"
	}
	return "issuance"
}

// watchRecovery polls until every new Certificate is Ready with its key in
// custody and every renewing one has a new certificate, or a deadline well
// past recoveryBound (to measure, not only to fail).
func watchRecovery(t *testing.T, st *keyward.Stack, iss *v1alpha1.VaultClusterIssuer, ns string, resumedAt time.Time,
	fresh, renewing []*cmapi.Certificate, snap map[string]outageSnapshot) outageRecovery {
	t.Helper()
	ctx := context.Background()
	c := st.Client
	r := outageRecovery{limit: 2*recoveryBound + 15*time.Second, issuerReady: -1, done: map[string]time.Duration{}, renewals: map[string]bool{}}
	for _, crt := range renewing {
		r.renewals[crt.Name] = true
	}
	all := append(slices.Clone(fresh), renewing...)
	for time.Since(resumedAt) < r.limit && (len(r.done) < len(all) || r.issuerReady < 0) {
		if r.issuerReady < 0 {
			cur := &v1alpha1.VaultClusterIssuer{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(iss), cur); err == nil && meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReady) {
				r.issuerReady = time.Since(resumedAt)
			}
		}
		for _, crt := range all {
			if _, ok := r.done[crt.Name]; ok {
				continue
			}
			cur := &cmapi.Certificate{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(crt), cur); err != nil || !isReady(cur) || cur.Status.Revision == nil {
				continue
			}
			if r.renewals[crt.Name] && *cur.Status.Revision <= snap[crt.Name].revision {
				continue
			}
			sec := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName}, sec); err != nil || !isPlaceholder(sec) {
				continue
			}
			if r.renewals[crt.Name] && sec.Annotations[custody.AnnotationSerial] == snap[crt.Name].serial {
				continue
			}
			r.done[crt.Name] = time.Since(resumedAt)
			if len(sec.Data["tls.key"]) != 0 {
				t.Errorf("Secret %s/%s holds a key after %s", ns, sec.Name, r.what(crt.Name))
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return r
}

// vaultHost is the host:port of the stack's Vault, as errors name it.
func vaultHost(st *keyward.Stack) string {
	return strings.TrimPrefix(st.Vault.Addr, "http://")
}

// assertIssuerEvents checks the issuer's events since the outage began: a
// Warning naming Vault unreachable, then a Normal one when it is verified
// again.
func assertIssuerEvents(t *testing.T, st *keyward.Stack, name string, since time.Time) {
	t.Helper()
	var warn, back bool
	var seen []string
	deadline := time.Now().Add(10 * time.Second)
	for !(warn && back) && time.Now().Before(deadline) {
		evs, err := st.Kubernetes.EventsV1().Events("").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("listing events: %v", err)
		}
		warn, back, seen = false, false, nil
		for _, ev := range evs.Items {
			if ev.Regarding.Kind != v1alpha1.VaultClusterIssuerKind || ev.Regarding.Name != name {
				continue
			}
			at := ev.EventTime.Time
			if ev.Series != nil {
				at = ev.Series.LastObservedTime.Time
			}
			if at.Before(since.Add(-time.Second)) {
				continue
			}
			seen = append(seen, ev.Type+"/"+ev.Reason)
			switch {
			case ev.Type == corev1.EventTypeWarning && ev.Reason == issuer.ReasonVaultUnreachable && strings.Contains(ev.Note, vaultHost(st)):
				warn = true
			case ev.Type == corev1.EventTypeNormal && ev.Reason == issuer.ReasonVerified:
				back = true
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !warn || !back {
		t.Errorf("VaultClusterIssuer %s events since the outage began: %v; want a Warning %s naming %s and a Normal %s after it",
			name, seen, issuer.ReasonVaultUnreachable, vaultHost(st), issuer.ReasonVerified)
	}
}

// outageMetricSet holds the series the alert rules read.
type outageMetricSet struct {
	writeErrors, signNotSuccess, failOpen, scrubDenied float64
}

func outageMetrics(t *testing.T, st *keyward.Stack) outageMetricSet {
	t.Helper()
	mfs, err := st.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var m outageMetricSet
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			lbl := labelMap(s)
			switch mf.GetName() {
			case "keyward_custody_write_errors_total":
				m.writeErrors += s.GetCounter().GetValue()
			case "keyward_issuer_sign_total":
				if lbl["result"] != "success" {
					m.signNotSuccess += s.GetCounter().GetValue()
				}
			case "keyward_guard_decisions_total":
				if lbl["decision"] == "fail_open" {
					m.failOpen += s.GetCounter().GetValue()
				}
			case "keyward_scrub_total":
				if lbl["path"] == scrubber.ByWebhook && lbl["result"] == scrubber.ResultStoreError {
					m.scrubDenied += s.GetCounter().GetValue()
				}
			}
		}
	}
	return m
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// gaugeValue reads one gauge series from Keyward's registry.
func gaugeValue(t *testing.T, st *keyward.Stack, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := st.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			lbl := labelMap(s)
			for k, v := range labels {
				if lbl[k] != v {
					continue series
				}
			}
			return s.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// checkOutageMetrics: the series behind KeywardIssuerNotReady,
// KeywardCustodyWriteErrors, KeywardSignErrors and KeywardGuardErrors show
// the outage.
func checkOutageMetrics(t *testing.T, iss *v1alpha1.VaultClusterIssuer, obs outageObservations, before, during, after outageMetricSet) {
	t.Helper()
	if !obs.readyGaugeZero {
		t.Errorf("keyward_issuer_ready{issuer=\"vaultclusterissuer/%s\"} never read 0 during the outage (alert KeywardIssuerNotReady's series)", iss.Name)
	}
	if during.writeErrors <= before.writeErrors {
		t.Errorf("keyward_custody_write_errors_total did not increase during the outage (%v -> %v): alert KeywardCustodyWriteErrors would stay silent", before.writeErrors, during.writeErrors)
	}
	if during.signNotSuccess <= before.signNotSuccess {
		t.Errorf("keyward_issuer_sign_total{result!=\"success\"} did not increase during the outage (%v -> %v): alert KeywardSignErrors' series shows nothing", before.signNotSuccess, during.signNotSuccess)
	}
	t.Logf("metrics over the outage (before -> end of outage -> after recovery): custody write errors %v -> %v -> %v; webhook scrubs refused (store_error) %v -> %v -> %v; failed sign attempts %v -> %v -> %v; guard fail_open %v -> %v -> %v",
		before.writeErrors, during.writeErrors, after.writeErrors,
		before.scrubDenied, during.scrubDenied, after.scrubDenied,
		before.signNotSuccess, during.signNotSuccess, after.signNotSuccess,
		before.failOpen, during.failOpen, after.failOpen)
}

// checkRecordKept: the custody version a Certificate had before the outage
// is still in Vault, not deleted or destroyed, and the Certificate's
// placeholder still names a record version that holds its key.
func checkRecordKept(t *testing.T, st *keyward.Stack, ns string, crt *cmapi.Certificate, s outageSnapshot) {
	t.Helper()
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	md, err := vc.KVv2(framework.VaultCustodyMount).GetMetadata(context.Background(), framework.VaultCustodyPrefix+"/"+ns+"/"+crt.Spec.SecretName)
	if err != nil {
		t.Errorf("custody record of %s/%s after the outage: %v", ns, crt.Spec.SecretName, err)
		return
	}
	v, ok := md.Versions[fmt.Sprint(s.recordVersion)]
	switch {
	case !ok:
		t.Errorf("custody record %s/%s lost version %d, current before the outage (versions now: %d..%d)", ns, crt.Spec.SecretName, s.recordVersion, md.OldestVersion, md.CurrentVersion)
	case v.Destroyed || !v.DeletionTime.IsZero():
		t.Errorf("custody record %s/%s version %d was deleted or destroyed", ns, crt.Spec.SecretName, s.recordVersion)
	}
}

// scanOutageEtcd scans every retained revision of the namespace's Secrets:
// no target Secret ever held a key (assertNoKeyAtRest), and reports what was
// written while Vault was frozen.
func scanOutageEtcd(t *testing.T, st *keyward.Stack, ns string, from, to int64) {
	t.Helper()
	assertNoKeyAtRest(t, st, ns, false)
	revs, err := st.EtcdHistory(context.Background(), "/registry/secrets/"+ns+"/")
	if err != nil {
		t.Fatal(err)
	}
	var targets, temps, tempKeys int
	for _, r := range revs {
		if r.Deleted || r.Revision <= from || r.Revision > to {
			continue
		}
		if bytes.Contains(r.Value, []byte(cmapi.IsNextPrivateKeySecretLabelKey)) {
			temps++
			if framework.HoldsPEMPrivateKey(r.Value) {
				tempKeys++
			}
			continue
		}
		targets++
	}
	t.Logf("etcd during the outage (revisions %d..%d of %s): %d target-Secret revisions, none with a key; %d revisions of cert-manager's temporary next-private-key Secrets, %d holding a key (counted separately: cert-manager's own window)",
		from, to, ns, targets, temps, tempKeys)
}

// TestAPIServerRestart: the kube-apiserver restarts in place (same etcd,
// port and identity); every Keyward informer loses its watch. Key-bearing
// Secrets written while it was down (straight into etcd, as a restore would)
// and right after it came back, before Keyward's watches are re-established,
// must all be scrubbed by the watcher once it has resynced, and Keyward must
// keep running. The scrub webhook is unreachable and fails open (as in
// TestCustodyWatcherBackstop), so only the watcher can move these keys.
func TestAPIServerRestart(t *testing.T) {
	t.Parallel()
	ignore := admissionv1.Ignore
	st := keyward.StartStackForTest(t, keyward.StackOptions{
		Framework: framework.Options{WithoutCertManager: true, RestartableAPIServer: true},
		// Leader election stays off, as in every in-process stack. With it on
		// (the chart's setting), this restart makes Keyward's manager exit:
		// the apiserver is unreachable for ~10 s, controller-runtime's
		// default RenewDeadline, so the leader gives up its lease and
		// mgr.Start returns "leader election lost" (see the issue 7 report).
		WebhookConfig: func(o *webhook.ConfigOptions) {
			o.Service = nil
			o.URL = "https://127.0.0.1:1" // nothing listens: the webhook is bypassed
			o.SecretFailurePolicy = &ignore
			o.GuardFailurePolicy = &ignore
		},
	})
	ctx := context.Background()
	const ns = "resync"
	custodyNamespace(t, st, ns, nil)

	keys := map[string][]byte{} // Secret name -> the key it carried
	var names []string
	create := func(name string) {
		keyPEM, certPEM := faultKeyPair(t, name+".example.com")
		if err := st.Client.Create(ctx, faultTLSSecret(ns, name, keyPEM, certPEM)); err != nil {
			t.Fatalf("creating Secret %s/%s: %v", ns, name, err)
		}
		keys[name] = keyPEM
		names = append(names, name)
	}

	// Before: the watcher works.
	for i := range 2 {
		create(fmt.Sprintf("before-%d", i))
	}
	waitScrubbedByWatcher(t, st, ns, names, 30*time.Second, "the watcher to scrub the Secrets created before the restart")
	watchesBefore, err := st.OpenWatches(ctx, "secrets")
	if err != nil {
		t.Fatal(err)
	}

	// Down: Keyward's watches break; Secrets land in etcd meanwhile.
	stopStart := time.Now()
	if err := st.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	for i := range 2 {
		name := fmt.Sprintf("while-down-%d", i)
		keyPEM, certPEM := faultKeyPair(t, name+".example.com")
		s := faultTLSSecret(ns, name, keyPEM, certPEM)
		s.UID = types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1))
		s.CreationTimestamp = metav1.NewTime(time.Now().Truncate(time.Second))
		if _, err := st.PutSecretInEtcd(ctx, s); err != nil {
			t.Fatal(err)
		}
		keys[name] = keyPEM
		names = append(names, name)
	}
	// Stay down long enough for Keyward's reflectors to fail and back off,
	// as they would through a real control-plane restart.
	time.Sleep(time.Until(stopped.Add(5 * time.Second)))
	startBegin := time.Now()
	if err := st.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()

	// Right after: created before Keyward's watches are back.
	for i := range 3 {
		create(fmt.Sprintf("after-%d", i))
	}
	createdWithin := time.Since(back)
	watchesAtCreate, err := st.OpenWatches(ctx, "secrets")
	if err != nil {
		t.Fatal(err)
	}

	took := waitScrubbedByWatcher(t, st, ns, names, 60*time.Second, "the watcher to scrub every Secret after the apiserver restart")
	resync := time.Since(back)
	watchesAfter, err := st.OpenWatches(ctx, "secrets")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		sec := getSecret(t, st.Client, client.ObjectKey{Namespace: ns, Name: name})
		if by := sec.Annotations[custody.AnnotationScrubbedBy]; by != scrubber.ByWatcher {
			t.Errorf("Secret %s/%s scrubbed by %q, want the watcher", ns, name, by)
		}
		rec, ok := readCustody(t, st, ns, name)
		if !ok {
			t.Errorf("no custody record for Secret %s/%s", ns, name)
			continue
		}
		if !bytes.Equal(rec.Key, keys[name]) {
			t.Errorf("custody record of Secret %s/%s holds another key than the one the Secret carried", ns, name)
		}
		if !bytes.Equal(rec.Cert, sec.Data["tls.crt"]) {
			t.Errorf("custody record of Secret %s/%s holds another certificate than the Secret's tls.crt", ns, name)
		}
		if got, want := sec.Annotations[custody.AnnotationKeySHA256], keySHA256(t, rec.Cert); got != want {
			t.Errorf("Secret %s/%s names key %s, its custody record holds %s", ns, name, got, want)
		}
	}
	t.Logf("RESTART: apiserver stop took %s, down %s, start took %s; Secret watches open: %d before, %d when the 3 post-restart Secrets were created (%s after start), %d after resync; all %d keys scrubbed by the watcher %s after the apiserver was back (wait %s); key exposure: %s",
		stopped.Sub(stopStart).Round(time.Millisecond), startBegin.Sub(stopped).Round(time.Millisecond), back.Sub(startBegin).Round(time.Millisecond),
		watchesBefore, watchesAtCreate, createdWithin.Round(time.Millisecond), watchesAfter,
		len(names), resync.Round(time.Millisecond), took.Round(time.Millisecond), exposureSummary(t, st))

	// Keyward kept running through it: its manager never returned.
	if err := st.StopKeyward(); err != nil {
		t.Errorf("keyward's manager stopped with an error across the apiserver restart: %v", err)
	}
	assertLogsClean(t, st.Dir)
}

// faultKeyPair returns a PEM PKCS#8 P-256 key and a self-signed certificate
// for dnsName.
func faultKeyPair(t *testing.T, dnsName string) (keyPEM, certPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dnsName},
		DNSNames:     []string{dnsName},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// faultTLSSecret is a Secret as cert-manager's issuing controller writes it.
func faultTLSSecret(ns, name string, keyPEM, certPEM []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Annotations: map[string]string{cmapi.CertificateNameKey: name},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSPrivateKeyKey: keyPEM, corev1.TLSCertKey: certPEM},
	}
}

// waitScrubbedByWatcher waits until each named Secret is a placeholder with
// no key, and returns how long that took.
func waitScrubbedByWatcher(t *testing.T, st *keyward.Stack, ns string, names []string, timeout time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, timeout, what, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			sec := &corev1.Secret{}
			if err := st.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sec); err != nil {
				return false, err
			}
			if len(sec.Data["tls.key"]) != 0 || !isPlaceholder(sec) {
				return false, fmt.Errorf("Secret %s/%s still holds its key", ns, name)
			}
		}
		return true, nil
	})
	return time.Since(start)
}
