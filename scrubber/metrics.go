// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward-io/keyward/internal/promreg"
)

// Values of the result label of keyward_scrub_total. The set is closed so the
// series count stays bounded.
const (
	// ResultScrubbed: key moved to custody and the Secret redacted.
	ResultScrubbed = "scrubbed"
	// ResultAlreadyScrubbed: placeholder seen again; nothing to do.
	ResultAlreadyScrubbed = "already_scrubbed"
	// ResultDryRun: plan computed for a dry-run request; nothing written.
	ResultDryRun = "dry_run"
	// ResultInvalid: the Secret's key or certificate is unusable (planning error).
	ResultInvalid = "invalid"
	// ResultConflict: the custody record changed concurrently (check-and-set).
	ResultConflict = "conflict"
	// ResultStoreError: the custody write failed otherwise.
	ResultStoreError = "store_error"
	// ResultUpdateError: custody written but the Secret update failed (watcher).
	ResultUpdateError = "update_error"
)

// Metrics are the scrubber's Prometheus collectors. Webhook and watcher share
// one instance; NewMetrics on a registry that already holds them returns the
// registered collectors.
type Metrics struct {
	// ScrubDuration: seconds from plan to confirmed custody write, by path (webhook|watcher).
	ScrubDuration *prometheus.HistogramVec
	// KeyExposure: seconds a private key sat in the Kubernetes API before the
	// watcher redacted it (the webhook path has no exposure).
	KeyExposure prometheus.Histogram
	// NextPrivateKeyLifetime: seconds from creation to deletion of cert-manager's
	// temporary next-private-key Secrets.
	NextPrivateKeyLifetime prometheus.Histogram
	// NextPrivateKeys: cert-manager next-private-key Secrets currently in
	// the API, as the leading replica's watcher sees them (issuances in
	// flight, each with its key exposed until it completes; 0 on replicas
	// that do not lead).
	NextPrivateKeys prometheus.Gauge
	// ScrubTotal counts scrub attempts by path and result (Result* constants).
	ScrubTotal *prometheus.CounterVec
	// CustodyWriteErrors counts failed custody writes (conflicts included).
	CustodyWriteErrors prometheus.Counter
	// StaleVersionHints counts writes whose expected version was stale, so
	// they read the record's current version and wrote again.
	StaleVersionHints prometheus.Counter
	// AuditDuration: seconds one custody audit took (all namespaces).
	AuditDuration prometheus.Histogram
	// AuditStoreCalls counts the custody store calls the audit made, by
	// call (list: one per custody namespace with a listing store; metadata:
	// one per placeholder missing from the listing, or per placeholder
	// with a store that cannot list).
	AuditStoreCalls *prometheus.CounterVec
	// AuditPlaceholders: placeholders the last audit checked.
	AuditPlaceholders prometheus.Gauge
}

// NewMetrics creates the collectors and registers them on reg (typically
// controller-runtime's metrics.Registry). A nil reg leaves them unregistered,
// which tests use.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	exposureBuckets := []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 6 * 3600, 24 * 3600}
	m := &Metrics{
		ScrubDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_scrub_duration_seconds",
			Help:    "Time to plan a scrub and write the custody record, by path (webhook or watcher).",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"path"}),
		KeyExposure: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyward_key_exposure_seconds",
			Help:    "Time a private key was stored in a Secret before the watcher moved it to custody (since the last write of the Secret's data, to the second).",
			Buckets: exposureBuckets,
		}),
		NextPrivateKeyLifetime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyward_next_private_key_lifetime_seconds",
			Help:    "Lifetime of cert-manager next-private-key Secrets, from creation to deletion.",
			Buckets: exposureBuckets,
		}),
		NextPrivateKeys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_next_private_keys",
			Help: "cert-manager next-private-key Secrets currently in the API, as the leading replica's watcher sees them (issuances in flight; 0 on other replicas).",
		}),
		ScrubTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_scrub_total",
			Help: "Scrub attempts by path (webhook or watcher) and result.",
		}, []string{"path", "result"}),
		CustodyWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_custody_write_errors_total",
			Help: "Custody record writes that failed, check-and-set conflicts included.",
		}),
		StaleVersionHints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_custody_version_hint_misses_total",
			Help: "Custody writes whose expected record version (from the admission request) was stale and cost an extra metadata read.",
		}),
		AuditDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyward_custody_audit_duration_seconds",
			Help:    "Time one custody audit took, over every custody namespace.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}),
		AuditStoreCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_custody_audit_store_calls_total",
			Help: "Custody store calls made by the custody audit, by call (list or metadata).",
		}, []string{"call"}),
		AuditPlaceholders: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_custody_audit_placeholders",
			Help: "Placeholder Secrets the last custody audit checked.",
		}),
	}
	var err error
	if m.ScrubDuration, err = promreg.Register(reg, m.ScrubDuration); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	if m.KeyExposure, err = promreg.Register(reg, m.KeyExposure); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	if m.NextPrivateKeyLifetime, err = promreg.Register(reg, m.NextPrivateKeyLifetime); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	if m.NextPrivateKeys, err = promreg.Register(reg, m.NextPrivateKeys); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	if m.ScrubTotal, err = promreg.Register(reg, m.ScrubTotal); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	if m.CustodyWriteErrors, err = promreg.Register(reg, m.CustodyWriteErrors); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	if m.StaleVersionHints, err = promreg.Register(reg, m.StaleVersionHints); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	return m.registerAudit(reg)
}

func (m *Metrics) registerAudit(reg prometheus.Registerer) (*Metrics, error) {
	var err error
	if m.AuditDuration, err = promreg.Register(reg, m.AuditDuration); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	if m.AuditStoreCalls, err = promreg.Register(reg, m.AuditStoreCalls); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	if m.AuditPlaceholders, err = promreg.Register(reg, m.AuditPlaceholders); err != nil {
		return nil, fmt.Errorf("registering scrubber metrics: %w", err)
	}
	return m, nil
}
