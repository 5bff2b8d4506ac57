// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/issuer/keypolicy"
)

// The issuer sorts every failure into one of these classes; each decides
// what happens to the CertificateRequest and to the issuer.
//
//   - *PermanentError: the request can never succeed as it is (Vault said
//     400: the role rejects the CSR; a key-policy violation; an unparsable
//     CSR). The CertificateRequest becomes Ready=False/Failed with
//     failureTime set, and is never retried; cert-manager creates a new one.
//   - *IssuerError: the issuer cannot sign right now for a reason that is
//     the issuer's, not the request's (login refused, Vault sealed, 403 on
//     the sign path). The issuer is marked not Ready; the request stays
//     Pending and is retried once the issuer is Ready again.
//   - *PendingError: nothing is wrong yet (not approved, issuer missing or
//     not Ready). The request stays Pending and is re-queued without
//     counting against the retry budget.
//   - anything else is transient (no answer from Vault, 429, 5xx): retried
//     with exponential backoff until Options.MaxRetryDuration has passed
//     since the request was created, then treated as permanent.

// PermanentError fails a CertificateRequest for good.
type PermanentError struct {
	// Reason is a CamelCase cause for events, e.g. VaultRejected, PolicyViolation.
	Reason string
	// Err explains the failure; its message is shown to the user.
	Err error
}

// Error implements error.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// IssuerError marks the issuer not Ready and keeps the request Pending.
type IssuerError struct {
	// Reason becomes the issuer's Ready condition reason, e.g. AuthFailed.
	Reason string
	// Err explains the failure; it becomes the condition message.
	Err error
}

// Error implements error.
func (e *IssuerError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *IssuerError) Unwrap() error { return e.Err }

// PendingError keeps a request Pending without spending its retry budget.
type PendingError struct {
	// Err says what the request waits for; it becomes the condition message.
	Err error
}

// Error implements error.
func (e *PendingError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PendingError) Unwrap() error { return e.Err }

// Issuer Ready condition reasons.
const (
	ReasonVerified         = "Verified"
	ReasonAuthFailed       = "AuthFailed"
	ReasonPermissionDenied = "PermissionDenied"
	ReasonVaultUnreachable = "VaultUnreachable"
	ReasonVaultSealed      = "VaultSealed"
	ReasonVaultError       = "VaultError"
	ReasonInvalidConfig    = "InvalidConfig"
	ReasonPathNotFound     = "PathNotFound"
	// ReasonTLSUntrusted: Vault answered, but its TLS certificate does not
	// verify against the issuer's CA bundle (or the system roots): a
	// configuration error, not an outage.
	ReasonTLSUntrusted = "VaultTLSUntrusted"
)

// Request failure reasons used in events and metrics.
const (
	ReasonVaultRejected   = "VaultRejected"
	ReasonPolicyViolation = "PolicyViolation"
	ReasonInvalidRequest  = "InvalidRequest"
	ReasonRetriesExceeded = "RetriesExceeded"
)

// classify sorts an error from logging in to or signing with Vault into the
// classes above. Errors already classified are returned as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var (
		perm    *PermanentError
		iss     *IssuerError
		pending *PendingError
		viol    *keypolicy.Violation
		health  *vault.HealthError
		login   *vault.LoginError
	)
	switch {
	case errors.As(err, &perm), errors.As(err, &iss), errors.As(err, &pending):
		return err
	case errors.As(err, &viol):
		return &PermanentError{Reason: ReasonPolicyViolation, Err: err}
	case errors.As(err, &health):
		if health.Reason == ReasonVaultUnreachable {
			return err // transient: the network may come back
		}
		return &IssuerError{Reason: health.Reason, Err: err}
	case errors.As(err, &login):
		if login.Transient() && !isSealed(err) {
			return err
		}
	}
	code := vault.StatusCode(err)
	switch {
	case isSealed(err):
		return &IssuerError{Reason: ReasonVaultSealed, Err: err}
	case login != nil:
		return &IssuerError{Reason: ReasonAuthFailed, Err: err}
	case code == http.StatusBadRequest:
		return &PermanentError{Reason: ReasonVaultRejected, Err: fmt.Errorf("vault rejected the request: %s", vaultReason(err))}
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return &IssuerError{Reason: ReasonPermissionDenied, Err: err}
	case code == http.StatusNotFound, code == http.StatusMethodNotAllowed:
		return &IssuerError{Reason: ReasonPathNotFound, Err: err}
	case code == 0, code == http.StatusTooManyRequests, code == http.StatusPreconditionFailed, code >= 500:
		return err
	default: // other 4xx: the request itself is unacceptable
		return &PermanentError{Reason: ReasonVaultRejected, Err: fmt.Errorf("vault rejected the request (HTTP %d): %s", code, vaultReason(err))}
	}
}

// vaultReason is what Vault said, or the error itself when Vault said nothing.
func vaultReason(err error) string {
	if msgs := vault.ErrorMessages(err); len(msgs) > 0 {
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}

// isTLSVerification reports whether err is a failure to verify Vault's TLS
// certificate (unknown authority, wrong host name, expired or invalid).
func isTLSVerification(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

func isSealed(err error) bool {
	if vault.StatusCode(err) != http.StatusServiceUnavailable {
		return false
	}
	for _, m := range vault.ErrorMessages(err) {
		if strings.Contains(strings.ToLower(m), "sealed") {
			return true
		}
	}
	return false
}
