// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package app

import (
	"context"
	"slices"
	"testing"

	"k8s.io/client-go/rest"
)

type recordedWarnings struct{ got *[]string }

func (r recordedWarnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _, message string) {
	*r.got = append(*r.got, message)
}

func TestPlaceholderWarningsDropsOnlyThePlaceholderWarning(t *testing.T) {
	var got []string
	h := placeholderWarnings{next: recordedWarnings{&got}}
	for _, m := range []string{PlaceholderWarning, "tls: private key does not match public key", "v1 Foo is deprecated"} {
		h.HandleWarningHeaderWithContext(context.Background(), 299, "", m)
	}
	if want := []string{"tls: private key does not match public key", "v1 Foo is deprecated"}; !slices.Equal(got, want) {
		t.Errorf("warnings passed on: %q, want %q", got, want)
	}
}

func TestWithWarningFilterKeepsTheCallersHandler(t *testing.T) {
	var got []string
	own := recordedWarnings{&got}
	cfg := &rest.Config{Host: "https://example.invalid", WarningHandlerWithContext: own}
	if out := withWarningFilter(cfg); out != cfg {
		t.Error("a config with its own warning handler was replaced")
	}
	bare := &rest.Config{Host: "https://example.invalid"}
	out := withWarningFilter(bare)
	if bare.WarningHandlerWithContext != nil {
		t.Error("withWarningFilter changed the caller's config")
	}
	if _, ok := out.WarningHandlerWithContext.(placeholderWarnings); !ok {
		t.Errorf("filtered config's handler is %T, want placeholderWarnings", out.WarningHandlerWithContext)
	}
}
