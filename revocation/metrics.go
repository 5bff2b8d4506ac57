// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package revocation

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward-io/keyward/internal/promreg"
)

// metrics are the revoker's collectors. The gauges are set by the leader
// only; other replicas report 0.
type metrics struct {
	total   *prometheus.CounterVec
	pending prometheus.Gauge
	overdue prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_revocations_total",
			Help: "Revocation attempts by result (revoked, expired, unknown, rejected, error, abandoned).",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_revocations_pending",
			Help: "Serials waiting to be revoked: in their grace period or being retried (leading replica only).",
		}),
		overdue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_revocations_overdue_seconds",
			Help: "How long past its due time the oldest pending revocation is; 0 when none is overdue (leading replica only).",
		}),
	}
	var err error
	if m.total, err = promreg.Register(reg, m.total); err != nil {
		return nil, err
	}
	if m.pending, err = promreg.Register(reg, m.pending); err != nil {
		return nil, err
	}
	if m.overdue, err = promreg.Register(reg, m.overdue); err != nil {
		return nil, err
	}
	for _, r := range []string{ResultRevoked, ResultExpired, ResultUnknown, ResultRejected, ResultError, ResultAbandoned} {
		m.total.WithLabelValues(r)
	}
	return m, nil
}
