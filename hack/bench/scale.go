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
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

// scaleNS holds the scale phase's custody Secrets.
const scaleNS = "bench-scale"

// memFigures is one reading of the Keyward process's memory.
type memFigures struct {
	// RSS and HWM are VmRSS and VmHWM from /proc/<pid>/status, in bytes.
	RSS, HWM int64
	// Heap figures and goroutines from the process's own /metrics.
	HeapInuse, HeapAlloc, Goroutines float64
}

// scaleResult is Keyward's footprint with many Secrets in custody.
type scaleResult struct {
	Secrets, Concurrency int
	// Scrubbed counts Creates that came back as webhook placeholders.
	Scrubbed int
	// CreateWall is the time to create all Secrets through the webhook.
	CreateWall time.Duration
	// Empty: Keyward's process started and ready, before the Secrets.
	Empty memFigures
	// Loaded: after the Secrets were created and a settle.
	Loaded memFigures
	// Restarted: a fresh process that listed every Secret at start.
	Restarted memFigures
	// RestartReady: process start → /readyz answered 200.
	RestartReady time.Duration
	Settle       time.Duration
	// Removed counts the issuance phase's objects deleted before the
	// phase; InCustody is the number of custody placeholder Secrets in the
	// cluster at the loaded reading (the phase's own plus what the scrub
	// and watcher phases left).
	Removed   int
	InCustody int
}

// runScale replaces the in-process Keyward with the keyward binary (so its
// memory is its own), creates the Secrets through the real scrub webhook
// (custody record in Vault, placeholder in etcd), and reads the process's
// memory before, after, and after a restart over the full population.
// Certificates are not created: cert-manager's issuance of 10,000
// Certificates does not fit the harness's time on this machine, and
// Keyward's caches hold Secrets (every TLS Secret) and CertificateRequests.
func (b *bench) runScale(ctx context.Context) (*scaleResult, error) {
	res := &scaleResult{Secrets: b.opts.ScaleSecrets, Concurrency: 16, Settle: 15 * time.Second}
	pairs := make([]keyPair, res.Secrets)
	for i := range pairs {
		var err error
		if pairs[i], err = newKeyPair(fmt.Sprintf("x%05d", i)); err != nil {
			return nil, err
		}
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
	if err := b.st.CreateNamespace(ctx, scaleNS, map[string]string{custody.NamespaceLabelCustody: "enabled"}); err != nil {
		return nil, err
	}

	start := time.Now()
	sem := make(chan struct{}, res.Concurrency)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i, kp := range pairs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, kp keyPair) {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("x%05d", i)
			got, err := b.kube.CoreV1().Secrets(scaleNS).Create(ctx, tlsSecret(scaleNS, name, kp), metav1.CreateOptions{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && firstErr == nil:
				firstErr = fmt.Errorf("creating Secret %s/%s: %w", scaleNS, name, err)
			case err == nil && len(got.Data[corev1.TLSPrivateKeyKey]) == 0:
				res.Scrubbed++
			}
		}(i, kp)
	}
	wg.Wait()
	res.CreateWall = time.Since(start)
	if firstErr != nil {
		return nil, firstErr
	}
	time.Sleep(res.Settle)
	if res.Loaded, err = readMem(ctx, p); err != nil {
		return nil, err
	}
	var held corev1.SecretList
	if err := b.c.List(ctx, &held, client.MatchingLabels{custody.LabelCustody: custody.LabelCustodyVault}); err != nil {
		return nil, fmt.Errorf("counting custody Secrets: %w", err)
	}
	res.InCustody = len(held.Items)

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
