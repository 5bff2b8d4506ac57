// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/guard"
	"github.com/keyward-io/keyward/scrubber"
	"github.com/keyward-io/keyward/webhook"
)

// guardITStore returns a custody store on the real Vault, authenticated with
// a token carrying only the given policy.
func guardITStore(t *testing.T, ctx context.Context, v *framework.Vault, policy string) *vaultkv.Store {
	t.Helper()
	s, _, err := v.CustodyStore(ctx, 2*time.Second, policy)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// guardITWait polls cond every 250ms until it holds or timeout passes.
func guardITWait(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
}

func guardITCondition(c *cmapi.Certificate, typ cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == typ {
			return &c.Status.Conditions[i]
		}
	}
	return nil
}

// guardITRequests counts the CertificateRequests of the Certificate.
func guardITRequests(ctx context.Context, c client.Client, crt *cmapi.Certificate) (int, error) {
	var list cmapi.CertificateRequestList
	if err := c.List(ctx, &list, client.InNamespace(crt.Namespace)); err != nil {
		return 0, err
	}
	n := 0
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], crt) {
			n++
		}
	}
	return n, nil
}

// guardITDecisions reads keyward_guard_decisions_total{decision} from
// controller-runtime's registry, where SetupCertificateGuard registers it.
func guardITDecisions(t *testing.T, decision string) float64 {
	t.Helper()
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keyward_guard_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "decision" && l.GetValue() == decision {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestGuardIntegration registers only the custody guard in a real apiserver,
// next to cert-manager v1.21.2's controllers and a real Vault, and tells the
// user's story: a Ready Certificate whose Secret had its key moved to Vault
// by hand stays Ready and is not re-issued for a quiet minute; a manual
// renewal still re-issues it.
func TestGuardIntegration(t *testing.T) {
	cfg := webhook.MutatingWebhookConfiguration(webhook.ConfigOptions{
		// envtest rewrites the service reference to its local serving address.
		Service: &admissionregistrationv1.ServiceReference{Namespace: "keyward-system", Name: "keyward-webhook"},
	})
	var guardOnly []admissionregistrationv1.MutatingWebhook
	for _, w := range cfg.Webhooks {
		if w.Name == webhook.GuardWebhookName {
			guardOnly = append(guardOnly, w)
		}
	}
	if len(guardOnly) != 1 || len(guardOnly[0].MatchConditions) == 0 {
		t.Fatalf("the webhook configuration must hold the guard with its match conditions, got %+v", guardOnly)
	}
	cfg.Webhooks = guardOnly
	env := framework.StartForTest(t, framework.Options{MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{cfg}})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	writer := guardITStore(t, ctx, env.Vault, framework.PolicyCustodyWriter)
	// The guard runs with the guard policy: metadata read only.
	guardStore := guardITStore(t, ctx, env.Vault, framework.PolicyGuard)

	mgr, err := ctrl.NewManager(env.RESTConfig, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host: env.Webhook.LocalServingHost, Port: env.Webhook.LocalServingPort, CertDir: env.Webhook.LocalServingCertDir,
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := webhook.SetupCertificateGuard(ctx, mgr, guardStore, clock.RealClock{}, crmetrics.Registry, mgr.GetLogger().WithName("certificate-guard")); err != nil {
		t.Fatal(err)
	}
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	const ns = "guarded"
	if err := env.CreateNamespace(ctx, ns, map[string]string{custody.NamespaceLabelCustody: "enabled"}); err != nil {
		t.Fatal(err)
	}
	c := env.Client
	issuer := &cmapi.Issuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "selfsigned"},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
	}
	if err := c.Create(ctx, issuer); err != nil {
		t.Fatal(err)
	}
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: cmapi.CertificateSpec{
			SecretName: "web-tls",
			DNSNames:   []string{"web.guarded.example"},
			IssuerRef:  cmmeta.IssuerReference{Name: "selfsigned", Kind: "Issuer", Group: "cert-manager.io"},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
		},
	}
	if err := c.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(crt)
	t.Cleanup(func() {
		if t.Failed() {
			guardITDescribe(t, c, key)
		}
	})
	guardITWait(t, ctx, 2*time.Minute, "the Certificate to be Ready", func() (bool, error) {
		if err := c.Get(ctx, key, crt); err != nil {
			return false, err
		}
		r := guardITCondition(crt, cmapi.CertificateConditionReady)
		return r != nil && r.Status == cmmeta.ConditionTrue && crt.Status.Revision != nil && guardITCondition(crt, cmapi.CertificateConditionIssuing) == nil, nil
	})
	revision := *crt.Status.Revision
	requestsBefore, err := guardITRequests(ctx, c, crt)
	if err != nil {
		t.Fatal(err)
	}

	// Move the key to Vault by hand, the way Keyward's scrub does: custody
	// record first, then the Secret becomes a placeholder with tls.key empty.
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-tls"}, &secret); err != nil {
		t.Fatal(err)
	}
	plan, err := scrubber.Plan(&secret, scrubber.PlanOptions{Now: time.Now(), By: scrubber.ByWatcher, Path: writer.Path(ns, "web-tls")})
	if err != nil || plan.Action != scrubber.ActionScrub {
		t.Fatalf("planning the scrub of web-tls: %v (%+v)", err, plan)
	}
	version, err := writer.Put(ctx, plan.Record, 0)
	if err != nil {
		t.Fatal(err)
	}

	// Watch every stored version of the Certificate from now on: a
	// redaction-induced transition must never reach etcd, not even briefly.
	wc, err := client.NewWithWatch(env.RESTConfig, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &cmapi.CertificateList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu         sync.Mutex
		violations []string
		seen       int
	)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			got, ok := ev.Object.(*cmapi.Certificate)
			if !ok || got.Name != "web" {
				continue
			}
			mu.Lock()
			seen++
			if r := guardITCondition(got, cmapi.CertificateConditionReady); r == nil || r.Status != cmmeta.ConditionTrue {
				violations = append(violations, fmt.Sprintf("Ready not True: %+v", r))
			}
			if i := guardITCondition(got, cmapi.CertificateConditionIssuing); i != nil && i.Status == cmmeta.ConditionTrue {
				violations = append(violations, "Issuing True: "+i.Reason+": "+i.Message)
			}
			mu.Unlock()
		}
	}()

	placeholder := plan.Apply(&secret, version)
	if len(placeholder.Data["tls.key"]) != 0 || placeholder.Labels[custody.LabelCustody] != custody.LabelCustodyVault {
		t.Fatalf("placeholder still holds a key or lacks the custody label")
	}
	if err := c.Update(ctx, placeholder); err != nil {
		t.Fatal(err)
	}

	// cert-manager sees the empty key at once (Secret informer); give it a
	// quiet minute to try to re-issue.
	quietUntil := time.Now().Add(60 * time.Second)
	guardITWait(t, ctx, 30*time.Second, "the guard to veto cert-manager's redaction-induced update", func() (bool, error) {
		return guardITDecisions(t, webhook.GuardDecisionVeto) > 0, nil
	})
	// The apiserver calls the guard a few times right after the key moved,
	// then never again: during the last 20 seconds nothing may happen at all.
	settledAt := quietUntil.Add(-20 * time.Second)
	settledVetoes, settledVersions := -1.0, -1
	for time.Now().Before(quietUntil) {
		if settledVetoes < 0 && time.Now().After(settledAt) {
			settledVetoes = guardITDecisions(t, webhook.GuardDecisionVeto)
			mu.Lock()
			settledVersions = seen
			mu.Unlock()
		}
		if err := c.Get(ctx, key, crt); err != nil {
			t.Fatal(err)
		}
		if n, err := guardITRequests(ctx, c, crt); err != nil || n != requestsBefore {
			t.Fatalf("CertificateRequests: %d (err %v), want still %d: a re-issue started", n, err, requestsBefore)
		}
		if *crt.Status.Revision != revision {
			t.Fatalf("revision moved from %d to %d", revision, *crt.Status.Revision)
		}
		time.Sleep(2 * time.Second)
	}
	w.Stop()
	<-watchDone
	mu.Lock()
	if len(violations) > 0 {
		t.Fatalf("%d stored Certificate versions (of %d) showed a redaction-induced change: %v", len(violations), seen, violations)
	}
	versions := seen
	mu.Unlock()
	if vetoes := guardITDecisions(t, webhook.GuardDecisionVeto); vetoes != settledVetoes || versions != settledVersions {
		t.Fatalf("not settled: in the last 20s of the quiet minute vetoes went %v -> %v and stored versions %d -> %d (a status write loop)",
			settledVetoes, vetoes, settledVersions, versions)
	}
	if r := guardITCondition(crt, cmapi.CertificateConditionReady); r == nil || r.Status != cmmeta.ConditionTrue || r.Message != guard.ReadyMessage {
		t.Fatalf("Ready = %+v, want True with the custody message (the readiness update went through the guard)", r)
	}
	if got := guardITDecisions(t, webhook.GuardDecisionFailOpen); got != 0 {
		t.Fatalf("guard failed open %v times", got)
	}
	// The watch's initial version plus the one write that puts the Vault
	// message on Ready; vetoed updates themselves store nothing (the guard
	// keeps the stored managedFields). A little slack for timing.
	if versions > 4 {
		t.Fatalf("%d stored versions of the Certificate during the quiet minute, want at most 4: vetoed updates must store nothing", versions)
	}
	t.Logf("quiet minute: %d guard vetoes, %d passes, %d stored versions of the Certificate, 0 new CertificateRequests",
		int(guardITDecisions(t, webhook.GuardDecisionVeto)), int(guardITDecisions(t, webhook.GuardDecisionPass)), versions)

	// What users see (docs/guard.md): cert-manager still records its Issuing
	// event for the vetoed update, but nothing is issued.
	var events corev1.EventList
	if err := c.List(ctx, &events, client.InNamespace(ns)); err == nil {
		for _, e := range events.Items {
			if e.InvolvedObject.Name == "web" && strings.Contains(e.Message, "does not contain a private key") {
				t.Logf("misleading cert-manager event, as documented: %s %q (x%d)", e.Reason, e.Message, e.Count)
			}
		}
	}

	// A manual renewal (what `cmctl renew` does) is not redaction-induced:
	// the CEL conditions do not even send it to the guard, and cert-manager
	// issues revision+1.
	if err := c.Get(ctx, key, crt); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	crt.Status.Conditions = append(crt.Status.Conditions, cmapi.CertificateCondition{
		Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue, Reason: "ManuallyTriggered",
		Message: "Certificate re-issuance manually triggered", LastTransitionTime: &now, ObservedGeneration: crt.Generation,
	})
	if err := c.Status().Update(ctx, crt); err != nil {
		t.Fatal(err)
	}
	guardITWait(t, ctx, 2*time.Minute, "the manual renewal to issue revision "+strconv.Itoa(revision+1), func() (bool, error) {
		if err := c.Get(ctx, key, crt); err != nil {
			return false, err
		}
		return crt.Status.Revision != nil && *crt.Status.Revision == revision+1 && guardITCondition(crt, cmapi.CertificateConditionIssuing) == nil, nil
	})
	// The revision manager may already have pruned the old request; the new
	// one must exist.
	var reqs cmapi.CertificateRequestList
	if err := c.List(ctx, &reqs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range reqs.Items {
		found = found || (metav1.IsControlledBy(&r, crt) && r.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] == strconv.Itoa(revision+1))
	}
	if !found {
		t.Fatalf("no CertificateRequest for revision %d after the manual renewal", revision+1)
	}
}

// guardITDescribe logs the Certificate, its requests and its events, to
// explain a failure.
func guardITDescribe(t *testing.T, c client.Client, key client.ObjectKey) {
	ctx := context.Background()
	var crt cmapi.Certificate
	if err := c.Get(ctx, key, &crt); err == nil {
		t.Logf("certificate status: revision=%v conditions=%+v", crt.Status.Revision, crt.Status.Conditions)
	}
	var reqs cmapi.CertificateRequestList
	if err := c.List(ctx, &reqs, client.InNamespace(key.Namespace)); err == nil {
		for _, r := range reqs.Items {
			t.Logf("request %s revision=%s conditions=%+v", r.Name, r.Annotations[cmapi.CertificateRequestRevisionAnnotationKey], r.Status.Conditions)
		}
	}
	var events corev1.EventList
	if err := c.List(ctx, &events, client.InNamespace(key.Namespace)); err == nil {
		for _, e := range events.Items {
			t.Logf("event %s/%s %s %s: %s (x%d)", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Type, e.Reason, e.Message, e.Count)
		}
	}
}
