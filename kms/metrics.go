// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package kms

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward-io/keyward/internal/promreg"
	"github.com/keyward-io/keyward/internal/vault"
)

// Values of the result label of keyward_kms_requests_total (a closed set).
const (
	ResultOK        = "ok"
	ResultForbidden = "forbidden" // Vault refused: policy or token
	ResultRejected  = "rejected"  // Vault answered with another error (bad ciphertext, unknown key)
	ResultUnreached = "unreached" // no answer: network, timeout, not logged in
	ResultInvalid   = "invalid"   // refused before any Vault call: not a Transit ciphertext
)

// Metrics are the plugin's Prometheus collectors.
type Metrics struct {
	// Requests counts Transit-backed calls by op (encrypt, decrypt, status) and result.
	Requests *prometheus.CounterVec
	// Duration is the latency of those calls, by op.
	Duration *prometheus.HistogramVec
	// KeyVersion is the Transit key version new DEK seeds are wrapped with.
	KeyVersion prometheus.Gauge
	// Healthy is 1 when the last Status check passed, else 0.
	Healthy prometheus.Gauge
}

// NewMetrics creates the collectors and registers them on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_kms_requests_total",
			Help: "KMS v2 plugin calls (encrypt, decrypt, status) by result; each is one or two Vault Transit calls.",
		}, []string{"op", "result"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_kms_request_duration_seconds",
			Help:    "Latency of KMS v2 plugin calls, Vault Transit included.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"op"}),
		KeyVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_kms_key_version",
			Help: "Version of the Vault Transit key the KMS plugin wraps new DEK seeds with (the key ID's v<N>).",
		}),
		Healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_kms_healthy",
			Help: "1 when the KMS plugin's last status check (encrypt and decrypt of a probe) passed, else 0.",
		}),
	}
	var err error
	if m.Requests, err = promreg.Register(reg, m.Requests); err != nil {
		return nil, fmt.Errorf("registering kms metrics: %w", err)
	}
	if m.Duration, err = promreg.Register(reg, m.Duration); err != nil {
		return nil, fmt.Errorf("registering kms metrics: %w", err)
	}
	if m.KeyVersion, err = promreg.Register(reg, m.KeyVersion); err != nil {
		return nil, fmt.Errorf("registering kms metrics: %w", err)
	}
	if m.Healthy, err = promreg.Register(reg, m.Healthy); err != nil {
		return nil, fmt.Errorf("registering kms metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) observe(op string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.Duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	m.Requests.WithLabelValues(op, result(err)).Inc()
}

func (m *Metrics) setKeyVersion(v int) {
	if m != nil {
		m.KeyVersion.Set(float64(v))
	}
}

func (m *Metrics) setHealthy(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.Healthy.Set(1)
	} else {
		m.Healthy.Set(0)
	}
}

func result(err error) string {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, ErrNotTransitCiphertext):
		return ResultInvalid
	case errors.Is(err, vault.ErrForbidden):
		return ResultForbidden
	case vault.StatusCode(err) != 0:
		return ResultRejected
	default:
		return ResultUnreached
	}
}
