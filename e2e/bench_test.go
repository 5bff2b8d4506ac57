// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward-io/keyward/e2e/framework"
)

// TestBenchHarnessSmoke runs the benchmark harness (hack/bench, what `make
// bench` runs) end to end on a tiny workload, so that it cannot rot unseen.
// It starts its own stack. No figure is asserted (timings belong to `make
// bench`): only that every phase ran on the real stack and that the report
// holds each section with the counts the run must produce.
func TestBenchHarnessSmoke(t *testing.T) {
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./hack/bench",
		"-n", "4", "-rounds", "3", "-namespaces", "1,2",
		"-quiet", "2s", "-settle", "1s",
		"-scrub-secrets", "3", "-watcher-secrets", "3", "-watcher-single", "2",
		"-scale-certificates", "6", "-scale-namespaces", "2", "-scale-settle", "1s", "-audit-period", "3s",
		"-floor-rounds", "2", "-arm-order", "alternate",
		"-skip-go-bench", "-out", out)
	cmd.Dir = root
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/bench failed: %v\n%s", err, output)
	}
	report, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("reading the report: %v\n%s", err, output)
	}
	for _, want := range []string{
		"## 1. Issuance",
		"| Issuance wall, round 1 (a baseline / b Keyward) |",
		"| Issuance settled, round 1 (a / b) |",
		"| Issuance wall, round 2 (2 namespaces) (a baseline / b Keyward) |",
		"Secrets with empty tls.key after the arm: 4 of 4.",
		"Guard counters over the arm",
		"Waits for an idle stack in this run:",
		"- before arm b, round 1: ",
		"- before the watcher phase: ",
		"Object writes per Certificate during each round",
		"writes per Certificate in arm a, ",
		"| write | a per cert | b per cert | b − a |",
		"## 2. Scrub cost",
		"Created Secrets that came back as webhook placeholders: 3 of 3.",
		"## 3. Watcher exposure",
		"Creates that returned with the key still present (webhook really bypassed): 3 of 3.",
		"**The floor on this machine.**",
		"| floor remover: bare KV v2 write, then Update | 3 |",
		"**Paired rounds.**",
		"| 1 | Keyward |",
		"| 2 | floor |",
		"Median over the rounds of Keyward's p99 ÷ the floor's: ",
		"arm a ran first in a layout's first round, arm b first in its second",
		"| Issuance wall ratio b/a, 1 namespace, median of 2 rounds | **",
		"- Issuance, 1 namespace, median wall ratio b/a over 2 rounds (round 1 ",
		"## 4. Steady state",
		"## 6. Scale",
		"| 6 Certificates issued into custody |",
		"Memory limit of the process: ",
		"Live heap of the loaded process (`/debug/pprof/heap?gc=1`",
		"inuse_space",
		"store listings and 0 metadata reads",
		"### Targets",
	} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Round 3 is layout 1's second round: with -arm-order alternate its
	// Keyward arm ran first; round 2 (the first of layout 2) ran a first.
	for _, order := range [][2]string{
		{"- before arm b, round 3: ", "- before arm a, round 3: "},
		{"- before arm a, round 2 (2 namespaces): ", "- before arm b, round 2 (2 namespaces): "},
	} {
		first, second := strings.Index(string(report), order[0]), strings.Index(string(report), order[1])
		if first < 0 || second < 0 || first > second {
			t.Errorf("report's idle waits: want %q before %q", order[0], order[1])
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", report)
	}
}
