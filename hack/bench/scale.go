// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

// scaleNS prefixes the scale phase's namespaces.
const scaleNS = "bench-scale"

// memFigures is one reading of the Keyward process's memory.
type memFigures struct {
	// RSS and HWM are VmRSS and VmHWM from /proc/<pid>/status, in bytes.
	RSS, HWM int64
	// Heap figures and goroutines from the process's own /metrics.
	HeapInuse, HeapAlloc, Goroutines float64
}

// scaleResult is Keyward's footprint with many Certificates issued into custody.
type scaleResult struct {
	Certificates, Namespaces, Concurrency int
	// IssueWall: first Create → every Certificate Ready (watch).
	IssueWall time.Duration
	// Guard is the process's keyward_guard_admission_duration_seconds over
	// the issuance.
	Guard histogram
	// Empty: Keyward's process started and ready, before the Certificates.
	Empty memFigures
	// Loaded: every Certificate Ready, after a settle.
	Loaded memFigures
	// Restarted: a fresh process that listed every object at start.
	Restarted memFigures
	// RestartReady: process start → /readyz answered 200.
	RestartReady time.Duration
	Settle       time.Duration
	// Removed counts the issuance phase's objects deleted before the
	// phase. Requests and InCustody are the phase's CertificateRequests and
	// placeholder Secrets at the loaded reading.
	Removed, Requests, InCustody int
	// The first audit after the loaded reading: the process runs it every
	// AuditPeriod; AuditDuration is its time, AuditLists and AuditReads the
	// store calls it made, AuditPlaceholders what it checked.
	AuditPeriod       time.Duration
	AuditRuns         int
	AuditDuration     time.Duration
	AuditLists        float64
	AuditReads        float64
	AuditPlaceholders float64
}

// runScale replaces the in-process Keyward with the keyward binary (so its
// memory is its own), issues the Certificates with Keyward's issuer into
// custody namespaces (cert-manager in the harness, every key through the
// scrub webhook into Vault, every status write through the guard), and
// reads the process's memory before, after, and after a restart over the
// full population, and what one custody audit of it costs.
func (b *bench) runScale(ctx context.Context) (*scaleResult, error) {
	res := &scaleResult{
		Certificates: b.opts.ScaleCertificates, Namespaces: max(b.opts.ScaleNamespaces, 1),
		Concurrency: b.opts.CreateConcurrency, Settle: b.opts.ScaleSettle, AuditPeriod: b.st.Options().CustodyAuditPeriod,
	}
	// The issuance phase's Certificates, requests and Secrets would add to
	// Keyward's caches: remove them, so that the figures are for the
	// phase's population.
	var err error
	if res.Removed, err = b.removeIssuanceObjects(ctx); err != nil {
		return nil, err
	}
	if err := b.st.StopKeyward(); err != nil {
		return nil, fmt.Errorf("stopping the in-process keyward: %w", err)
	}
	p, _, err := startReady(ctx, b.st)
	if err != nil {
		return nil, err
	}
	defer func() { _ = p.Stop() }()
	time.Sleep(res.Settle)
	if res.Empty, err = readMem(ctx, p); err != nil {
		return nil, err
	}
	guardBefore, err := gatherHistogram(processGatherer(p), "keyward_guard_admission_duration_seconds", nil)
	if err != nil {
		return nil, err
	}
	fmt.Printf("scale: %d Certificates in %d namespaces…\n", res.Certificates, res.Namespaces)
	if err := b.issueScale(ctx, res); err != nil {
		return nil, err
	}
	fmt.Printf("  all Ready after %s\n", fmtD(res.IssueWall))
	guardAfter, err := gatherHistogram(processGatherer(p), "keyward_guard_admission_duration_seconds", nil)
	if err != nil {
		return nil, err
	}
	res.Guard = guardAfter.minus(guardBefore)
	time.Sleep(res.Settle)
	if res.Loaded, err = readMem(ctx, p); err != nil {
		return nil, err
	}
	if err := b.countScale(ctx, res); err != nil {
		return nil, fmt.Errorf("counting the scale phase's objects: %w", err)
	}
	if err := auditFigures(ctx, p, res); err != nil {
		return nil, fmt.Errorf("reading the custody audit's cost: %w", err)
	}

	if err := p.Stop(); err != nil {
		return nil, err
	}
	p2, ready, err := startReady(ctx, b.st)
	if err != nil {
		return nil, err
	}
	defer func() { _ = p2.Stop() }()
	res.RestartReady = ready
	time.Sleep(res.Settle)
	if res.Restarted, err = readMem(ctx, p2); err != nil {
		return nil, err
	}
	return res, nil
}

// startReady starts the keyward process and waits for /readyz.
func startReady(ctx context.Context, st *keyward.Stack) (*keyward.Process, time.Duration, error) {
	start := time.Now()
	p, err := st.StartKeywardProcess(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("starting keyward as a process: %w", err)
	}
	if err := framework.Poll(ctx, 2*time.Minute, "keyward /readyz", func(ctx context.Context) (bool, error) {
		code, _, err := httpGet(ctx, "http://"+p.HealthAddr+"/readyz")
		return err == nil && code == http.StatusOK, nil
	}); err != nil {
		_ = p.Stop()
		return nil, 0, err
	}
	return p, time.Since(start), nil
}

func httpGet(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// readMem reads the process's VmRSS/VmHWM and its Go heap metrics.
func readMem(ctx context.Context, p *keyward.Process) (memFigures, error) {
	var m memFigures
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return m, fmt.Errorf("reading keyward's memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			m.RSS = kb << 10
		case "VmHWM:":
			m.HWM = kb << 10
		}
	}
	code, body, err := httpGet(ctx, "http://"+p.MetricsAddr+"/metrics")
	if err != nil || code != http.StatusOK {
		return m, fmt.Errorf("scraping keyward's metrics (%d): %v", code, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.HeapInuse = v
		case "go_memstats_heap_alloc_bytes":
			m.HeapAlloc = v
		case "go_goroutines":
			m.Goroutines = v
		}
	}
	return m, nil
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }

func (m memFigures) describe() string {
	return fmt.Sprintf("RSS %s (peak %s), heap in use %s, heap allocated %s, %.0f goroutines",
		mib(float64(m.RSS)), mib(float64(m.HWM)), mib(m.HeapInuse), mib(m.HeapAlloc), m.Goroutines)
}

// removeIssuanceObjects deletes the Certificates, CertificateRequests and
// Secrets of the issuance namespaces and returns how many there were.
func (b *bench) removeIssuanceObjects(ctx context.Context) (int, error) {
	n := 0
	for ns := range b.issuanceNamespaces {
		for _, l := range []client.ObjectList{&cmapi.CertificateList{}, &cmapi.CertificateRequestList{}, &corev1.SecretList{}} {
			if err := b.c.List(ctx, l, client.InNamespace(ns)); err != nil {
				return n, fmt.Errorf("listing in %s: %w", ns, err)
			}
			n += meta.LenList(l)
		}
		for _, o := range []client.Object{&cmapi.Certificate{}, &cmapi.CertificateRequest{}, &corev1.Secret{}} {
			if err := b.c.DeleteAllOf(ctx, o, client.InNamespace(ns)); err != nil {
				return n, fmt.Errorf("deleting %T in %s: %w", o, ns, err)
			}
		}
	}
	return n, nil
}
