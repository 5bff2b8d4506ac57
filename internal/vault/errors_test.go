// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"context"
	"errors"
	"fmt"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

func TestMapError(t *testing.T) {
	t.Parallel()
	answer := func(status int, msgs ...string) error {
		return fmt.Errorf("writing: %w", &vaultapi.ResponseError{HTTPMethod: "PUT", URL: "http://v/v1/custody/data/tls/ns/s", StatusCode: status, Errors: msgs})
	}
	for _, tc := range []struct {
		name   string
		err    error
		class  error
		msg    string
		status int
	}{
		{"nil", nil, nil, "", 0},
		{"not an answer", context.DeadlineExceeded, nil, "context deadline exceeded", 0},
		{"not found", answer(404), ErrNotFound, "vault PUT http://v/v1/custody/data/tls/ns/s: status 404: ", 404},
		{"forbidden", answer(403, "permission denied"), ErrForbidden, "vault PUT http://v/v1/custody/data/tls/ns/s: status 403: permission denied", 403},
		{"check-and-set", answer(400, "check-and-set parameter did not match the current version"), ErrCheckAndSet,
			"vault PUT http://v/v1/custody/data/tls/ns/s: status 400: check-and-set parameter did not match the current version", 400},
		{"other 400", answer(400, "bad", "worse"), nil, "vault PUT http://v/v1/custody/data/tls/ns/s: status 400: bad; worse", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := MapError(tc.err)
			if tc.err == nil {
				if got != nil {
					t.Fatalf("MapError(nil) = %v", got)
				}
				return
			}
			if got.Error() != tc.msg {
				t.Errorf("message %q, want %q", got.Error(), tc.msg)
			}
			for _, c := range []error{ErrNotFound, ErrForbidden, ErrCheckAndSet} {
				if errors.Is(got, c) != (c == tc.class) {
					t.Errorf("errors.Is(%v) = %v, want %v", c, errors.Is(got, c), c == tc.class)
				}
			}
			if StatusCode(tc.err) != tc.status || StatusCode(got) != tc.status {
				t.Errorf("StatusCode = %d / %d, want %d", StatusCode(tc.err), StatusCode(got), tc.status)
			}
		})
	}
}
