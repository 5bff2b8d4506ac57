// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package revocation

import (
	"errors"
	"fmt"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

func vaultErr(status int, msgs ...string) error {
	return fmt.Errorf("writing pki_int/revoke: %w", &vaultapi.ResponseError{HTTPMethod: "PUT", URL: "http://vault/v1/pki_int/revoke", StatusCode: status, Errors: msgs})
}

// TestClassify covers each answer Vault 1.21's revoke handler gives
// (builtin/logical/pki path_revoke.go and crl_util.go revokeCert).
func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sec     *vaultapi.Secret
		err     error
		want    string
		wantErr bool
	}{
		{"revoked now", &vaultapi.Secret{Data: map[string]any{"revocation_time": 1, "state": "revoked"}}, nil, ResultRevoked, false},
		{"revoked before (same answer)", &vaultapi.Secret{Data: map[string]any{"revocation_time": 1, "revocation_time_rfc3339": "x", "state": "revoked"}}, nil, ResultRevoked, false},
		{"cross-cluster queue", &vaultapi.Secret{Data: map[string]any{"state": "pending"}}, nil, ResultRevoked, false},
		{"no body (tainted mount)", nil, nil, ResultRevoked, false},
		{"expired", &vaultapi.Secret{Warnings: []string{"certificate with serial 1f already expired; refusing to add to CRL"}}, nil, ResultExpired, false},
		{"unknown serial", nil, vaultErr(400, "certificate with serial 0a:1f not found."), ResultUnknown, false},
		{"issuer's own serial", nil, vaultErr(400, "adding issuer (id: x) to its own CRL is not allowed"), ResultRejected, true},
		{"revoked but CRL not rebuilt", nil, vaultErr(400, "Error during CRL building: boom"), ResultError, true},
		{"permission denied", nil, vaultErr(403, "permission denied"), ResultError, true},
		{"sealed", nil, vaultErr(503, "Vault is sealed"), ResultError, true},
		{"no answer", nil, errors.New("dial tcp 127.0.0.1:1: connection refused"), ResultError, true},
		{"odd state", &vaultapi.Secret{Data: map[string]any{"state": "weird"}}, nil, ResultError, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Classify(tc.sec, tc.err)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("Classify = %s, %v; want %s, error %v", got, err, tc.want, tc.wantErr)
			}
			if Done(got) == (tc.want == ResultError) {
				t.Errorf("Done(%s) = %v", got, Done(got))
			}
		})
	}
}
