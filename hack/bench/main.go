// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Command bench measures Keyward against cert-manager's built-in Vault issuer
// on one real stack (etcd, kube-apiserver, Vault dev server, cert-manager's
// controllers and Keyward in-process) and writes the figures to a Markdown
// report:
//
//	go run ./hack/bench [-n 100] [-quiet 60s] [-out docs/benchmarks.md]
//
// Phases, in order: issuance (baseline a, Keyward b, a, b), steady state
// (quiet period), scrub cost (Secret Create with and without custody next to
// a bare Vault KV write), watcher exposure (scrub webhook down, fail open),
// and the guard decision micro-benchmark. Nothing is asserted: every figure
// is printed with what was measured and how.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

type options struct {
	N                  int
	Rounds             int
	Quiet              time.Duration
	Settle             time.Duration
	Out                string
	ScrubSecrets       int
	WatcherSecrets     int
	WatcherConcurrency int
	WatcherSingle      int
	FloorRounds        int
	ArmOrder           string
	ScaleCertificates  int
	ScaleNamespaces    int
	CreateConcurrency  int
	// Namespaces: the namespace counts issuance rounds cycle through
	// (round r uses Namespaces[(r-1) % len]).
	Namespaces     intList
	WatcherWorkers int
	AuditPeriod    time.Duration
	PhaseTimeout   time.Duration
	IdleLimit      time.Duration
	ScaleTimeout   time.Duration
	ScaleSettle    time.Duration
	// ScaleMemoryLimitMiB limits the scale phase's keyward process (0: no limit).
	ScaleMemoryLimitMiB int
	CPUProfile          string
	SkipGoBench         bool
}

// bench holds the running stack and what the phases share.
type bench struct {
	opts options
	st   *keyward.Stack
	c    client.WithWatch
	kube kubernetes.Interface
	// issuanceNamespaces maps each issuance namespace to its arm (a or b).
	issuanceNamespaces map[string]string
	savedScrubWebhook  *admissionv1.MutatingWebhook
}

func main() {
	var o options
	flag.IntVar(&o.N, "n", 100, "Certificates per issuance arm and round")
	flag.IntVar(&o.Rounds, "rounds", 2, "issuance rounds (each runs baseline a, then Keyward b)")
	flag.DurationVar(&o.Quiet, "quiet", 60*time.Second, "steady-state quiet period after issuance")
	flag.DurationVar(&o.Settle, "settle", 10*time.Second, "pause between the last Ready and the start of the quiet period")
	flag.StringVar(&o.Out, "out", "docs/benchmarks.md", "Markdown report path (relative to the repository root); empty: stdout only")
	flag.IntVar(&o.ScrubSecrets, "scrub-secrets", 200, "Secrets per arm in the scrub-cost phase")
	flag.IntVar(&o.WatcherSecrets, "watcher-secrets", 200, "key-bearing Secrets in the watcher-exposure phase")
	flag.IntVar(&o.WatcherConcurrency, "watcher-concurrency", 8, "concurrent Creates in the watcher-exposure phase")
	flag.DurationVar(&o.AuditPeriod, "audit-period", 30*time.Second, "Keyward's --custody-audit-period (shorter than the quiet period, so that the quiet period holds audits)")
	flag.IntVar(&o.WatcherWorkers, "watcher-workers", 0, "Keyward's --custody-watcher-workers (0: Keyward's default)")
	flag.StringVar(&o.ArmOrder, "arm-order", "ab", "issuance arm order: ab (baseline first in every round) or alternate (the order flips between successive rounds of the same -namespaces layout, baseline first in the first)")
	flag.IntVar(&o.FloorRounds, "floor-rounds", 5, "paired rounds after the watcher floor: Keyward's burst and the Vault floor's burst back to back, alternating order (0 skips them)")
	flag.IntVar(&o.WatcherSingle, "watcher-single", 50, "key-bearing Secrets created one at a time (each after the previous was scrubbed) in the watcher-exposure phase")
	flag.IntVar(&o.ScaleCertificates, "scale-certificates", 10000, "Certificates issued into custody in the scale phase, with Keyward as its own process (0 skips the phase)")
	flag.IntVar(&o.ScaleNamespaces, "scale-namespaces", 100, "custody namespaces the scale phase's Certificates are spread over")
	flag.IntVar(&o.CreateConcurrency, "create-concurrency", 100, "concurrent Certificate Creates in the issuance phase")
	o.Namespaces = intList{1}
	flag.Var(&o.Namespaces, "namespaces", "namespaces each issuance arm's Certificates are spread over, a comma-separated list that rounds cycle through (e.g. -rounds 2 -namespaces 1,10); cert-manager's handlers scan a namespace's objects per event")
	flag.DurationVar(&o.PhaseTimeout, "phase-timeout", 15*time.Minute, "limit for each phase to complete")
	flag.DurationVar(&o.IdleLimit, "idle-limit", 10*time.Minute, "longest wait, before each issuance arm and the scrub and watcher phases, for the stack to go idle (all processes under a quarter of a CPU over 2 s)")
	flag.DurationVar(&o.ScaleSettle, "scale-settle", 15*time.Second, "pause before each memory reading of the scale phase")
	flag.IntVar(&o.ScaleMemoryLimitMiB, "scale-memory-limit-mib", 256, "memory limit of the scale phase's keyward process, in MiB, as the chart's default resources.limits.memory (a memory cgroup when one can be made, else GOMEMLIMIT; 0: none)")
	flag.DurationVar(&o.ScaleTimeout, "scale-timeout", 40*time.Minute, "limit for the scale phase's Certificates to be Ready")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of each issuance arm (cert-manager, Keyward, harness: all in-process) to <prefix>-<arm>-r<round>.pprof")
	flag.BoolVar(&o.SkipGoBench, "skip-go-bench", false, "do not run BenchmarkDecideGuard")
	flag.Parse()
	if o.ArmOrder != "ab" && o.ArmOrder != "alternate" {
		fmt.Fprintf(os.Stderr, "bench: -arm-order %q: want ab or alternate\n", o.ArmOrder)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	rep := &report{Opts: o, Command: commandLine(), Started: time.Now().UTC()}
	rep.Machine = machineInfo()
	rep.LoadBefore = loadAvg()

	startCtx, startCancel := context.WithTimeout(ctx, 3*time.Minute)
	// Without encryption at rest, as the figures in docs/benchmarks.md were
	// measured: both arms would pay it alike.
	st, err := keyward.StartStack(startCtx, keyward.StackOptions{Framework: framework.Options{Name: "bench"}, PlaintextEtcd: true, Options: func(ko *app.Options) {
		if o.WatcherWorkers > 0 {
			ko.CustodyWatcherWorkers = o.WatcherWorkers
		}
		if o.AuditPeriod > 0 {
			ko.CustodyAuditPeriod = o.AuditPeriod
		}
	}})
	startCancel()
	if err != nil {
		return fmt.Errorf("starting stack: %w", err)
	}
	defer st.Stop()
	fmt.Printf("stack up; component logs in %s\n", st.Dir)
	rep.Artifacts = st.Dir
	rep.AuditPeriod = st.Options().CustodyAuditPeriod

	// The harness's own clients: a copy of the admin config without
	// client-side rate limiting, so the harness is never the bottleneck.
	cfg := rest.CopyConfig(st.RESTConfig)
	cfg.QPS, cfg.Burst = 1000, 2000
	// The apiserver warns about every placeholder Secret (empty tls.key);
	// that is the point of custody, not news.
	cfg.WarningHandler = rest.NoWarnings{}
	b := &bench{opts: o, st: st, issuanceNamespaces: map[string]string{}}
	if b.c, err = client.NewWithWatch(cfg, client.Options{Scheme: st.Scheme}); err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	if b.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("creating clientset: %w", err)
	}
	rep.Versions = b.versions(ctx)

	if err := b.createIssuers(ctx); err != nil {
		return err
	}
	for r := 1; r <= o.Rounds; r++ {
		for _, arm := range o.arms(r) {
			fmt.Printf("issuance: arm %s round %d, %d Certificates…\n", arm, r, o.N)
			if err := b.idle(ctx, rep, fmt.Sprintf("arm %s, %s", arm, rep.roundName(r))); err != nil {
				return err
			}
			stopProfile, err := startProfile(o.CPUProfile, arm, r)
			if err != nil {
				return err
			}
			stopAPIProfile := func() error { return nil }
			if o.CPUProfile != "" {
				stopAPIProfile = startAPIServerProfile(ctx, b.kube, profilePath(o.CPUProfile+"-apiserver", arm, r))
			}
			res, err := b.runIssuance(ctx, arm, r)
			stopProfile()
			if perr := stopAPIProfile(); perr != nil {
				rep.Notes = append(rep.Notes, perr.Error())
			}
			if err != nil {
				return err
			}
			fmt.Printf("  wall %s, p50 %s, p99 %s (create → Ready seen)\n", fmtD(res.Wall), fmtD(res.WatchLatency.quantile(0.5)), fmtD(res.WatchLatency.quantile(0.99)))
			rep.Issuance = append(rep.Issuance, res)
		}
	}

	fmt.Printf("steady state: settle %s, then quiet %s…\n", o.Settle, o.Quiet)
	time.Sleep(o.Settle)
	if rep.Steady, err = b.runSteady(ctx); err != nil {
		return err
	}
	fmt.Printf("  keyward vault requests %d, custody-namespace writes %d\n", rep.Steady.Vault["keyward"], rep.Steady.CustodyWrites)

	fmt.Printf("scrub cost: %d Secrets per arm…\n", o.ScrubSecrets)
	if err := b.idle(ctx, rep, "the scrub-cost phase"); err != nil {
		return err
	}
	stopPhase, err := b.startPhaseProfile(ctx, rep, "scrub")
	if err != nil {
		return err
	}
	rep.Scrub, err = b.runScrubCost(ctx)
	stopPhase()
	if err != nil {
		return err
	}
	fmt.Printf("watcher exposure: %d Secrets, webhook down…\n", o.WatcherSecrets)
	if err := b.idle(ctx, rep, "the watcher phase"); err != nil {
		return err
	}
	if stopPhase, err = b.startPhaseProfile(ctx, rep, "watcher"); err != nil {
		return err
	}
	rep.Watcher, err = b.runWatcher(ctx)
	stopPhase()
	if err != nil {
		return err
	}
	fmt.Println("watcher floor: the same burst with a bare remover…")
	err = b.runWatcherFloors(ctx, rep, rep.Watcher)
	if rerr := b.setScrubWebhook(context.WithoutCancel(ctx), false); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	rep.PeakRSS = peakRSS()
	if o.ScaleCertificates > 0 {
		fmt.Println("scale: Keyward as its own process…")
		if rep.Scale, err = b.runScale(ctx); err != nil {
			return err
		}
		fmt.Printf("  loaded: %s\n", rep.Scale.Loaded.describe())
	}
	for _, err := range st.CertManagerErrors() {
		rep.Notes = append(rep.Notes, "cert-manager controller error: "+err.Error())
	}
	st.Stop()
	rep.LoadAfter = loadAvg()

	if !o.SkipGoBench {
		fmt.Println("guard: go test -bench BenchmarkDecideGuard ./guard/ …")
		rep.GuardBench, err = goBench(ctx, root)
		if err != nil {
			rep.Notes = append(rep.Notes, "BenchmarkDecideGuard failed: "+err.Error())
		}
	}
	if o.CPUProfile != "" {
		// The last round laid out like round 1 (the single-namespace case by default).
		rep.ProfileRound = o.Rounds
		for rep.ProfileRound > 1 && o.layout(rep.ProfileRound) != o.layout(1) {
			rep.ProfileRound--
		}
		rep.Profile, rep.ProfileKeyward = profileSummary(ctx, o.CPUProfile, rep.ProfileRound)
	}
	rep.Finished = time.Now().UTC()

	md := rep.markdown()
	fmt.Println()
	fmt.Println(rep.table())
	if o.Out != "" {
		out := o.Out
		if !filepath.IsAbs(out) {
			out = filepath.Join(root, out)
		}
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("writing report: %w", err)
		}
		fmt.Printf("report written to %s\n", out)
	}
	return nil
}

// startProfile starts a CPU profile of one issuance arm when prefix is set.
func startProfile(prefix, arm string, round int) (func(), error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(profilePath(prefix, arm, round))
	if err != nil {
		return nil, fmt.Errorf("creating CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// startPhaseProfile profiles the in-process stack and the apiserver during
// one of the later phases ("scrub", "watcher") when -cpuprofile is set, to
// <prefix>-<phase>-r0.pprof and <prefix>-apiserver-<phase>-r0.pprof.
func (b *bench) startPhaseProfile(ctx context.Context, rep *report, phase string) (func(), error) {
	if b.opts.CPUProfile == "" {
		return func() {}, nil
	}
	stop, err := startProfile(b.opts.CPUProfile, phase, 0)
	if err != nil {
		return nil, err
	}
	stopAPI := startAPIServerProfile(ctx, b.kube, profilePath(b.opts.CPUProfile+"-apiserver", phase, 0))
	return func() {
		stop()
		if err := stopAPI(); err != nil {
			rep.Notes = append(rep.Notes, err.Error())
		}
	}, nil
}

func profilePath(prefix, arm string, round int) string {
	return fmt.Sprintf("%s-%s-r%d.pprof", prefix, arm, round)
}

// profileSummary is the top of the last round's Keyward arm, and the same
// arm against the baseline arm of that round (pprof -diff_base): what the
// in-process side spent in addition. It also returns the diff's lines that
// name Keyward's own functions.
func profileSummary(ctx context.Context, prefix string, round int) (string, []string) {
	a, b := profilePath(prefix, "a", round), profilePath(prefix, "b", round)
	var sb strings.Builder
	var keyward []string
	apiA, apiB := profilePath(prefix+"-apiserver", "a", round), profilePath(prefix+"-apiserver", "b", round)
	for _, args := range [][]string{
		{"tool", "pprof", "-top", "-cum", "-nodecount=30", b},
		{"tool", "pprof", "-top", "-cum", "-nodecount=30", "-diff_base=" + a, b},
		{"tool", "pprof", "-top", "-cum", "-nodecount=40", "-diff_base=" + apiA, apiB},
	} {
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(&sb, "$ go %s\nfailed: %v\n\n", strings.Join(args, " "), err)
			continue
		}
		fmt.Fprintf(&sb, "$ go %s\n%s\n", strings.Join(args, " "), out)
		if strings.HasPrefix(args[len(args)-2], "-diff_base=") {
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) == 6 && strings.HasPrefix(f[5], "github.com/keyward-io/keyward/") {
					keyward = append(keyward, fmt.Sprintf("`%s` (cum %s)", strings.TrimPrefix(f[5], "github.com/keyward-io/keyward/"), f[3]))
				}
			}
		}
	}
	return sb.String(), keyward
}

// commandLine is how this run was invoked, as a user would type it.
func commandLine() string {
	args := append([]string{"go", "run", "./hack/bench"}, os.Args[1:]...)
	return strings.Join(args, " ")
}

// intList is a flag of comma-separated positive integers.
type intList []int

func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(v string) error {
	var out intList
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

// layout is the number of namespaces round r spreads each arm over.
func (o options) layout(round int) int {
	if len(o.Namespaces) == 0 {
		return 1
	}
	return o.Namespaces[(round-1)%len(o.Namespaces)]
}

// arms is the order of round r's issuance arms (-arm-order). Every arm
// leaves its objects behind, so an arm that runs second runs on a cluster
// with N more Certificates, Secrets and requests than the first. With
// alternate the order flips between successive rounds of the same layout,
// so that a layout's median ratio (report.layoutGroups) has rounds of both
// orders in it.
func (o options) arms(round int) []string {
	if o.ArmOrder == "alternate" && o.repetition(round)%2 == 1 {
		return []string{"b", "a"}
	}
	return []string{"a", "b"}
}

// repetition is how many earlier rounds had round's layout.
func (o options) repetition(round int) int {
	n := 0
	for r := 1; r < round; r++ {
		if o.layout(r) == o.layout(round) {
			n++
		}
	}
	return n
}

// idle waits for the stack to go idle before the phase named what and
// records the wait in the report (see waitIdle).
func (b *bench) idle(ctx context.Context, rep *report, what string) error {
	d, err := waitIdle(ctx, b.opts.IdleLimit)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("before %s: %s until idle, %s of CPU used meanwhile", what, fmtD(d.Waited), fmtD(d.CPU))
	if !d.Reached {
		line = fmt.Sprintf("before %s: still busy after %s (%s of CPU used meanwhile); started anyway", what, fmtD(d.Waited), fmtD(d.CPU))
	}
	fmt.Println("  " + line)
	rep.Drains = append(rep.Drains, line)
	return nil
}
