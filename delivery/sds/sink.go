// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package sds

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	cachetypes "github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keyward-io/keyward/delivery"
)

// SinkOptions configure NewSink.
type SinkOptions struct {
	// Logger; default discard.
	Logger logr.Logger
	// Metrics; default unregistered.
	Metrics *Metrics
}

// Sink is the delivery.Sink of `keyward sds`: Deliver puts a Secret's
// certificate chain and key, as an envoy.extensions.transport_sockets.tls.v3.Secret,
// into the cache the Server serves, under both ResourceNames. Only allowed
// Secrets (Allow) are kept; Remove takes a Secret out of the cache. What
// was delivered stays in the cache, so the proxy (and a proxy reconnecting)
// keeps getting the last key while custody is unreachable.
//
// The cache's versions change exactly when a Secret's custody version or
// key changes: delta streams get a per-resource hash of its content, state
// of the world streams the cache version, which Deliver bumps only for a
// new custody revision.
type Sink struct {
	cache *cachev3.LinearCache
	m     *Metrics
	log   logr.Logger

	// writeMu orders Allow, Remove and Deliver, so a delivery racing with
	// a removal never puts the removed Secret back.
	writeMu sync.Mutex
	// mu guards the maps; the server's callbacks read them under RLock
	// (never while the cache notifies streams).
	mu      sync.RWMutex
	allowed map[types.NamespacedName]bool
	served  map[types.NamespacedName]string // custody revision in the cache
}

var _ delivery.Sink = (*Sink)(nil)

// NewSink returns an empty sink: nothing allowed, nothing served.
func NewSink(o SinkOptions) *Sink {
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return &Sink{
		cache:   cachev3.NewLinearCache(resourcev3.SecretType),
		m:       o.Metrics.orNew(),
		log:     o.Logger,
		allowed: map[types.NamespacedName]bool{},
		served:  map[types.NamespacedName]string{},
	}
}

// Name implements delivery.Sink.
func (s *Sink) Name() string { return "sds" }

// Deliver implements delivery.Sink: b becomes what both of its resource
// names serve, pushed to the streams that asked for them. A Secret that is
// not allowed (any more) is dropped without error; a bundle whose key does
// not match its certificate is refused (delivery.ErrPermanent), and the
// previous one stays.
func (s *Sink) Deliver(_ context.Context, b *delivery.Bundle) error {
	if _, err := b.X509KeyPair(); err != nil {
		return errors.Join(delivery.ErrPermanent, err)
	}
	k := types.NamespacedName{Namespace: b.Namespace, Name: b.Name}
	rev := strconv.Itoa(b.Version) + "/" + b.KeySHA256
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.RLock()
	allowed, same := s.allowed[k], s.served[k] == rev
	s.mu.RUnlock()
	if !allowed {
		s.log.V(1).Info("not keeping a delivery for a Secret no longer allowed", "secret", k)
		return nil
	}
	if same { // a re-delivery (agent restart of the loop): no new version for the proxy
		return nil
	}
	res := map[string]cachetypes.Resource{}
	for _, n := range ResourceNames(k) {
		res[n] = secretResource(n, b)
	}
	if err := s.cache.UpdateResources(res, nil); err != nil {
		return fmt.Errorf("updating the SDS cache for %s: %w", b, err)
	}
	s.mu.Lock()
	s.served[k] = rev
	s.mu.Unlock()
	s.m.resources.Set(float64(s.cache.NumResources()))
	return nil
}

// secretResource is the SDS resource name for b: the chain (leaf and
// intermediates) and the key, inline.
func secretResource(name string, b *delivery.Bundle) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: name,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b.Certificate}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b.Key}},
		}},
	}
}

// Allow lets the Secret k be served once delivered.
func (s *Sink) Allow(k types.NamespacedName) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed[k] = true
	s.m.allowed.Set(float64(len(s.allowed)))
}

// Remove stops serving the Secret k: its resource names leave the cache
// (delta streams are told; state of the world streams simply get no more
// updates for it) and its key leaves the process's memory.
func (s *Sink) Remove(k types.NamespacedName) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	_, had := s.served[k]
	delete(s.allowed, k)
	delete(s.served, k)
	s.m.allowed.Set(float64(len(s.allowed)))
	s.mu.Unlock()
	if !had {
		return
	}
	if err := s.cache.UpdateResources(nil, ResourceNames(k)); err != nil {
		// Deleting cannot fail to compute a response; log in case it ever does.
		s.log.Error(err, "removing a Secret from the SDS cache", "secret", k)
	}
	s.m.resources.Set(float64(s.cache.NumResources()))
}

// unserved is why the resource name is not served now, or "" when it is.
func (s *Sink) unserved(resourceName string) string {
	k, ok := SecretFor(resourceName)
	if !ok {
		return ReasonNotReferenced
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case !s.allowed[k]:
		return ReasonNotReferenced
	case s.served[k] == "":
		return ReasonNotDeliveredYet
	}
	return ""
}
