// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Poll checks cond every 100 ms until it holds or limit passes. An error
// from cond does not stop the polling; the last one is named if it never
// holds.
func Poll(ctx context.Context, limit time.Duration, what string, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("waiting %s for %s: %w (last error: %v)", limit, what, err, last)
	}
	return nil
}
