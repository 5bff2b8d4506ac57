// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"strings"
	"testing"
)

// FuzzParseSignPath checks that whatever ParseSignPath accepts it can print
// back into a path that parses to the same parts, and that every accepted
// path ends in sign/<role>.
func FuzzParseSignPath(f *testing.F) {
	for _, s := range []string{"pki/sign/r", "pki/issuer/x/sign/r", "/v1/a/b/sign/c", "issuer/x/sign/y", "pki//sign/r", "sign/r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParseSignPath(in)
		if err != nil {
			return
		}
		if p.Mount == "" || p.Role == "" || strings.Contains(p.Role, "/") {
			t.Fatalf("ParseSignPath(%q) = %+v: empty mount or bad role", in, p)
		}
		again, err := ParseSignPath(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v, %v", in, p, p.String(), again, err)
		}
	})
}
