// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKnownMetricsMatchSource checks KnownMetrics against Keyward's Go
// sources: every keyward_ metric the rules and dashboard rely on is defined
// in code, unless listed in PendingMetrics; and no pending metric is in fact
// defined already (then it must move out of PendingMetrics).
func TestKnownMetricsMatchSource(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var sources strings.Builder
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "deploy", "hack", "e2e", "docs":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sources.Write(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	src := sources.String()
	pending := PendingMetrics()
	for name := range KnownMetrics() {
		if !strings.HasPrefix(name, "keyward_") {
			continue
		}
		defined := strings.Contains(src, `"`+name+`"`)
		switch {
		case pending[name] && defined:
			t.Errorf("%s is now defined in Keyward's code: remove it from PendingMetrics in deploy/test/contract.go", name)
		case !pending[name] && !defined:
			t.Errorf("%s is used by the rules or dashboard but no Keyward package defines it", name)
		}
	}
	for name := range pending {
		if _, ok := KnownMetrics()[name]; !ok {
			t.Errorf("PendingMetrics lists %s, which is not in KnownMetrics", name)
		}
	}
}
