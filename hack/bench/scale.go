// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	// RSS and HWM are VmRSS and VmHWM from /proc/<pid>/status, in bytes;
	// RSS is RssAnon (heap, stacks) plus RssFile (the binary's pages).
	RSS, HWM, RssAnon, RssFile int64
	// Heap figures, goroutines and the Go runtime's soft memory limit
	// (go_gc_gomemlimit_bytes) from the process's own /metrics.
	HeapInuse, HeapAlloc, Goroutines, GoMemLimit float64
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
	// MemoryLimit says how the process's memory was limited (a cgroup as
	// the chart's container limit, or GOMEMLIMIT when no cgroup could be
	// made); CgroupPeak is that cgroup's peak use at the loaded reading.
	MemoryLimit string
	CgroupPeak  int64
	// HeapProfile is `go tool pprof -top` of the loaded process's live heap
	// (/debug/pprof/heap after a GC), saved as HeapProfilePath.
	HeapProfile, HeapProfilePath string
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
	cg, err := b.limitProcessMemory(res)
	if err != nil {
		return nil, err
	}
	if cg != nil {
		// Registered before the processes start, so it runs after they stop.
		defer func() {
			b.st.ProcessCgroup = ""
			if err := cg.remove(); err != nil {
				fmt.Printf("warning: removing %s: %v\n", cg.dir, err)
			}
		}()
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
	if cg != nil {
		if res.CgroupPeak, err = cg.peak(); err != nil {
			return nil, fmt.Errorf("reading the cgroup's peak: %w", err)
		}
	}
	if res.HeapProfilePath, res.HeapProfile, err = heapProfile(ctx, p, b.st.Dir); err != nil {
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

// limitProcessMemory limits the keyward processes' memory as the chart's
// container does (-scale-memory-limit-mib): in a memory cgroup with that
// limit, from which the process sets its Go memory limit itself
// (--memory-limit-ratio), or, when no cgroup can be made (not root), with
// the GOMEMLIMIT the process would have derived. It returns the cgroup, if
// any, for the caller to remove.
func (b *bench) limitProcessMemory(res *scaleResult) (*memCgroup, error) {
	mibs := b.opts.ScaleMemoryLimitMiB
	if mibs <= 0 {
		res.MemoryLimit = "none (-scale-memory-limit-mib 0)"
		return nil, nil
	}
	limit := int64(mibs) << 20
	cg, err := newMemCgroup(limit)
	if err != nil {
		ratio := b.st.Options().MemoryLimitRatio
		b.st.ProcessEnv = []string{"GOMEMLIMIT=" + strconv.FormatInt(int64(float64(limit)*ratio), 10)}
		res.MemoryLimit = fmt.Sprintf("GOMEMLIMIT %s, which the process derives from a %d MiB container limit (--memory-limit-ratio %v); no cgroup limit, as none could be made (%v)",
			mib(float64(limit)*ratio), mibs, ratio, err)
		return nil, nil
	}
	b.st.ProcessCgroup = cg.dir
	res.MemoryLimit = fmt.Sprintf("a memory cgroup limited to %d MiB (%s), as the chart's container; the process set its Go memory limit from it (--memory-limit-ratio %v)",
		mibs, cg.describe(), b.st.Options().MemoryLimitRatio)
	return cg, nil
}

// heapProfile saves the process's heap profile (taken after a GC, so
// in-use figures are live objects) into dir and returns its path and the
// top of its in-use space, cumulative, by function.
func heapProfile(ctx context.Context, p *keyward.Process, dir string) (string, string, error) {
	code, body, err := httpGet(ctx, "http://"+p.PprofAddr+"/debug/pprof/heap?gc=1")
	if err != nil || code != http.StatusOK {
		return "", "", fmt.Errorf("reading keyward's heap profile (%d): %v", code, err)
	}
	path := filepath.Join(dir, "keyward-scale-heap.pprof")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return "", "", err
	}
	args := []string{"tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=30", path}
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return path, fmt.Sprintf("$ go %s\n%s", strings.Join(args, " "), out), nil
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
	if p.Exited() {
		return m, fmt.Errorf("the keyward process ended (%v); see %s (under a memory limit, \"signal: killed\" is the OOM killer)", p.ExitError(), p.LogPath)
	}
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
		case "RssAnon:":
			m.RssAnon = kb << 10
		case "RssFile:":
			m.RssFile = kb << 10
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
		case "go_gc_gomemlimit_bytes":
			m.GoMemLimit = v
		}
	}
	return m, nil
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }

func (m memFigures) describe() string {
	limit := "none"
	if m.GoMemLimit > 0 && m.GoMemLimit < math.MaxInt64 {
		limit = mib(m.GoMemLimit)
	}
	return fmt.Sprintf("RSS %s (anonymous %s, file %s; peak %s), heap in use %s, heap allocated %s, %.0f goroutines, Go memory limit %s",
		mib(float64(m.RSS)), mib(float64(m.RssAnon)), mib(float64(m.RssFile)), mib(float64(m.HWM)), mib(m.HeapInuse), mib(m.HeapAlloc), m.Goroutines, limit)
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
