// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package keypolicy

import (
	"slices"
	"strings"
	"testing"
)

// FuzzMatchDNS checks the matcher's invariants: a name matches itself
// (unless it holds glob syntax or empty labels), matching ignores case, and
// a pattern never matches a name with a different number of labels.
func FuzzMatchDNS(f *testing.F) {
	f.Add("*.example.com", "a.example.com")
	f.Add("web-*.example.com", "web-1.EXAMPLE.com")
	f.Add("[", "[")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := MatchDNS(pattern, name)
		if isPlainASCII(pattern+name) && got != MatchDNS(strings.ToUpper(pattern), strings.ToLower(name)) {
			t.Fatalf("MatchDNS(%q, %q) depends on case", pattern, name)
		}
		trim := func(s string) string { return strings.TrimSuffix(s, ".") }
		if got && strings.Count(trim(pattern), ".") != strings.Count(trim(name), ".") {
			t.Fatalf("MatchDNS(%q, %q) matched across label counts", pattern, name)
		}
		if isPlainASCII(name) && !slices.Contains(strings.Split(trim(name), "."), "") && !MatchDNS(name, name) {
			t.Fatalf("MatchDNS(%q, %q) = false: a plain name must match itself", name, name)
		}
	})
}

// isPlainASCII reports whether s is ASCII without glob syntax.
func isPlainASCII(s string) bool {
	for _, r := range s {
		if r > 127 || strings.ContainsRune("*?[]\\", r) {
			return false
		}
	}
	return true
}
