// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// TestChartCopiesInSync fails when the chart's copies of the CRDs or the
// Prometheus rules differ from their sources; hack/sync-chart-crds.sh fixes it.
func TestChartCopiesInSync(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(root, "deploy", "charts", "keyward")

	sources, err := filepath.Glob(filepath.Join(root, "deploy", "crds", "vault.keyward.io_*.yaml"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no CRDs in deploy/crds (%v); run hack/generate.sh", err)
	}
	copies, err := filepath.Glob(filepath.Join(chart, "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var srcNames, copyNames []string
	for _, s := range sources {
		srcNames = append(srcNames, filepath.Base(s))
	}
	for _, c := range copies {
		copyNames = append(copyNames, filepath.Base(c))
	}
	sort.Strings(srcNames)
	sort.Strings(copyNames)
	if !slices.Equal(srcNames, copyNames) {
		t.Errorf("chart crds/ holds %v, deploy/crds holds %v; run hack/sync-chart-crds.sh", copyNames, srcNames)
	}

	pairs := [][2]string{{
		filepath.Join(root, "deploy", "prometheus", "keyward-rules.yaml"),
		filepath.Join(chart, "files", "keyward-rules.yaml"),
	}}
	for _, s := range sources {
		pairs = append(pairs, [2]string{s, filepath.Join(chart, "crds", filepath.Base(s))})
	}
	for _, p := range pairs {
		src, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		cp, err := os.ReadFile(p[1])
		if err != nil {
			t.Errorf("missing copy: %v; run hack/sync-chart-crds.sh", err)
			continue
		}
		if !bytes.Equal(src, cp) {
			rel, _ := filepath.Rel(root, p[1])
			t.Errorf("%s differs from its source; run hack/sync-chart-crds.sh", rel)
		}
	}
}
