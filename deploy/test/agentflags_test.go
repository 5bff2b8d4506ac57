// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestAgentBinaryMatchesContract builds the keyward binary and checks that
// `keyward agent --help` lists exactly the flags of AgentFlags(), with the
// same kind (boolean or not), so the examples and docs cannot drift from
// the real command line.
func TestAgentBinaryMatchesContract(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildKeyward(t, root)
	out, _ := exec.Command(bin, "agent", "--help").CombinedOutput() // pflag exits 0 or 2 on --help
	// pflag prints "  -v, --v int" or "      --secret stringArray"; booleans have no type word.
	line := regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z0-9-]+)(?: (\w+))?`)
	got := map[string]bool{} // flag → takes a value
	for _, m := range line.FindAllStringSubmatch(string(out), -1) {
		got[m[1]] = m[2] != ""
	}
	if len(got) == 0 {
		t.Fatalf("no flags in `keyward agent --help`:\n%s", out)
	}
	want := AgentFlags()
	var missing, extra []string
	for f, spec := range want {
		takesValue, ok := got[f]
		if !ok {
			missing = append(missing, f)
			continue
		}
		if takesValue == spec.Bool {
			t.Errorf("%s: the binary's flag takes a value = %v, the contract says boolean = %v", f, takesValue, spec.Bool)
		}
	}
	for f := range got {
		if _, ok := want[f]; !ok && f != "--help" {
			extra = append(extra, f)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 {
		t.Errorf("in the contract but not in the binary: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("in the binary but not in the contract (add them to AgentFlags): %v", extra)
	}
}

// buildKeyward builds the keyward binary of the repository at root into a
// temporary directory.
func buildKeyward(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keyward")
	build := exec.Command("go", "build", "-o", bin, "./cmd/keyward")
	build.Dir = root
	build.Env = append(os.Environ(), "GOFLAGS=-mod=readonly -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/keyward: %v\n%s", err, out)
	}
	return bin
}
