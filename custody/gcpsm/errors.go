// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyward-io/keyward/custody"
)

// boundedRetryer retries the given codes with backoff, at most MaxAttempts
// tries in all; the call's context bounds the time.
type boundedRetryer struct {
	inner gax.Retryer
	tries int
}

func (r *boundedRetryer) Retry(err error) (time.Duration, bool) {
	r.tries++
	if r.tries >= MaxAttempts {
		return 0, false
	}
	return r.inner.Retry(err)
}

func retry(cc ...codes.Code) gax.CallOption {
	return gax.WithRetry(func() gax.Retryer {
		return &boundedRetryer{inner: gax.OnCodes(cc, gax.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2})}
	})
}

// readRetry is for calls that change nothing; writeRetry only retries
// what the service rejected before doing anything.
func readRetry() gax.CallOption  { return retry(codes.ResourceExhausted, codes.Unavailable) }
func writeRetry() gax.CallOption { return retry(codes.ResourceExhausted) }

func code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}

func isNotFound(err error) bool      { return code(err) == codes.NotFound }
func isAlreadyExists(err error) bool { return code(err) == codes.AlreadyExists }
func isEtagMismatch(err error) bool  { return code(err) == codes.FailedPrecondition }

// callError describes a failed call on resource: what was done, the
// status code and Secret Manager's message (which names resources, never
// payloads). NotFound wraps custody.ErrNotFound; throttling says that the
// retries are spent.
func callError(what, resource string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s %s: %w", what, resource, err)
	}
	switch st.Code() {
	case codes.NotFound:
		return fmt.Errorf("%s %s: %s: %w", what, resource, st.Message(), custody.ErrNotFound)
	case codes.ResourceExhausted:
		return fmt.Errorf("%s %s: throttled by Secret Manager (RESOURCE_EXHAUSTED) after %d attempts: %s", what, resource, MaxAttempts, st.Message())
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Errorf("%s %s: %s (check the identity's IAM roles and the project): %s", what, resource, st.Code(), st.Message())
	}
	return fmt.Errorf("%s %s: %s: %s", what, resource, st.Code(), st.Message())
}

// versionNumber parses ".../versions/N".
func versionNumber(name string) (int, error) {
	i := strings.LastIndex(name, "/versions/")
	if i < 0 {
		return 0, fmt.Errorf("unexpected version name %q", name)
	}
	n, err := strconv.Atoi(name[i+len("/versions/"):])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("unexpected version name %q", name)
	}
	return n, nil
}
