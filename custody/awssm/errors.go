// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/keyward-io/keyward/custody"
)

// AWS error codes the store acts on.
const (
	codeNotFound     = "ResourceNotFoundException"
	codeExists       = "ResourceExistsException"
	codeThrottling   = "ThrottlingException"
	codeAccessDenied = "AccessDeniedException"
)

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// callError explains an SDK error of one operation and maps it onto the
// custody contract. The SDK's text names the operation, HTTP status,
// request ID and AWS error code and message, never a request or response
// body; nothing here adds one.
func callError(op string, err error) error {
	var maxed *retry.MaxAttemptsError
	switch {
	case isCode(err, codeNotFound):
		return fmt.Errorf("%s: %w: %w", op, custody.ErrNotFound, err)
	case isCode(err, codeThrottling) && errors.As(err, &maxed):
		return fmt.Errorf("%s: AWS Secrets Manager is throttling this client (still throttled after %d attempts): %w", op, maxed.Attempt, err)
	case isCode(err, "InvalidSignatureException"), isCode(err, "UnrecognizedClientException"):
		return fmt.Errorf("%s: AWS refused the request's credentials (is the region the secrets' region, and the pod's AWS identity set up?): %w", op, err)
	case isCode(err, codeAccessDenied):
		return fmt.Errorf("%s: permission denied by AWS IAM (see deploy/aws for the policy this component needs): %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
