// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"errors"
	"fmt"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/issuer/keypolicy"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	resp := func(code int, msgs ...string) error {
		return fmt.Errorf("signing with vault pki_int/sign/keyward: %w", &vaultapi.ResponseError{StatusCode: code, Errors: msgs})
	}
	tests := []struct {
		name       string
		err        error
		wantClass  string // permanent, issuer, pending, transient
		wantReason string
		wantMsg    string
	}{
		{name: "400 is permanent with vault's reason", err: resp(400, "common name evil.org not allowed by this role"), wantClass: "permanent", wantReason: ReasonVaultRejected, wantMsg: "vault rejected the request: common name evil.org not allowed by this role"},
		{name: "other 4xx is permanent", err: resp(422, "bad"), wantClass: "permanent", wantReason: ReasonVaultRejected},
		{name: "403 is the issuer's", err: resp(403, "permission denied"), wantClass: "issuer", wantReason: ReasonPermissionDenied},
		{name: "401 is the issuer's", err: resp(401), wantClass: "issuer", wantReason: ReasonPermissionDenied},
		{name: "404 is a wrong path", err: resp(404, "no handler for route"), wantClass: "issuer", wantReason: ReasonPathNotFound},
		{name: "sealed 503 is the issuer's", err: resp(503, "Vault is sealed"), wantClass: "issuer", wantReason: ReasonVaultSealed},
		{name: "other 503 is transient", err: resp(503, "standby"), wantClass: "transient"},
		{name: "500 is transient", err: resp(500, "internal"), wantClass: "transient"},
		{name: "429 is transient", err: resp(429), wantClass: "transient"},
		{name: "network error is transient", err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), wantClass: "transient"},
		{name: "deadline is transient", err: context.DeadlineExceeded, wantClass: "transient"},
		{name: "refused login is the issuer's", err: &vault.LoginError{Method: "kubernetes auth", Err: resp(400, "invalid role name")}, wantClass: "issuer", wantReason: ReasonAuthFailed},
		{name: "login 403 is the issuer's", err: &vault.LoginError{Method: "approle auth", Err: resp(403, "invalid secret id")}, wantClass: "issuer", wantReason: ReasonAuthFailed},
		{name: "login without answer is transient", err: &vault.LoginError{Method: "approle auth", Err: errors.New("EOF")}, wantClass: "transient"},
		{name: "login to sealed vault", err: &vault.LoginError{Method: "approle auth", Err: resp(503, "Vault is sealed")}, wantClass: "issuer", wantReason: ReasonVaultSealed},
		{name: "health sealed", err: &vault.HealthError{Reason: "VaultSealed", Err: errors.New("sealed")}, wantClass: "issuer", wantReason: ReasonVaultSealed},
		{name: "health unreachable is transient", err: &vault.HealthError{Reason: "VaultUnreachable", Err: errors.New("refused")}, wantClass: "transient"},
		{name: "policy violation is permanent", err: &keypolicy.Violation{Rule: keypolicy.RuleECDSACurve, Detail: "P-521"}, wantClass: "permanent", wantReason: ReasonPolicyViolation, wantMsg: `policy rule "ecdsa-curve": P-521`},
		{name: "classified errors pass through", err: &PendingError{Err: errors.New("wait")}, wantClass: "pending"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := classify(tc.err)
			var (
				perm    *PermanentError
				iss     *IssuerError
				pending *PendingError
				class   = "transient"
				reason  string
			)
			switch {
			case errors.As(got, &perm):
				class, reason = "permanent", perm.Reason
			case errors.As(got, &iss):
				class, reason = "issuer", iss.Reason
			case errors.As(got, &pending):
				class = "pending"
			}
			if class != tc.wantClass || reason != tc.wantReason {
				t.Errorf("classify(%v) = %s/%s, want %s/%s", tc.err, class, reason, tc.wantClass, tc.wantReason)
			}
			if tc.wantMsg != "" && got.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", got.Error(), tc.wantMsg)
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}
