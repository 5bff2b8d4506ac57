// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterReusesAndRejects(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "keyward_test_total", Help: "test"}
	first, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	first.Inc()
	if second != first {
		t.Fatalf("second registration must return the collector already registered")
	}
	if _, err := Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "keyward_test_total", Help: "test"})); err == nil {
		t.Fatalf("a collector of another type under the same name must be an error")
	}
	unregistered := prometheus.NewCounter(opts)
	if got, err := Register[prometheus.Counter](nil, unregistered); err != nil || got != unregistered {
		t.Fatalf("nil registry: want the collector back unregistered, got %v, %v", got, err)
	}
}
