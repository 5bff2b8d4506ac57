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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/scrubber"
)

const (
	baselineIssuerName = "bench-baseline"
	keywardIssuerName  = "bench-keyward"
)

// issuanceResult is one round of one arm.
type issuanceResult struct {
	Arm       string // "a" (baseline) or "b" (keyward)
	Round     int
	Namespace string
	Wall      time.Duration // first Create call → last Ready seen by the watch
	// APILatency: creationTimestamp → Ready condition lastTransitionTime, per
	// certificate. Both are RFC 3339 seconds, so the resolution is 1 s.
	APILatency sample
	// WatchLatency: Create returned → the watch delivered Ready=True.
	WatchLatency sample
	// Guard and Sign are Keyward's own histograms over this arm (b only).
	Guard, Sign, Scrub histogram
	// CPU is the CPU time each process consumed during the arm.
	CPU map[string]time.Duration
	// Requests counts kube-apiserver requests during the arm, by "VERB resource[/subresource]".
	Requests map[string]float64
	// Scrubbed counts Secrets with an empty tls.key after the arm (b only).
	Scrubbed, Secrets int
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
	switch arm {
	case "a":
		res.Namespace = fmt.Sprintf("bench-baseline-r%d", round)
		ref = cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: baselineIssuerName}
	case "b":
		res.Namespace = fmt.Sprintf("bench-custody-r%d", round)
		ref = cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "VaultClusterIssuer", Name: keywardIssuerName}
		labels[scrubber.NamespaceLabelCustody] = "enabled"
	}
	if err := b.st.CreateNamespace(ctx, res.Namespace, labels); err != nil {
		return nil, err
	}
	b.issuanceNamespaces[res.Namespace] = arm

	var mu sync.Mutex
	created := map[string]time.Time{}
	readySeen := map[string]time.Time{}
	apiLatency := map[string]time.Duration{}
	allReady := make(chan struct{})
	var closeOnce sync.Once
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done, err := follower{
		deliverList: true,
		list: func(ctx context.Context) (string, []runtime.Object, error) {
			var l cmapi.CertificateList
			if err := b.c.List(ctx, &l, client.InNamespace(res.Namespace)); err != nil {
				return "", nil, err
			}
			objs := make([]runtime.Object, len(l.Items))
			for i := range l.Items {
				objs[i] = &l.Items[i]
			}
			return l.ResourceVersion, objs, nil
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			return b.c.Watch(ctx, &cmapi.CertificateList{}, &client.ListOptions{Namespace: res.Namespace, Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		},
		onEvent: func(_ watch.EventType, obj runtime.Object, at time.Time) {
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
			if _, seen := readySeen[crt.Name]; seen {
				return
			}
			readySeen[crt.Name] = at
			if cond.LastTransitionTime != nil {
				apiLatency[crt.Name] = cond.LastTransitionTime.Sub(crt.CreationTimestamp.Time)
			}
			if len(readySeen) == b.opts.N {
				closeOnce.Do(func() { close(allReady) })
			}
		},
	}.start(wctx)
	if err != nil {
		return nil, fmt.Errorf("watching Certificates in %s: %w", res.Namespace, err)
	}

	var before, sign0, scrub0 histogram
	if arm == "b" {
		before, _ = gatherHistogram(b.st.Registry, "keyward_guard_admission_duration_seconds", nil)
		sign0, _ = gatherHistogram(b.st.Registry, "keyward_issuer_sign_duration_seconds", nil)
		scrub0, _ = gatherHistogram(b.st.Registry, "keyward_scrub_duration_seconds", map[string]string{"path": scrubber.ByWebhook})
	}

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
			crt := &cmapi.Certificate{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: res.Namespace},
				Spec: cmapi.CertificateSpec{
					SecretName: name + "-tls",
					DNSNames:   []string{fmt.Sprintf("%s.%s.example.com", name, res.Namespace)},
					Duration:   &metav1.Duration{Duration: 24 * time.Hour},
					PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmapi.RotationPolicyAlways},
					IssuerRef:  ref,
				},
			}
			if err := b.c.Create(ctx, crt); err != nil {
				errs <- fmt.Errorf("creating Certificate %s/%s: %w", res.Namespace, name, err)
				return
			}
			mu.Lock()
			created[name] = time.Now()
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
	stop()
	<-done

	if arm == "b" {
		after, _ := gatherHistogram(b.st.Registry, "keyward_guard_admission_duration_seconds", nil)
		res.Guard = after.minus(before)
		sign1, _ := gatherHistogram(b.st.Registry, "keyward_issuer_sign_duration_seconds", nil)
		res.Sign = sign1.minus(sign0)
		scrub1, _ := gatherHistogram(b.st.Registry, "keyward_scrub_duration_seconds", map[string]string{"path": scrubber.ByWebhook})
		res.Scrub = scrub1.minus(scrub0)
		secs, err := b.kube.CoreV1().Secrets(res.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing Secrets in %s: %w", res.Namespace, err)
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
	return res, nil
}
