// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package promreg registers Prometheus collectors the way every Keyward
// component needs: a second registration of the same collector (a second
// manager in one process, as tests and restarts do) reuses the one already
// registered instead of failing.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns the collector to use: c itself, or
// the equal collector already registered. A nil reg leaves c unregistered.
// A collector registered under the same name with another type is an error.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
		var zero C
		return zero, fmt.Errorf("registering metrics: a collector of another type is registered as %T", are.ExistingCollector)
	}
	var zero C
	return zero, fmt.Errorf("registering metrics: %w", err)
}
