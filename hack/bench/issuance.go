// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/scrubber"
)

// armLabel marks an issuance arm's Certificates with the arm's namespace
// prefix.
const armLabel = "bench.keyward.io/arm"

const (
	baselineIssuerName = "bench-baseline"
	keywardIssuerName  = "bench-keyward"
)

// issuanceResult is one round of one arm.
type issuanceResult struct {
	Arm   string // "a" (baseline) or "b" (keyward)
	Round int
	// Namespaces holds the arm's Certificates, spread evenly (-namespaces).
	Namespaces []string
	Wall       time.Duration // first Create call → last Ready seen by the watch
	// Settled: first Create call → all Ready and every cert-manager
	// temporary private key Secret (cert-manager.io/next-private-key) of the
	// arm deleted, i.e. cert-manager's clean-up done too; SettledCPU is the
	// CPU each process consumed until then.
	Settled    time.Duration
	SettledCPU map[string]time.Duration
	// APILatency: creationTimestamp → Ready condition lastTransitionTime, per
	// certificate. Both are RFC 3339 seconds, so the resolution is 1 s.
	APILatency sample
	// WatchLatency: Create returned → the watch delivered Ready=True.
	WatchLatency sample
	// Guard and Sign are Keyward's own histograms over this arm (b only).
	Guard, Sign, Scrub histogram
	// GuardCounters: keyward_guard_decisions_total by decision and
	// keyward_guard_custody_lookups_total by result over this arm (b only),
	// keyed "decision=veto", "lookup=primed", ...
	GuardCounters map[string]float64
	// CPU is the CPU time each process consumed during the arm.
	CPU map[string]time.Duration
	// Requests counts kube-apiserver requests during the arm, by "VERB resource[/subresource]".
	Requests map[string]float64
	// Scrubbed counts Secrets with an empty tls.key after the arm (b only).
	Scrubbed, Secrets int
	// Writes counts watch events on Secrets, Certificates and
	// CertificateRequests in the arm's namespaces from the first Create to
	// settled, keyed "<kind> <event> by <field manager>" (countWrites).
	Writes map[string]int
}

// createIssuers creates the two ClusterIssuers and waits until both are Ready.
func (b *bench) createIssuers(ctx context.Context) error {
	base := &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: baselineIssuerName},
		Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{Vault: &cmapi.VaultIssuer{
			Server: b.st.Vault.Addr,
			Path:   framework.VaultIntPKIMount + "/sign/" + framework.VaultBaselineRole,
			Auth: cmapi.VaultAuth{Kubernetes: &cmapi.VaultKubernetesAuth{
				Path: "/v1/auth/" + framework.VaultKubernetesMount,
				Role: "cert-manager",
				ServiceAccountRef: &cmapi.ServiceAccountRef{
					Name:           framework.CertManagerServiceAccount,
					TokenAudiences: []string{framework.VaultAudience},
				},
			}},
		}}},
	}
	kw := &v1alpha1.VaultClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: keywardIssuerName},
		Spec: v1alpha1.VaultIssuerSpec{
			Server: b.st.Vault.Addr,
			Path:   framework.VaultIntPKIMount + "/sign/" + framework.VaultKeywardRole,
			Auth: v1alpha1.VaultAuth{Kubernetes: &v1alpha1.KubernetesAuth{
				Role:              "keyward-issuer",
				MountPath:         framework.VaultKubernetesMount,
				ServiceAccountRef: v1alpha1.ServiceAccountRef{Name: framework.KeywardServiceAccount, Audiences: []string{framework.VaultAudience}},
			}},
		},
	}
	if err := b.c.Create(ctx, base); err != nil {
		return fmt.Errorf("creating ClusterIssuer %s: %w", base.Name, err)
	}
	if err := b.c.Create(ctx, kw); err != nil {
		return fmt.Errorf("creating VaultClusterIssuer %s: %w", kw.Name, err)
	}
	return framework.Poll(ctx, 2*time.Minute, "issuers Ready", func(ctx context.Context) (bool, error) {
		ci := &cmapi.ClusterIssuer{}
		if err := b.c.Get(ctx, client.ObjectKey{Name: base.Name}, ci); err != nil {
			return false, err
		}
		if !apiutil.IssuerHasCondition(ci, cmapi.IssuerCondition{Type: cmapi.IssuerConditionReady, Status: cmmeta.ConditionTrue}) {
			return false, nil
		}
		vi := &v1alpha1.VaultClusterIssuer{}
		if err := b.c.Get(ctx, client.ObjectKey{Name: kw.Name}, vi); err != nil {
			return false, err
		}
		for _, c := range vi.Status.Conditions {
			if c.Type == "Ready" && c.Status == metav1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// runIssuance creates n Certificates at once in a fresh namespace and waits
// for all of them to be Ready.
func (b *bench) runIssuance(ctx context.Context, arm string, round int) (*issuanceResult, error) {
	res := &issuanceResult{Arm: arm, Round: round}
	var ref cmmeta.IssuerReference
	labels := map[string]string{}
	prefix := ""
	switch arm {
	case "a":
		prefix = fmt.Sprintf("bench-baseline-r%d", round)
		ref = cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: baselineIssuerName}
	case "b":
		prefix = fmt.Sprintf("bench-custody-r%d", round)
		ref = cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "VaultClusterIssuer", Name: keywardIssuerName}
		labels[custody.NamespaceLabelCustody] = "enabled"
	}
	for i := range b.opts.layout(round) {
		ns := prefix
		if b.opts.layout(round) > 1 {
			ns = fmt.Sprintf("%s-%d", prefix, i)
		}
		if err := b.st.CreateNamespace(ctx, ns, labels); err != nil {
			return nil, err
		}
		b.issuanceNamespaces[ns] = arm
		res.Namespaces = append(res.Namespaces, ns)
	}
	// Every Certificate of the arm carries armLabel, so one watch follows
	// them across the arm's namespaces.
	armSelector := client.MatchingLabels{armLabel: prefix}

	var mu sync.Mutex
	created := map[string]time.Time{}
	readySeen := map[string]time.Time{}
	apiLatency := map[string]time.Duration{}
	allReady := make(chan struct{})
	var closeOnce sync.Once
	wctx, stop := context.WithCancel(ctx)
	defer stop()

	// cert-manager's temporary key Secrets of this arm: created for every
	// issuance, deleted once it is over. Guarded by mu.
	inArm := map[string]bool{}
	for _, ns := range res.Namespaces {
		inArm[ns] = true
	}
	tempKeys := map[string]bool{}
	tempSeen := 0
	settled := make(chan struct{})
	var settledOnce sync.Once
	var settledAt time.Time
	// checkSettled must be called with mu held.
	checkSettled := func() {
		if len(readySeen) == b.opts.N && tempSeen > 0 && len(tempKeys) == 0 {
			settledOnce.Do(func() { settledAt = time.Now(); close(settled) })
		}
	}
	tempSel := client.MatchingLabels{"cert-manager.io/next-private-key": "true"}
	tempDone, err := b.selectorFollower(func() client.ObjectList { return &corev1.SecretList{} }, tempSel,
		func(t watch.EventType, obj runtime.Object, _ time.Time) {
			sec, ok := obj.(*corev1.Secret)
			if !ok || !inArm[sec.Namespace] {
				return
			}
			key := sec.Namespace + "/" + sec.Name
			mu.Lock()
			defer mu.Unlock()
			switch {
			case t == watch.Deleted:
				delete(tempKeys, key)
			case !tempKeys[key]:
				tempKeys[key] = true
				tempSeen++
			}
			checkSettled()
		}).start(wctx)
	if err != nil {
		return nil, fmt.Errorf("watching cert-manager's temporary key Secrets: %w", err)
	}
	done, err := b.selectorFollower(func() client.ObjectList { return &cmapi.CertificateList{} }, armSelector,
		func(_ watch.EventType, obj runtime.Object, at time.Time) {
			crt, ok := obj.(*cmapi.Certificate)
			if !ok {
				return
			}
			cond := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionReady)
			if cond == nil || cond.Status != cmmeta.ConditionTrue {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			key := crt.Namespace + "/" + crt.Name
			if _, seen := readySeen[key]; seen {
				return
			}
			readySeen[key] = at
			if cond.LastTransitionTime != nil {
				apiLatency[key] = cond.LastTransitionTime.Sub(crt.CreationTimestamp.Time)
			}
			if len(readySeen) == b.opts.N {
				closeOnce.Do(func() { close(allReady) })
				checkSettled()
			}
		}).start(wctx)
	if err != nil {
		return nil, fmt.Errorf("watching the Certificates of %s: %w", prefix, err)
	}

	var before, sign0, scrub0 histogram
	var counters0 map[string]float64
	if arm == "b" {
		counters0 = b.guardCounters()
		before, _ = gatherHistogram(b.st.Registry, "keyward_guard_admission_duration_seconds", nil)
		sign0, _ = gatherHistogram(b.st.Registry, "keyward_issuer_sign_duration_seconds", nil)
		scrub0, _ = gatherHistogram(b.st.Registry, "keyward_scrub_duration_seconds", map[string]string{"path": scrubber.ByWebhook})
	}

	wc, err := b.countWrites(ctx, func(ns string) (string, bool) { return "", inArm[ns] })
	if err != nil {
		return nil, err
	}
	defer func() {
		if res.Writes == nil {
			wc.finish()
		}
	}()
	req0, err := b.apiRequests(ctx)
	if err != nil {
		return nil, err
	}
	cpu0 := cpuTimes()
	// "At once": every Certificate is submitted concurrently (bounded only
	// by -create-concurrency), with client-side rate limiting off.
	start := time.Now()
	errs := make(chan error, b.opts.N)
	sem := make(chan struct{}, b.opts.CreateConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < b.opts.N; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("c%05d", i)
			ns := res.Namespaces[i%len(res.Namespaces)]
			crt := &cmapi.Certificate{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{armLabel: prefix}},
				Spec: cmapi.CertificateSpec{
					SecretName: name + "-tls",
					DNSNames:   []string{fmt.Sprintf("%s.%s.example.com", name, ns)},
					Duration:   &metav1.Duration{Duration: 24 * time.Hour},
					PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmapi.RotationPolicyAlways},
					IssuerRef:  ref,
				},
			}
			if err := b.c.Create(ctx, crt); err != nil {
				errs <- fmt.Errorf("creating Certificate %s/%s: %w", ns, name, err)
				return
			}
			mu.Lock()
			created[ns+"/"+name] = time.Now()
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	select {
	case <-allReady:
	case <-time.After(b.opts.PhaseTimeout):
		mu.Lock()
		n := len(readySeen)
		mu.Unlock()
		return nil, fmt.Errorf("arm %s round %d: only %d of %d Certificates Ready after %s", arm, round, n, b.opts.N, b.opts.PhaseTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	mu.Lock()
	var last time.Time
	for name, at := range readySeen {
		if at.After(last) {
			last = at
		}
		res.WatchLatency = append(res.WatchLatency, at.Sub(created[name]))
		res.APILatency = append(res.APILatency, apiLatency[name])
	}
	mu.Unlock()
	res.Wall = last.Sub(start)
	res.CPU = cpuDelta(cpu0, cpuTimes())
	req1, err := b.apiRequests(ctx)
	if err != nil {
		return nil, err
	}
	res.Requests = requestDelta(req0, req1)
	select {
	case <-settled:
		mu.Lock()
		res.Settled = settledAt.Sub(start)
		mu.Unlock()
		res.SettledCPU = cpuDelta(cpu0, cpuTimes())
		res.Writes, _ = wc.finish()
	case <-time.After(b.opts.PhaseTimeout):
		return nil, fmt.Errorf("arm %s round %d: cert-manager's temporary key Secrets still there %s after the last Ready", arm, round, b.opts.PhaseTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	stop()
	<-done
	<-tempDone

	if arm == "b" {
		after, _ := gatherHistogram(b.st.Registry, "keyward_guard_admission_duration_seconds", nil)
		res.Guard = after.minus(before)
		sign1, _ := gatherHistogram(b.st.Registry, "keyward_issuer_sign_duration_seconds", nil)
		res.Sign = sign1.minus(sign0)
		scrub1, _ := gatherHistogram(b.st.Registry, "keyward_scrub_duration_seconds", map[string]string{"path": scrubber.ByWebhook})
		res.Scrub = scrub1.minus(scrub0)
		res.GuardCounters = map[string]float64{}
		for k, v := range b.guardCounters() {
			res.GuardCounters[k] = v - counters0[k]
		}
		for _, ns := range res.Namespaces {
			secs, err := b.kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("listing Secrets in %s: %w", ns, err)
			}
			for _, s := range secs.Items {
				if s.Annotations[scrubber.AnnotationCertificateName] == "" {
					continue
				}
				res.Secrets++
				if k, ok := s.Data["tls.key"]; ok && len(k) == 0 {
					res.Scrubbed++
				}
			}
		}
	}
	return res, nil
}

// guardCounters reads the guard's decision and lookup counters.
func (b *bench) guardCounters() map[string]float64 {
	out := map[string]float64{}
	for _, d := range []string{"pass", "pass_rewritten", "veto", "fail_open"} {
		out["decision="+d], _ = gatherCounter(b.st.Registry, "keyward_guard_decisions_total", map[string]string{"decision": d})
	}
	for _, l := range []string{"primed", "cache_hit", "store", "stale", "error"} {
		out["lookup="+l], _ = gatherCounter(b.st.Registry, "keyward_guard_custody_lookups_total", map[string]string{"result": l})
	}
	return out
}

// selectorFollower follows, cluster-wide, the objects of newList's kind that
// carry the labels sel, delivering the initial list too.
func (b *bench) selectorFollower(newList func() client.ObjectList, sel client.MatchingLabels, onEvent func(watch.EventType, runtime.Object, time.Time)) follower {
	return follower{
		deliverList: true,
		list: func(ctx context.Context) (string, []runtime.Object, error) {
			l := newList()
			if err := b.c.List(ctx, l, sel); err != nil {
				return "", nil, err
			}
			objs, err := meta.ExtractList(l)
			if err != nil {
				return "", nil, err
			}
			return l.GetResourceVersion(), objs, nil
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			lo := &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}}
			sel.ApplyToList(lo)
			return b.c.Watch(ctx, newList(), lo)
		},
		onEvent: onEvent,
	}
}
