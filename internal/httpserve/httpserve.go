// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package httpserve runs the small HTTP servers of Keyward's side processes
// (`keyward agent`'s health and metrics, `keyward kms`'s metrics and
// probes) inside an errgroup, shut down when the group's context ends.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
)

// Serve serves h on addr in g until ctx ends, then shuts the server down
// (5 s for open requests). An empty addr or "0" disables it; what names the
// server in errors ("health", "metrics").
func Serve(ctx context.Context, g *errgroup.Group, addr string, h http.Handler, what string) {
	if addr == "" || addr == "0" {
		return
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		return nil
	})
	g.Go(func() error {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s server on %s: %w", what, addr, err)
		}
		return nil
	})
}

// Registry returns reg, or when it is nil a new registry with the Go
// runtime and process collectors: what a side process exposes on /metrics
// besides its own metrics.
func Registry(reg *prometheus.Registry) *prometheus.Registry {
	if reg != nil {
		return reg
	}
	reg = prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
