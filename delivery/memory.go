// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
)

// Memory is a Sink that keeps certificates in memory for a Go TLS server:
// set tls.Config.GetCertificate to its GetCertificate method. Handshakes
// after a delivery use the new certificate; connections already open keep
// theirs. Nothing is written to disk.
type Memory struct {
	certs atomic.Pointer[[]memCert]
}

type memCert struct {
	id   string
	cert *tls.Certificate
}

// NewMemory returns an empty Memory sink.
func NewMemory() *Memory {
	m := &Memory{}
	m.certs.Store(&[]memCert{})
	return m
}

var _ Sink = (*Memory)(nil)

// Name implements Sink.
func (m *Memory) Name() string { return "memory" }

// Deliver implements Sink: it parses b and swaps it in atomically.
func (m *Memory) Deliver(_ context.Context, b *Bundle) error {
	c, err := b.X509KeyPair()
	if err != nil {
		return errors.Join(ErrPermanent, err)
	}
	for {
		old := m.certs.Load()
		next := slices.DeleteFunc(slices.Clone(*old), func(e memCert) bool { return e.id == b.ID() })
		next = append(next, memCert{id: b.ID(), cert: &c})
		slices.SortFunc(next, func(x, y memCert) int { return strings.Compare(x.id, y.id) })
		if m.certs.CompareAndSwap(old, &next) {
			return nil
		}
	}
}

// Certificate returns the certificate served for the Secret
// "<namespace>/<name>", or nil.
func (m *Memory) Certificate(id string) *tls.Certificate {
	for _, e := range *m.certs.Load() {
		if e.id == id {
			return e.cert
		}
	}
	return nil
}

// ErrNoCertificate is returned by GetCertificate before any delivery.
var ErrNoCertificate = errors.New("keyward: no certificate delivered yet")

// GetCertificate picks the certificate for a handshake: the one whose leaf
// is valid for the requested server name, else (no SNI, or no match) the
// first by namespace/name.
func (m *Memory) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs := *m.certs.Load()
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	if hello != nil && hello.ServerName != "" && len(certs) > 1 {
		for _, e := range certs {
			if e.cert.Leaf != nil && e.cert.Leaf.VerifyHostname(hello.ServerName) == nil {
				return e.cert, nil
			}
		}
	}
	return certs[0].cert, nil
}
