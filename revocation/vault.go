// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package revocation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/issuer"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// Results of one revocation attempt: the bounded values of
// keyward_revocations_total's result label.
const (
	// ResultRevoked: Vault revoked the serial now, or had already (its
	// answer has state "revoked" and a revocation time either way).
	ResultRevoked = "revoked"
	// ResultExpired: the certificate has expired; Vault keeps expired
	// certificates off its CRL ("already expired; refusing to add to CRL").
	ResultExpired = "expired"
	// ResultUnknown: Vault's mount has no certificate with this serial (400
	// "certificate with serial ... not found", e.g. tidied after expiry).
	ResultUnknown = "unknown"
	// ResultRejected: any other 400: Vault will not revoke this serial as
	// asked; retrying cannot help, so the entry is dropped with a Warning.
	ResultRejected = "rejected"
	// ResultError: no answer, 401/403 (also after a fresh login), 429, 5xx,
	// a login failure: retried with backoff.
	ResultError = "error"
	// ResultAbandoned: the issuer was deleted, or its spec.revocation
	// removed, before the revocation ran: nothing is attempted.
	ResultAbandoned = "abandoned"
)

// Done reports whether a result ends the entry (everything but ResultError).
func Done(result string) bool { return result != ResultError }

// Revoker revokes one serial with an issuer's revocation login.
type Revoker interface {
	// Revoke revokes serial (lower-case hex) in the PKI mount of iss's
	// spec.path, returning one of the Result* values and, for ResultError
	// and ResultRejected, the reason.
	Revoke(ctx context.Context, iss v1alpha1.GenericIssuer, serial string) (string, error)
}

// VaultRevoker is the production Revoker: it logs in with the issuer's
// spec.revocation.auth (one cached client per issuer generation) and writes
// serial_number to <mount>/revoke. It never sends or reads a key.
type VaultRevoker struct {
	Login *issuer.VaultLogin
	cache vault.Cache
}

// Close closes the cached Vault clients.
func (r *VaultRevoker) Close() { r.cache.Close() }

// Revoke implements Revoker.
func (r *VaultRevoker) Revoke(ctx context.Context, iss v1alpha1.GenericIssuer, serial string) (string, error) {
	spec := iss.IssuerSpec()
	if spec.Revocation == nil {
		return ResultAbandoned, nil
	}
	path, err := v1alpha1.ParseSignPath(spec.Path)
	if err != nil {
		return ResultRejected, err
	}
	version := fmt.Sprintf("%s/%d", iss.GetUID(), iss.GetGeneration())
	c, err := r.cache.Get(ctx, issuer.IssuerName(iss), version, func(ctx context.Context) (*vault.Client, error) {
		return r.Login.Login(ctx, iss, spec.Revocation.Auth)
	})
	if err != nil {
		return ResultError, fmt.Errorf("logging in to vault for revocation: %w", err)
	}
	revokePath := path.Mount + "/revoke"
	sec, err := issuer.RetryAfterRelogin(ctx, c, func() (*vaultapi.Secret, error) {
		return c.API().Logical().WriteWithContext(ctx, revokePath, map[string]any{"serial_number": ColonSerial(serial)})
	})
	return Classify(sec, err)
}

// Classify maps Vault's answer to a revoke request to a result. Only the
// status, Vault's error strings and its warnings are read: the answer of a
// revoke holds no secret, but nothing of it is logged either way.
func Classify(sec *vaultapi.Secret, err error) (string, error) {
	if err != nil {
		err = vault.MapError(err)
		if vault.StatusCode(err) == http.StatusBadRequest {
			msg := strings.Join(vault.ErrorMessages(err), "; ")
			switch {
			case strings.Contains(msg, "CRL building"):
				// Revoked, but the CRL was not rebuilt: the next attempt
				// finds it revoked and Vault rebuilds the CRL then.
				return ResultError, err
			case strings.Contains(msg, "not found"):
				return ResultUnknown, nil
			}
			return ResultRejected, err
		}
		return ResultError, err
	}
	if sec != nil {
		for _, w := range sec.Warnings {
			if strings.Contains(w, "already expired") {
				return ResultExpired, nil
			}
		}
		if st, _ := sec.Data["state"].(string); st != "" && st != "revoked" && st != "pending" {
			return ResultError, errors.New("vault answered the revocation with state " + st)
		}
	}
	return ResultRevoked, nil
}
