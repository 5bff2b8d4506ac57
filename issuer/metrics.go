// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward-io/keyward/internal/promreg"
)

// Sign results, the bounded values of keyward_issuer_sign_total's result label.
const (
	resultSuccess   = "success"
	resultPermanent = "permanent"
	resultIssuer    = "issuer_error"
	resultRetry     = "retry"
)

// metrics are the issuer's Prometheus collectors.
type metrics struct {
	signDuration *prometheus.HistogramVec
	signTotal    *prometheus.CounterVec
	ready        *prometheus.GaugeVec
}

// newMetrics registers the issuer's collectors with reg. Registering twice
// (a second manager in the same process, as in tests) reuses the collectors
// already there.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		signDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_issuer_sign_duration_seconds",
			Help:    "Time Vault took to answer a sign request, by issuer.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"issuer"}),
		signTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_issuer_sign_total",
			Help: "Sign attempts by issuer and result (success, permanent, issuer_error, retry).",
		}, []string{"issuer", "result"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyward_issuer_ready",
			Help: "1 when the issuer's Ready condition is True, else 0.",
		}, []string{"issuer"}),
	}
	var err error
	if m.signDuration, err = promreg.Register(reg, m.signDuration); err != nil {
		return nil, err
	}
	if m.signTotal, err = promreg.Register(reg, m.signTotal); err != nil {
		return nil, err
	}
	if m.ready, err = promreg.Register(reg, m.ready); err != nil {
		return nil, err
	}
	return m, nil
}
