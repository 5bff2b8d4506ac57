// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 600)
	cases := []struct {
		name, msg string
		secrets   [][]byte
		want      string
	}{
		{"plain", "schema violation", nil, "schema violation"},
		{"key material", "bad key -----BEGIN PRIVATE KEY-----", nil, "[message withheld: it quotes key material]"},
		{"secrets", "token tok1 and tok2 refused", [][]byte{[]byte("tok1"), nil, []byte("tok2")}, "token [redacted] and [redacted] refused"},
		{"long", long, nil, long[:512] + "…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Redact(tc.msg, tc.secrets...); got != tc.want {
				t.Errorf("Redact = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, empty := filepath.Join(dir, "good"), filepath.Join(dir, "empty")
	if err := os.WriteFile(good, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadSecretFile(good, "admin key"); err != nil || got != "s3cret" {
		t.Errorf("ReadSecretFile(good) = %q, %v; want s3cret", got, err)
	}
	if _, err := ReadSecretFile(empty, "admin token"); err == nil || err.Error() != "admin token file "+empty+" is empty" {
		t.Errorf("ReadSecretFile(empty): %v, want it to say the admin token file is empty", err)
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing"), "admin key"); err == nil || !strings.HasPrefix(err.Error(), "reading admin key file: ") {
		t.Errorf("ReadSecretFile(missing): %v, want it to start with \"reading admin key file: \"", err)
	}
}
