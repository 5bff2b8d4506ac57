// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package sds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/config"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServerOptions configure NewServer.
type ServerOptions struct {
	// Logger; default discard. Names the proxy asks for and cannot get are
	// logged at V(1).
	Logger logr.Logger
	// Metrics; default unregistered. Pass the Sink's.
	Metrics *Metrics
	// ShutdownGracePeriod bounds how long Serve waits for open streams
	// when its context ends; default 5s.
	ShutdownGracePeriod time.Duration
}

// Server serves a Sink's cache over gRPC: only the SDS service
// (envoy.service.secret.v3.SecretDiscoveryService), StreamSecrets (state of
// the world) and DeltaSecrets. A request gets the allowed, delivered
// Secrets among the names it asks for and nothing else; wildcard requests
// are refused.
type Server struct {
	sink  *Sink
	m     *Metrics
	log   logr.Logger
	grace time.Duration

	mu sync.Mutex
	// seen holds, per open stream, the names already counted as unserved
	// and why: Envoy repeats its names on every ACK, the metric counts a
	// name once per stream and reason.
	seen map[int64]map[string]string
}

// NewServer returns a server for sink's cache.
func NewServer(sink *Sink, o ServerOptions) *Server {
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.ShutdownGracePeriod <= 0 {
		o.ShutdownGracePeriod = 5 * time.Second
	}
	return &Server{sink: sink, m: o.Metrics.orNew(), log: o.Logger, grace: o.ShutdownGracePeriod, seen: map[int64]map[string]string{}}
}

// Listen listens on the unix socket path for Serve: a socket left by a
// killed predecessor is removed first, and the socket is made 0660 (the
// proxy shares the pod and a group with the server; nothing else may
// connect).
func Listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	return lis, nil
}

// Serve serves SDS on lis until ctx ends, then stops (open streams get
// ShutdownGracePeriod to end) and returns nil. It closes lis.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	gs := grpc.NewServer()
	xds := serverv3.NewServer(ctx, s.sink.cache, callbacks{s}, config.DeactivateLegacyWildcard())
	secretv3.RegisterSecretDiscoveryServiceServer(gs, sdsOnly{xds: xds})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(s.grace):
			gs.Stop()
		}
	}()
	s.log.Info("serving SDS", "address", lis.Addr().String())
	if err := gs.Serve(lis); err != nil && ctx.Err() == nil {
		return fmt.Errorf("serving SDS on %s: %w", lis.Addr(), err)
	}
	return nil
}

// sdsOnly exposes the two streaming SDS methods of the go-control-plane
// server; FetchSecrets (unary) is not served.
type sdsOnly struct {
	secretv3.UnimplementedSecretDiscoveryServiceServer
	xds serverv3.Server
}

func (s sdsOnly) StreamSecrets(st secretv3.SecretDiscoveryService_StreamSecretsServer) error {
	return s.xds.StreamSecrets(st)
}

func (s sdsOnly) DeltaSecrets(st secretv3.SecretDiscoveryService_DeltaSecretsServer) error {
	return s.xds.DeltaSecrets(st)
}

// check counts and logs the names of one request that are not served, once
// per stream, name and reason; unsubscribed names are forgotten. It refuses
// a wildcard request.
func (s *Server) check(stream int64, node *corev3.Node, names, unsubscribed []string) error {
	if slices.Contains(names, "*") {
		s.m.unserved.WithLabelValues(ReasonWildcard).Inc()
		s.log.V(1).Info("refusing a wildcard SDS request", "stream", stream, "node", node.GetId())
		return status.Error(codes.InvalidArgument, "keyward sds serves named secrets only: a wildcard request is refused")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.seen[stream]
	if seen == nil {
		seen = map[string]string{}
		s.seen[stream] = seen
	}
	for _, n := range unsubscribed {
		delete(seen, n)
	}
	for _, n := range names {
		reason := s.sink.unserved(n)
		if reason == "" {
			delete(seen, n) // counted again if it ever stops being served
			continue
		}
		if seen[n] == reason {
			continue
		}
		seen[n] = reason
		s.m.unserved.WithLabelValues(reason).Inc()
		s.log.V(1).Info("SDS resource requested but not served", "name", n, "reason", reason, "stream", stream, "node", node.GetId())
	}
	return nil
}

func (s *Server) opened() { s.m.streams.Inc() }

func (s *Server) closed(stream int64) {
	s.m.streams.Dec()
	s.mu.Lock()
	delete(s.seen, stream)
	s.mu.Unlock()
}

// nack logs a proxy's rejection of what it was sent (its message is
// Envoy's; it names the resource, never its content).
func (s *Server) nack(stream int64, node *corev3.Node, names []string, detail *status.Status) {
	s.log.Info("the proxy rejected an SDS update", "stream", stream, "node", node.GetId(), "names", names, "error", detail.Message())
}

// callbacks are the go-control-plane server's hooks into Server.
type callbacks struct{ s *Server }

var _ serverv3.Callbacks = callbacks{}

func (c callbacks) OnStreamOpen(context.Context, int64, string) error { c.s.opened(); return nil }
func (c callbacks) OnStreamClosed(id int64, _ *corev3.Node)           { c.s.closed(id) }
func (c callbacks) OnDeltaStreamOpen(context.Context, int64, string) error {
	c.s.opened()
	return nil
}
func (c callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) { c.s.closed(id) }

func (c callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	if req.GetErrorDetail() != nil {
		c.s.nack(id, req.GetNode(), req.GetResourceNames(), status.FromProto(req.GetErrorDetail()))
	}
	return c.s.check(id, req.GetNode(), req.GetResourceNames(), nil)
}

func (c callbacks) OnStreamResponse(_ context.Context, _ int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	if len(resp.GetResources()) > 0 {
		c.s.m.pushes.Inc()
	}
}

func (c callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	if req.GetErrorDetail() != nil {
		c.s.nack(id, req.GetNode(), req.GetResourceNamesSubscribe(), status.FromProto(req.GetErrorDetail()))
	}
	return c.s.check(id, req.GetNode(), req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe())
}

func (c callbacks) OnStreamDeltaResponse(_ int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	if len(resp.GetResources()) > 0 {
		c.s.m.pushes.Inc()
	}
}

// OnFetchRequest refuses REST/unary fetches (not served; kept for the
// interface).
func (c callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error {
	return status.Error(codes.Unimplemented, "fetch is not served")
}

func (c callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}
