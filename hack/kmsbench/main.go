// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Command kmsbench measures what encryption at rest through `keyward kms`
// costs the kube-apiserver: Secret create and get latency (p50, p99) on a
// stack without encryption and on one with the KMS v2 plugin, in the same
// run; the plugin's Vault Transit calls per 1,000 Secret writes; and the
// plugin's resident memory. `make bench` runs it.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyward-io/keyward/e2e/framework"
)

type arm struct {
	name             string
	create, get      []time.Duration
	encrypt, decrypt float64
	total            map[string]float64 // calls since the plugin started, by op
	rssKiB           int
}

func main() {
	n := flag.Int("n", 1000, "Secrets written and read per arm")
	workers := flag.Int("workers", 8, "concurrent requests")
	size := flag.Int("size", 2048, "bytes of data per Secret (about a PEM key and certificate)")
	flag.Parse()
	if err := run(*n, *workers, *size); err != nil {
		fmt.Fprintln(os.Stderr, "kmsbench:", err)
		os.Exit(1)
	}
}

func run(n, workers, size int) error {
	ctx := context.Background()
	var arms []*arm
	for _, kms := range []bool{false, true} {
		name := "plaintext etcd"
		if kms {
			name = "keyward kms"
		}
		a, err := measure(ctx, name, kms, n, workers, size)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		arms = append(arms, a)
	}
	report(arms, n, workers, size)
	return nil
}

func measure(ctx context.Context, name string, kms bool, n, workers, size int) (*arm, error) {
	env, err := framework.Start(ctx, framework.Options{Name: "kmsbench", WithoutCertManager: true, KMS: kms})
	if err != nil {
		return nil, err
	}
	defer env.Stop()
	cfg := rest.CopyConfig(env.RESTConfig)
	cfg.QPS, cfg.Burst = 1000, 2000
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := env.CreateNamespace(ctx, "bench", nil); err != nil {
		return nil, err
	}
	data := make([]byte, size)
	_, _ = rand.Read(data)
	// Warm up connections and the DEK (one write and read, not measured).
	if _, err := kc.CoreV1().Secrets("bench").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "warm"}, Data: map[string][]byte{"d": data}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	a := &arm{name: name}
	var before map[string]float64
	if kms {
		before = pluginCounters(env.KMS.MetricsURL)
	}
	if a.create, err = timed(n, workers, func(i int) error {
		_, err := kc.CoreV1().Secrets("bench").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s-" + strconv.Itoa(i)}, Data: map[string][]byte{"d": data}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	if a.get, err = timed(n, workers, func(i int) error {
		_, err := kc.CoreV1().Secrets("bench").Get(ctx, "s-"+strconv.Itoa(i), metav1.GetOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	if kms {
		after := pluginCounters(env.KMS.MetricsURL)
		a.total = after
		a.encrypt = after["encrypt"] - before["encrypt"]
		a.decrypt = after["decrypt"] - before["decrypt"]
		a.rssKiB = rssKiB(env.KMS.Pid())
	}
	return a, nil
}

// timed runs f(0..n-1) on workers goroutines and returns each call's latency.
func timed(n, workers int, f func(int) error) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				start := time.Now()
				if err := f(i); err != nil {
					errs <- err
					return
				}
				lat[i] = time.Since(start)
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			return nil, err
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	slices.Sort(lat)
	return lat, nil
}

// pluginCounters sums keyward_kms_requests_total by op from the plugin's /metrics.
func pluginCounters(url string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "keyward_kms_requests_total{") {
			continue
		}
		op := between(line, `op="`, `"`)
		f, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		out[op] += f
	}
	return out
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}
	return 0
}

func pct(d []time.Duration, p float64) time.Duration {
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func report(arms []*arm, n, workers, size int) {
	base, kms := arms[0], arms[1]
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	ratio := func(a, b time.Duration) string { return fmt.Sprintf("%.2f", float64(b)/float64(a)) }
	fmt.Printf("\nkmsbench: %d Secrets of %d bytes per arm, %d concurrent requests, one run (go run ./hack/kmsbench -n %d)\n\n", n, size, workers, n)
	fmt.Println("| | plaintext etcd | keyward kms | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| Secret create p50 | %s | %s | %s |\n", ms(pct(base.create, .5)), ms(pct(kms.create, .5)), ratio(pct(base.create, .5), pct(kms.create, .5)))
	fmt.Printf("| Secret create p99 | %s | %s | %s |\n", ms(pct(base.create, .99)), ms(pct(kms.create, .99)), ratio(pct(base.create, .99), pct(kms.create, .99)))
	fmt.Printf("| Secret get p50 | %s | %s | %s |\n", ms(pct(base.get, .5)), ms(pct(kms.get, .5)), ratio(pct(base.get, .5), pct(kms.get, .5)))
	fmt.Printf("| Secret get p99 | %s | %s | %s |\n", ms(pct(base.get, .99)), ms(pct(kms.get, .99)), ratio(pct(base.get, .99), pct(kms.get, .99)))
	fmt.Printf("\nPlugin calls (each one or two Vault Transit calls) during the %d writes and %d reads: %.0f encrypt, %.0f decrypt (%.1f per 1,000 writes);\n"+
		"since the plugin started (apiserver start, the test harness's own DEK, status checks): %.0f encrypt, %.0f decrypt, %.0f status. Plugin RSS %.1f MiB.\n",
		n, n, kms.encrypt, kms.decrypt, 1000*(kms.encrypt+kms.decrypt)/float64(n),
		kms.total["encrypt"], kms.total["decrypt"], kms.total["status"], float64(kms.rssKiB)/1024)
}
