// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// scaleLabel marks the scale phase's Certificates.
const scaleLabel = "bench.keyward.io/scale"

// processGatherer reads a keyward process's /metrics as a prometheus.Gatherer.
func processGatherer(p *keyward.Process) prometheus.Gatherer {
	return textGatherer("keyward", func(ctx context.Context) ([]byte, error) {
		code, body, err := httpGet(ctx, "http://"+p.MetricsAddr+"/metrics")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d", code)
		}
		return body, err
	})
}

// textGatherer is a prometheus.Gatherer over a Prometheus text exposition
// that fetch returns (of the component named what).
func textGatherer(what string, fetch func(context.Context) ([]byte, error)) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		body, err := fetch(ctx)
		if err != nil {
			return nil, fmt.Errorf("scraping %s's metrics: %w", what, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			return nil, fmt.Errorf("parsing %s's metrics: %w", what, err)
		}
		out := make([]*dto.MetricFamily, 0, len(mfs))
		for _, mf := range mfs {
			out = append(out, mf)
		}
		return out, nil
	})
}

func gatherGauge(reg prometheus.Gatherer, name string) (float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 && mf.GetMetric()[0].GetGauge() != nil {
			return mf.GetMetric()[0].GetGauge().GetValue(), nil
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// issueScale creates res.Certificates Certificates with Keyward's issuer,
// spread over res.Namespaces custody namespaces, and waits (watch) until
// every one is Ready.
func (b *bench) issueScale(ctx context.Context, res *scaleResult) error {
	ref := cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "VaultClusterIssuer", Name: keywardIssuerName}
	for i := range res.Namespaces {
		if err := b.st.CreateNamespace(ctx, fmt.Sprintf("%s-%d", scaleNS, i), map[string]string{custody.NamespaceLabelCustody: "enabled"}); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	ready := map[string]bool{}
	allReady := make(chan struct{})
	var once sync.Once
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done, err := b.selectorFollower(func() client.ObjectList { return &cmapi.CertificateList{} }, client.MatchingLabels{scaleLabel: "true"},
		func(_ watch.EventType, obj runtime.Object, _ time.Time) {
			crt, ok := obj.(*cmapi.Certificate)
			if !ok || !apiutil.CertificateHasCondition(crt, cmapi.CertificateCondition{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue}) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ready[crt.Namespace+"/"+crt.Name] = true; len(ready) == res.Certificates {
				once.Do(func() { close(allReady) })
			}
		}).start(wctx)
	if err != nil {
		return err
	}
	defer func() { stop(); <-done }()

	start := time.Now()
	if err := b.createScaleCertificates(ctx, res, ref); err != nil {
		return err
	}
	select {
	case <-allReady:
		res.IssueWall = time.Since(start)
		return nil
	case <-time.After(b.opts.ScaleTimeout):
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("scale: %d of %d Certificates Ready after %s", len(ready), res.Certificates, b.opts.ScaleTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bench) createScaleCertificates(ctx context.Context, res *scaleResult, ref cmmeta.IssuerReference) error {
	sem := make(chan struct{}, res.Concurrency)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i := range res.Certificates {
		ns := fmt.Sprintf("%s-%d", scaleNS, i%res.Namespaces)
		name := fmt.Sprintf("s%05d", i)
		crt := &cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{scaleLabel: "true"}},
			Spec: cmapi.CertificateSpec{
				SecretName: name + "-tls",
				DNSNames:   []string{name + "." + ns + ".example.com"},
				Duration:   &metav1.Duration{Duration: 24 * time.Hour},
				IssuerRef:  ref,
				PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmapi.RotationPolicyAlways},
			},
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := b.c.Create(ctx, crt); err != nil {
				mu.Lock()
				defer mu.Unlock()
				if firstErr == nil {
					firstErr = fmt.Errorf("creating Certificate %s/%s: %w", ns, name, err)
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// countScale counts the scale phase's Certificates, CertificateRequests and
// placeholder Secrets.
func (b *bench) countScale(ctx context.Context, res *scaleResult) error {
	for i := range res.Namespaces {
		ns := client.InNamespace(fmt.Sprintf("%s-%d", scaleNS, i))
		var crs cmapi.CertificateRequestList
		if err := b.c.List(ctx, &crs, ns); err != nil {
			return err
		}
		var secs corev1.SecretList
		if err := b.c.List(ctx, &secs, ns, client.MatchingLabels{custody.LabelCustody: custody.LabelCustodyVault}); err != nil {
			return err
		}
		res.Requests += len(crs.Items)
		for i := range secs.Items {
			if _, ok := custody.ParsePlaceholder(&secs.Items[i]); ok && len(secs.Items[i].Data[corev1.TLSPrivateKeyKey]) == 0 {
				res.InCustody++
			}
		}
	}
	return nil
}

// auditFigures reads what one whole custody audit of the keyward process
// cost: it waits for the end of an audit, so that the store calls counted
// from there to the end of the next one are that next audit's alone (an
// audit already running at the first reading would be counted in part).
func auditFigures(ctx context.Context, p *keyward.Process, res *scaleResult) error {
	reg := processGatherer(p)
	before, err := nextAudit(ctx, reg, res.AuditPeriod)
	if err != nil {
		return err
	}
	calls := func() (map[string]float64, error) {
		out := map[string]float64{}
		for _, c := range []string{"list", "metadata"} {
			v, err := gatherCounter(reg, "keyward_custody_audit_store_calls_total", map[string]string{"call": c})
			if err != nil {
				return nil, err
			}
			out[c] = v
		}
		return out, nil
	}
	callsBefore, err := calls()
	if err != nil {
		return err
	}
	after, err := nextAudit(ctx, reg, res.AuditPeriod)
	if err != nil {
		return err
	}
	callsAfter, err := calls()
	if err != nil {
		return err
	}
	d := after.minus(before)
	res.AuditRuns = int(d.Count)
	res.AuditDuration = time.Duration(d.Sum / float64(d.Count) * float64(time.Second))
	res.AuditLists = callsAfter["list"] - callsBefore["list"]
	res.AuditReads = callsAfter["metadata"] - callsBefore["metadata"]
	res.AuditPlaceholders, err = gatherGauge(reg, "keyward_custody_audit_placeholders")
	return err
}

// nextAudit waits for the end of the process's next custody audit and
// returns the audit-duration histogram then. The audit runs on its own
// ticker: this polls the process's metrics once a second (a measurement,
// not a synchronisation between components under test).
func nextAudit(ctx context.Context, reg prometheus.Gatherer, period time.Duration) (histogram, error) {
	before, err := gatherHistogram(reg, "keyward_custody_audit_duration_seconds", nil)
	if err != nil {
		return histogram{}, err
	}
	var after histogram
	err = framework.Poll(ctx, 3*period, "the next custody audit", func(context.Context) (bool, error) {
		after, err = gatherHistogram(reg, "keyward_custody_audit_duration_seconds", nil)
		return err == nil && after.Count > before.Count, err
	})
	return after, err
}
