// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// Classes of Vault API failures, for errors.Is on what MapError returns.
var (
	// ErrNotFound: Vault answered 404 (no such path, or a KV version that
	// is deleted or destroyed).
	ErrNotFound = errors.New("not found in vault")
	// ErrForbidden: Vault answered 403 (token expired or revoked, or the
	// policy does not allow the path).
	ErrForbidden = errors.New("forbidden by vault")
	// ErrCheckAndSet: a KV v2 write's check-and-set version was stale.
	ErrCheckAndSet = errors.New("vault check-and-set mismatch")
)

// APIError is a Vault API error answer reduced to what is safe to log: the
// method, the URL (paths name records, never their data), the status and
// the error strings Vault returned. The response body is never kept.
type APIError struct {
	Method, URL string
	Status      int
	Messages    []string
	class       error
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("vault %s %s: status %d: %s", e.Method, e.URL, e.Status, strings.Join(e.Messages, "; "))
}

// Unwrap returns the error's class (ErrNotFound, ErrForbidden,
// ErrCheckAndSet), if any.
func (e *APIError) Unwrap() error { return e.class }

// MapError is the one place Keyward turns the Vault client's errors into its
// own: an error answer from Vault becomes an *APIError wrapping its class;
// nil and errors that are not answers (network failures, timeouts) are
// returned as they are.
func MapError(err error) error {
	var re *vaultapi.ResponseError
	if err == nil || !errors.As(err, &re) {
		return err
	}
	e := &APIError{Method: re.HTTPMethod, URL: re.URL, Status: re.StatusCode, Messages: re.Errors}
	switch {
	case re.StatusCode == http.StatusNotFound:
		e.class = ErrNotFound
	case re.StatusCode == http.StatusForbidden:
		e.class = ErrForbidden
	case re.StatusCode == http.StatusBadRequest && strings.Contains(strings.Join(re.Errors, "; "), "check-and-set"):
		e.class = ErrCheckAndSet
	}
	return e
}

// StatusCode returns the HTTP status of a Vault API error answer, or 0 when
// err is not one (network errors, timeouts).
func StatusCode(err error) int {
	var e *APIError
	if errors.As(MapError(err), &e) {
		return e.Status
	}
	return 0
}

// ErrorMessages returns the messages Vault put in an error answer, or nil.
// They describe the request (e.g. a name the role forbids) and hold no secrets.
func ErrorMessages(err error) []string {
	var e *APIError
	if errors.As(MapError(err), &e) {
		return e.Messages
	}
	return nil
}
