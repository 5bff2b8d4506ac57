// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package sdsserver is `keyward sds`: an Envoy SDS server fed from custody,
// run as a sidecar of an Envoy-based gateway's proxy. It serves, on a
// pod-local unix socket, the certificates and keys of the Secrets its
// proxy's Gateways reference (package delivery/sds), read from Vault
// custody by the delivery agent only when a Secret's custody version
// changes.
package sdsserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/keyward-io/keyward/cmd/keyward/agent"
	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/sds"
	"github.com/keyward-io/keyward/internal/httpserve"
)

// DefaultSocket is where the server listens unless --socket says otherwise.
const DefaultSocket = "/var/run/keyward/sds.sock"

// Options are `keyward sds`'s flags.
type Options struct {
	// Shared holds the flags shared with `keyward agent` (Kubernetes,
	// Vault, custody, health, metrics, logging); only those are registered.
	Shared *agent.Options

	Socket         string
	Gateways       []string
	GatewayClasses []string
	Names          []string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{Shared: agent.NewOptions(), Socket: DefaultSocket}
}

// AddFlags registers the flags on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Socket, "socket", o.Socket, "unix socket the proxy's SDS config names (a stale socket is replaced; mode 0660)")
	fs.StringArrayVar(&o.Gateways, "gateway", o.Gateways, "Gateway served by this proxy, NAMESPACE/NAME: the Secrets it and its ListenerSets reference are served; repeatable")
	fs.StringArrayVar(&o.GatewayClasses, "gateway-class", o.GatewayClasses, "serve the Secrets of every Gateway of this GatewayClass; repeatable")
	fs.StringArrayVar(&o.Names, "name", o.Names, "Secret served whatever references it, NAMESPACE/NAME or sds://NAMESPACE/NAME (Istio credentialName); repeatable")
	o.Shared.AddSharedFlags(fs)
}

// selection parses the selection flags, reporting every bad value.
func (o *Options) selection() (sds.Selection, error) {
	var sel sds.Selection
	var errs []error
	for _, g := range o.Gateways {
		k, ok := sds.SecretFor(g) // the same NAMESPACE/NAME form
		if !ok || g != k.String() {
			errs = append(errs, fmt.Errorf("--gateway %q is not NAMESPACE/NAME", g))
			continue
		}
		sel.Gateways = append(sel.Gateways, k)
	}
	for _, c := range o.GatewayClasses {
		if c == "" {
			errs = append(errs, errors.New("--gateway-class is empty"))
			continue
		}
		sel.GatewayClasses = append(sel.GatewayClasses, c)
	}
	for _, n := range o.Names {
		k, ok := sds.SecretFor(n)
		if !ok {
			errs = append(errs, fmt.Errorf("--name %q is not NAMESPACE/NAME or sds://NAMESPACE/NAME", n))
			continue
		}
		sel.Names = append(sel.Names, k)
	}
	return sel, errors.Join(errs...)
}

// Validate reports every configuration error at once.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Gateways)+len(o.GatewayClasses)+len(o.Names) == 0 {
		errs = append(errs, errors.New("nothing to serve: give at least one --gateway, --gateway-class or --name"))
	}
	if _, err := o.selection(); err != nil {
		errs = append(errs, err)
	}
	if o.Socket == "" {
		errs = append(errs, errors.New("--socket is required"))
	}
	if err := o.Shared.ValidateShared(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// clients are the Kubernetes clients: metadata for the placeholder
// Secrets, Gateway API for the Gateways (nil when none is selected).
func clients(cfg *rest.Config, o *Options, sel sds.Selection) (metadata.Interface, gwclient.Interface, error) {
	cfg, err := o.Shared.RESTConfig(cfg, "keyward-sds")
	if err != nil {
		return nil, nil, err
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	if len(sel.Gateways)+len(sel.GatewayClasses) == 0 {
		return md, nil, nil
	}
	gw, err := gwclient.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway API client: %w", err)
	}
	return md, gw, nil
}

// Run serves SDS until ctx ends. cfg may be nil: then --kubeconfig or the
// in-cluster configuration is used.
func Run(ctx context.Context, cfg *rest.Config, o *Options, log logr.Logger, reg *prometheus.Registry) error {
	if err := o.Validate(); err != nil {
		return err
	}
	sel, _ := o.selection()
	md, gw, err := clients(cfg, o, sel)
	if err != nil {
		return err
	}
	session, reader, closeReader, err := o.Shared.StoreReader(ctx, log)
	if err != nil {
		return err
	}
	defer closeReader()
	reg = httpserve.Registry(reg)
	m, err := sds.NewMetrics(reg)
	if err != nil {
		return err
	}
	sink := sds.NewSink(sds.SinkOptions{Logger: log.WithName("sink"), Metrics: m})
	ag, err := delivery.NewAgent(delivery.AgentOptions{
		Dynamic: true, Metadata: md, Reader: reader, Sinks: []delivery.Sink{sink}, Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	tracker, err := sds.NewTracker(sds.TrackerOptions{Selection: sel, Client: gw, Target: sds.Serving(ag, sink), Logger: log.WithName("gateways"), Metrics: m})
	if err != nil {
		return err
	}
	lis, err := sds.Listen(o.Socket)
	if err != nil {
		return err
	}
	srv := sds.NewServer(sink, sds.ServerOptions{Logger: log.WithName("server"), Metrics: m})
	g, ctx := errgroup.WithContext(ctx)
	if session != nil {
		g.Go(func() error { session.Run(ctx); return nil })
	}
	g.Go(func() error { return ag.Run(ctx) })
	g.Go(func() error { return tracker.Run(ctx) })
	g.Go(func() error { return srv.Serve(ctx, lis) })
	httpserve.Serve(ctx, g, o.Shared.HealthAddr, healthHandler(ag, tracker), "health")
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	httpserve.Serve(ctx, g, o.Shared.MetricsAddr, mux, "metrics")
	log.Info("keyward sds started", "socket", o.Socket, "gateways", sel.Gateways, "gatewayClasses", sel.GatewayClasses, "names", sel.Names)
	return g.Wait()
}

// healthHandler is the agent's /healthz and /status, plus /livez, and a
// /readyz that also waits for the first view of the Gateways (before it,
// "every allowed Secret delivered" holds for an empty set) and then for
// every allowed custody placeholder to be delivered: a referenced Secret
// that does not exist (not issued yet, or a listener cert-manager ignores)
// or is not in custody does not hold the proxy back (Agent.ReadyServable).
func healthHandler(a *delivery.Agent, t *sds.Tracker) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", delivery.Handler(a))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !t.Synced():
			http.Error(w, "the Gateways have not been read yet", http.StatusServiceUnavailable)
		case !a.ReadyServable():
			http.Error(w, "not every allowed custody Secret has been delivered yet", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ok\n"))
		}
	})
	return mux
}
