// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// DefaultWriteTimeout bounds a custody write (a check-and-set write, plus a
// metadata read when the expected version is stale) on the admission path.
const DefaultWriteTimeout = 5 * time.Second

// Scrubber moves a Secret's key to custody: plan, write, and only then hand
// back the redacted Secret. The webhook and the watcher both use it, so the
// two paths cannot drift apart.
type Scrubber struct {
	store        custody.Store
	clock        clock.PassiveClock
	metrics      *Metrics
	writeTimeout time.Duration
	observers    []func(placeholder *corev1.Secret, meta custody.Metadata)
}

// OnCustodyWrite registers f to be called, synchronously, after every
// confirmed custody write (or confirmed reuse of the current record) with
// the placeholder Secret Scrub returns and the record's metadata, Version
// set. f must be fast and must not keep placeholder. The custody guard uses
// it to learn about records without reading them back from Vault. Call it
// before the Scrubber is used.
func (s *Scrubber) OnCustodyWrite(f func(placeholder *corev1.Secret, meta custody.Metadata)) {
	s.observers = append(s.observers, f)
}

func (s *Scrubber) notify(placeholder *corev1.Secret, meta custody.Metadata, version int) {
	meta.Version, meta.Torn = version, false
	for _, f := range s.observers {
		f(placeholder, meta)
	}
}

// NewScrubber returns a Scrubber. metrics may be nil (no metrics); a zero
// writeTimeout means DefaultWriteTimeout.
func NewScrubber(store custody.Store, clk clock.PassiveClock, metrics *Metrics, writeTimeout time.Duration) (*Scrubber, error) {
	if store == nil || clk == nil {
		return nil, errors.New("scrubber needs a store and a clock")
	}
	if writeTimeout <= 0 {
		writeTimeout = DefaultWriteTimeout
	}
	return &Scrubber{store: store, clock: clk, metrics: metrics, writeTimeout: writeTimeout}, nil
}

// Store returns the custody store the Scrubber writes to.
func (s *Scrubber) Store() custody.Store { return s.store }

// Clock returns the Scrubber's clock.
func (s *Scrubber) Clock() clock.PassiveClock { return s.clock }

// Metrics returns the Scrubber's metrics, possibly nil.
func (s *Scrubber) Metrics() *Metrics { return s.metrics }

// Outcome is the result of Scrub.
type Outcome struct {
	// Plan is the plan Scrub followed.
	Plan *ScrubPlan
	// Result is one of the Result* constants.
	Result string
	// Version is the custody version written (ActionScrub, not dry-run).
	Version int
	// Secret is the redacted Secret to persist; nil when nothing must change
	// (ignored, already scrubbed, dry-run) or on error.
	Secret *corev1.Secret
}

// ScrubRequest is the input of Scrub.
type ScrubRequest struct {
	// Secret is the Secret as it would be persisted. It is not modified.
	Secret *corev1.Secret
	// Strict selects strict mode (certificates also moved to custody).
	Strict bool
	// By is ByWebhook, ByWatcher or ByAdoption.
	By string
	// DryRun plans without writing anything.
	DryRun bool
	// ExpectedVersion, when set, is the custody record's version the caller
	// believes current: 0 for a Secret being created, the placeholder's
	// custody-version annotation for an update. The write tries it as its
	// check-and-set version first and saves the metadata read; when it is
	// stale, the write falls back to reading the current version, exactly as
	// when it is nil.
	ExpectedVersion *int
	// ExpectedKeySHA256 and ExpectedSerial, with ExpectedVersion, describe
	// the record the replaced placeholder names. When the Secret carries
	// that same key and certificate again (cert-manager re-applying the
	// Secret, the apiserver retrying admission), the record is checked
	// with one metadata read and reused instead of written again.
	ExpectedKeySHA256, ExpectedSerial string
	// ExpectedVersionOnly makes ExpectedVersion binding: the write uses it
	// as its check-and-set version and does not fall back to the current
	// one, so a stale hint fails with custody.ErrConflict (ResultConflict,
	// counted as a hint miss, not as a write error). The watcher sets it
	// when it decides on its cached copy of a Secret: a hint that does not
	// hold means the cache lags, and it reads the live Secret before it
	// writes again. Without ExpectedVersion it has no effect.
	ExpectedVersionOnly bool
}

// Scrub plans and, for ActionScrub, writes the custody record with
// check-and-set against the record's current version. Outcome.Secret is set
// only once the write is confirmed. Errors name the Secret and wrap
// custody.ErrConflict, custody.ErrNotFound or the planning errors as appropriate.
func (s *Scrubber) Scrub(ctx context.Context, req ScrubRequest) (Outcome, error) {
	start := s.clock.Now()
	sec := req.Secret
	plan, err := Plan(sec, PlanOptions{
		Strict: req.Strict,
		Now:    start,
		By:     req.By,
		Path:   s.store.Path(sec.Namespace, sec.Name),
	})
	if err != nil {
		s.count(req.By, ResultInvalid)
		return Outcome{Result: ResultInvalid}, err
	}
	out := Outcome{Plan: plan}
	switch {
	case plan.Action == ActionIgnore:
		return out, nil
	case plan.Action == ActionAlreadyScrubbed:
		out.Result = ResultAlreadyScrubbed
		s.count(req.By, out.Result)
		return out, nil
	case req.DryRun:
		out.Result = ResultDryRun
		s.count(req.By, out.Result)
		return out, nil
	}

	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	if v, ok := s.unchanged(ctx, req, plan.Record); ok {
		logf.FromContext(ctx).V(1).Info("key already in custody at the version the placeholder names; not written again",
			"secret", sec.Namespace+"/"+sec.Name, "version", v, "by", req.By)
		out.Version = v
		out.Result = ResultScrubbed
		out.Secret = plan.Apply(sec, v)
		s.notify(out.Secret, plan.Record.Meta, v)
		s.count(req.By, out.Result)
		return out, nil
	}
	binding := req.ExpectedVersionOnly && req.ExpectedVersion != nil && *req.ExpectedVersion >= 0
	version, err := s.write(ctx, plan.Record, req.ExpectedVersion, binding)
	if err != nil {
		out.Result = ResultStoreError
		if errors.Is(err, custody.ErrConflict) {
			out.Result = ResultConflict
			if binding {
				// A binding hint that did not hold: the caller decides
				// again on fresher input; nothing failed yet.
				return out, err
			}
		}
		if s.metrics != nil {
			s.metrics.CustodyWriteErrors.Inc()
		}
		s.count(req.By, out.Result)
		return out, err
	}
	if s.metrics != nil {
		s.metrics.ScrubDuration.WithLabelValues(req.By).Observe(s.clock.Since(start).Seconds())
	}
	logf.FromContext(ctx).V(1).Info("key moved to custody",
		"secret", sec.Namespace+"/"+sec.Name, "path", plan.Annotations[custody.AnnotationPath],
		"version", version, "keySHA256", plan.Record.Meta.KeySHA256, "serial", plan.Record.Meta.Serial, "by", req.By)
	out.Version = version
	out.Result = ResultScrubbed
	out.Secret = plan.Apply(sec, version)
	s.notify(out.Secret, plan.Record.Meta, version)
	s.count(req.By, out.Result)
	return out, nil
}

// unchanged reports whether the record the replaced placeholder names
// already holds rec's key and certificate, and is still the current one.
func (s *Scrubber) unchanged(ctx context.Context, req ScrubRequest, rec custody.Record) (int, bool) {
	if req.ExpectedVersion == nil || *req.ExpectedVersion < 1 || req.ExpectedKeySHA256 == "" ||
		!strings.EqualFold(req.ExpectedKeySHA256, rec.Meta.KeySHA256) || !strings.EqualFold(req.ExpectedSerial, rec.Meta.Serial) {
		return 0, false
	}
	md, err := s.store.Metadata(ctx, rec.Namespace, rec.Name)
	if err != nil || md.Torn || md.Version != *req.ExpectedVersion ||
		!strings.EqualFold(md.KeySHA256, rec.Meta.KeySHA256) || !strings.EqualFold(md.Serial, rec.Meta.Serial) {
		return 0, false
	}
	return md.Version, true
}

// write writes rec with check-and-set against the record's current version,
// so a concurrent writer makes this write fail instead of being silently
// overwritten. With an expected version it tries that first (one Vault
// round trip fewer); on a conflict, or without one, it reads the current
// version and writes against it. With only, a conflict on the expected
// version is returned as is.
func (s *Scrubber) write(ctx context.Context, rec custody.Record, expected *int, only bool) (int, error) {
	if expected != nil && *expected >= 0 {
		v, err := s.store.Put(ctx, rec, *expected)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, custody.ErrConflict) {
			return 0, err // Put names the record
		}
		if s.metrics != nil {
			s.metrics.StaleVersionHints.Inc()
		}
		if only {
			return 0, err
		}
	}
	cas := 0
	md, err := s.store.Metadata(ctx, rec.Namespace, rec.Name)
	switch {
	case err == nil:
		cas = md.Version
	case errors.Is(err, custody.ErrNotFound):
	default:
		return 0, fmt.Errorf("writing custody record for secret %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	// Put's errors name the record already.
	return s.store.Put(ctx, rec, cas)
}

func (s *Scrubber) count(by, result string) {
	if s.metrics != nil {
		s.metrics.ScrubTotal.WithLabelValues(by, result).Inc()
	}
}
