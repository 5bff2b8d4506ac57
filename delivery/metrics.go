// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward-io/keyward/internal/promreg"
)

type agentMetrics struct {
	latency  *prometheus.HistogramVec
	failures *prometheus.CounterVec
	version  *prometheus.GaugeVec
	expiry   *prometheus.GaugeVec
}

func newAgentMetrics(reg prometheus.Registerer) (*agentMetrics, error) {
	m := &agentMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_agent_delivery_latency_seconds",
			Help:    "Time from Vault storing a custody record version to a sink serving it; observed once per sink and version, for versions stored while the agent runs (not for re-deliveries after a restart or a resync).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"sink"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_agent_delivery_failures_total",
			Help: "Failed delivery attempts, by sink (\"vault\" for failed custody reads) and Secret.",
		}, []string{"sink", "namespace", "secret"}),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyward_agent_delivered_version",
			Help: "Custody record version every sink serves for the Secret.",
		}, []string{"namespace", "secret"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyward_agent_certificate_expiry_seconds",
			Help: "Expiry (Unix time) of the certificate every sink serves for the Secret.",
		}, []string{"namespace", "secret"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.latency, err = promreg.Register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.failures, err = promreg.Register(reg, m.failures); err != nil {
		return nil, err
	}
	if m.version, err = promreg.Register(reg, m.version); err != nil {
		return nil, err
	}
	if m.expiry, err = promreg.Register(reg, m.expiry); err != nil {
		return nil, err
	}
	return m, nil
}
