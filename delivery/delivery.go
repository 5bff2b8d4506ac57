// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package delivery gets certificates whose private keys are in Keyward
// custody to the programs that serve them: gateways (through a sink) and Go
// servers (through Memory's GetCertificate). An Agent watches the metadata
// of the placeholder Secrets it serves; when a Secret's custody version
// annotation changes it reads that version from Vault and hands the Bundle
// to its sinks. It never polls Vault and never writes a Kubernetes Secret.
package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Bundle is one custody record version, ready to be served. Key is PEM
// private key material: never log it, never put it in an error.
type Bundle struct {
	// Namespace and Name identify the placeholder Secret.
	Namespace, Name string
	// Version is the custody record version (Vault KV v2 version).
	Version int
	// Serial is the leaf certificate's serial number, lower-case hex.
	Serial string
	// KeySHA256 is the hex SHA-256 of the public key (SubjectPublicKeyInfo DER).
	KeySHA256 string
	// Key is the PEM private key; Certificate the PEM leaf plus intermediates;
	// CA the PEM CA bundle (may be empty).
	Key, Certificate, CA []byte
	// DNSNames are the leaf's DNS SANs (what gateways use as SNIs).
	DNSNames []string
	// NotAfter is the leaf's expiry.
	NotAfter time.Time
	// WrittenAt is when Vault stored this version (its created_time); the
	// delivery latency is measured from it.
	WrittenAt time.Time
}

// ID is "<namespace>/<name>", the Secret the bundle belongs to.
func (b *Bundle) ID() string { return b.Namespace + "/" + b.Name }

// String describes the bundle for logs, without key material.
func (b *Bundle) String() string {
	return fmt.Sprintf("%s version %d serial %s", b.ID(), b.Version, b.Serial)
}

// X509KeyPair parses the bundle into a tls.Certificate (leaf parsed).
func (b *Bundle) X509KeyPair() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(b.Certificate, b.Key)
	if err != nil {
		// tls.X509KeyPair's errors do not contain key material.
		return tls.Certificate{}, fmt.Errorf("custody record %s: %w", b, err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("custody record %s: parsing leaf: %w", b, err)
		}
	}
	return c, nil
}

// Sink delivers bundles to one consumer. Deliver must be idempotent (the
// agent re-delivers the current bundle at start and after failures) and
// safe to call from one goroutine at a time per sink. An error means the
// consumer still serves what it had before; the agent retries with backoff.
type Sink interface {
	// Name names the sink in metrics and logs, e.g. "files", "apisix", "kong".
	Name() string
	// Deliver makes b the certificate the consumer serves for b.ID().
	Deliver(ctx context.Context, b *Bundle) error
}

// ErrPermanent marks a delivery error that retrying the same bundle cannot
// fix (the consumer rejected it). The agent still retries, slowly, and says so.
var ErrPermanent = errors.New("permanent delivery error")
