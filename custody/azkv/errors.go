// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/keyward-io/keyward/custody"
)

func isStatus(err error, code int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

// callError describes a failed call on a secret by the HTTP status and
// Key Vault's error code only: a ResponseError's text would carry the
// whole response body. 404 wraps custody.ErrNotFound.
func callError(what, secret string, err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s %s: %w", what, secret, err)
	}
	status := fmt.Sprintf("%d %s", re.StatusCode, http.StatusText(re.StatusCode))
	if re.ErrorCode != "" {
		status += " (" + re.ErrorCode + ")"
	}
	switch re.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%s %s: %s: %w", what, secret, status, custody.ErrNotFound)
	case http.StatusTooManyRequests:
		return fmt.Errorf("%s %s: throttled by Key Vault: %s after %d retries (or a Retry-After over %s)", what, secret, status, MaxRetries, MaxRetryDelay)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s %s: %s (check the identity's Key Vault role assignments)", what, secret, status)
	}
	return fmt.Errorf("%s %s: %s", what, secret, status)
}
