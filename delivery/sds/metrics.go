// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package sds

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward-io/keyward/internal/promreg"
)

// Reasons a requested resource name is not served
// (keyward_sds_unserved_requests_total{reason}).
const (
	// ReasonNotReferenced: the name is not one of an allowed Secret (no
	// selected Gateway, ListenerSet or --name references it), or is not a
	// resource name at all.
	ReasonNotReferenced = "not_referenced"
	// ReasonNotDeliveredYet: the Secret is allowed but its key has not been
	// read from custody yet; the proxy gets it as soon as it is.
	ReasonNotDeliveredYet = "not_delivered_yet"
	// ReasonWildcard: the request asked for every resource ("*"); SDS
	// clients name their secrets, so the stream is refused.
	ReasonWildcard = "wildcard"
)

// Reasons a Secret reference is not followed
// (keyward_sds_ignored_references{reason}).
const (
	// IgnoredCrossNamespace: the Secret is in another namespace than the
	// Gateway or ListenerSet naming it (that needs a ReferenceGrant, which
	// `keyward sds` does not evaluate).
	IgnoredCrossNamespace = "cross_namespace"
	// IgnoredListenerSetNotAllowed: the ListenerSet's parent Gateway does
	// not allow ListenerSets from its namespace (spec.allowedListeners).
	IgnoredListenerSetNotAllowed = "listenerset_not_allowed"
)

// Metrics are the SDS server's metrics. The agent feeding the Sink has its
// own (keyward_agent_*, sink="sds").
type Metrics struct {
	resources prometheus.Gauge
	allowed   prometheus.Gauge
	streams   prometheus.Gauge
	pushes    prometheus.Counter
	unserved  *prometheus.CounterVec
	ignored   *prometheus.GaugeVec
}

// NewMetrics returns the metrics registered on reg (nil: not registered).
// Registering twice on one registry reuses the first collectors.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		resources: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_sds_resources",
			Help: "SDS resources (certificate and key) the server holds: two names per delivered Secret.",
		}),
		allowed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_sds_allowed_secrets",
			Help: "Secrets the server may serve: named by --name or referenced by a selected Gateway or its ListenerSets.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_sds_streams",
			Help: "Open SDS streams (state of the world and delta).",
		}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_sds_pushes_total",
			Help: "SDS responses sent with at least one secret.",
		}),
		unserved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_sds_unserved_requests_total",
			Help: "Requested SDS resource names not served, by reason (not_referenced, not_delivered_yet, wildcard); counted once per stream and name.",
		}, []string{"reason"}),
		ignored: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyward_sds_ignored_references",
			Help: "Secret references of the selected Gateways and ListenerSets not followed, by reason (cross_namespace, listenerset_not_allowed).",
		}, []string{"reason"}),
	}
	var err error
	for _, g := range []*prometheus.Gauge{&m.resources, &m.allowed, &m.streams} {
		if *g, err = promreg.Register(reg, *g); err != nil {
			return nil, err
		}
	}
	if m.pushes, err = promreg.Register(reg, m.pushes); err != nil {
		return nil, err
	}
	if m.unserved, err = promreg.Register(reg, m.unserved); err != nil {
		return nil, err
	}
	if m.ignored, err = promreg.Register(reg, m.ignored); err != nil {
		return nil, err
	}
	// Every reason exists from the start, so rate() sees the first one.
	for _, r := range []string{ReasonNotReferenced, ReasonNotDeliveredYet, ReasonWildcard} {
		m.unserved.WithLabelValues(r)
	}
	for _, r := range []string{IgnoredCrossNamespace, IgnoredListenerSetNotAllowed} {
		m.ignored.WithLabelValues(r)
	}
	return m, nil
}

// orNew is m, or unregistered metrics when m is nil.
func (m *Metrics) orNew() *Metrics {
	if m != nil {
		return m
	}
	m, _ = NewMetrics(nil) // cannot fail without a registry
	return m
}
