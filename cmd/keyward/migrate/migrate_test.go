// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package migrate

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestMainRefusesIncompleteUsage(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("VAULT_ADDR", "")
	for _, args := range [][]string{
		{},                                       // no namespace, no store
		{"-n", "shop"},                           // Vault is not a target
		{"-n", "shop", "--custody-store", "aws"}, // no Vault source
		{"--custody-store", "gcp", "--dry-run"},  // no namespace
		{"-n", "shop", "--no-such-flag", "--x=1"}, // unknown flag
	} {
		var out, errs bytes.Buffer
		if code := Main(context.Background(), args, &out, &errs); code != 2 {
			t.Errorf("Main(%q) = %d, want 2 (usage); stderr: %s", args, code, errs.String())
		}
		if strings.Contains(errs.String(), "VAULT_TOKEN=") {
			t.Errorf("stderr echoes the environment")
		}
	}
}
