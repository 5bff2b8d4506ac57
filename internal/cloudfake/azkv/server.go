// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package azkv is a CONTRACT FAKE of Azure Key Vault's secrets REST API
// (api-version 2025-07-01) for tests: an httptest TLS server with a
// certificate for *.vault.azure.net, and a Transport that resolves only its
// vault's host name to it, so the official azsecrets client runs unchanged
// (challenge authentication with resource verification included) and sends
// its real requests. The real service cannot be reached from this
// project's machines; the fake follows the documented behaviour:
//
//   - secret names [0-9a-zA-Z-]{1,127}, compared case-insensitively; values
//     at most 25 KiB; at most 15 tags, values at most 256 characters;
//   - every SetSecret makes a new version with its own opaque 32-hex ID,
//     content type, attributes and tags; GET without a version is the
//     newest; a disabled version cannot be read (403 SecretDisabled);
//     versions cannot be deleted one by one;
//   - GET /secrets lists the live secrets (not the soft-deleted ones), each
//     as its newest version's id without version, attributes, tags and
//     content type (never a value), sorted by name, at most one page of
//     the fake's size (SetListPageSize, default DefaultListPageSize;
//     maxresults, 1..25, may ask for fewer), nextLink with an opaque
//     $skiptoken; it needs readMetadata on the vault, so an identity
//     limited to single secrets cannot list;
//   - soft delete: a deleted secret's name cannot be reused (409) until it
//     is purged (403 when the vault has purge protection) or recovered;
//   - the challenge flow: a request without a bearer token gets 401 with
//     WWW-Authenticate naming the tenant and the resource
//     https://vault.azure.net; a known token is an Identity with data
//     actions (Key Vault RBAC) and optionally a list of secret names (a
//     role assignment scoped to single secrets); anything else is 401/403;
//   - fault hooks: Throttle (429 with Retry-After for the next N requests)
//     and OnRequest (run code before a request is served).
package azkv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Data actions (Microsoft.KeyVault/vaults/secrets/<action>) the fake checks.
const (
	ActSet          = "setSecret/action"
	ActGet          = "getSecret/action"
	ActReadMetadata = "readMetadata/action"
	ActUpdate       = "update/action"
	ActDelete       = "delete"
	ActPurge        = "purge/action"
	ActRecover      = "recover/action"
)

// Limits the fake enforces.
const (
	MaxValueBytes = 25 * 1024
	MaxTags       = 15
	MaxTagValue   = 256
	// DefaultListPageSize is GET /secrets' page size unless
	// SetListPageSize says otherwise: small, so that tests cross pages.
	DefaultListPageSize = 2
)

// Writer holds the keyward-custody-writer role's data actions (no getSecret).
func Writer() []string {
	return []string{ActSet, ActReadMetadata, ActUpdate, ActDelete, ActPurge, ActRecover}
}

// Guard holds keyward-guard's: metadata only.
func Guard() []string { return []string{ActReadMetadata} }

// Agent holds keyward-agent's: read values and find versions.
func Agent() []string { return []string{ActGet, ActReadMetadata} }

// Identity is what a bearer token may do.
type Identity struct {
	Actions []string
	// Secrets, when set, are the only secret names the identity may touch
	// (role assignments scoped to single secrets).
	Secrets []string
}

// Server is the fake vault. Create it with New.
type Server struct {
	vaultHost string
	tenant    string
	srv       *httptest.Server
	cert      *x509.Certificate

	mu              sync.Mutex
	secrets         map[string]*secret // lower-case name
	deleted         map[string]*secret
	identities      map[string]Identity
	throttle        int
	retryAfter      string
	purgeProtection bool
	onRequest       func(r *http.Request)
	requests        map[string]int
	seq             int
	pageSize        int
}

type secret struct {
	name     string
	versions []*version // in creation order
}

type version struct {
	id          string
	value       string
	contentType string
	enabled     bool
	created     int64
	updated     int64
	tags        map[string]string
}

// New starts a fake vault named vault (https://<vault>.vault.azure.net).
func New(vault string) (*Server, error) {
	s := &Server{
		vaultHost: vault + ".vault.azure.net", tenant: "00000000-0000-0000-0000-00000000beef",
		secrets: map[string]*secret{}, deleted: map[string]*secret{},
		identities: map[string]Identity{}, requests: map[string]int{}, pageSize: DefaultListPageSize,
	}
	cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	s.cert = cert.Leaf
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// VaultURL is the vault's URL as a client names it.
func (s *Server) VaultURL() string { return "https://" + s.vaultHost + "/" }

// Transport trusts the fake's certificate and resolves only the fake
// vault's host (on any port) to it; any other host fails like an unknown
// DNS name.
func (s *Server) Transport() *http.Transport {
	pool := x509.NewCertPool()
	pool.AddCert(s.cert)
	addr := s.srv.Listener.Addr().String()
	d := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, hostport string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(hostport)
			if !strings.EqualFold(host, s.vaultHost) {
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}
			return d.DialContext(ctx, network, addr)
		},
	}
}

// AddIdentity lets bearer token act as id.
func (s *Server) AddIdentity(token string, id Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identities[token] = id
}

// Throttle answers the next n authenticated requests with 429 and
// Retry-After: retryAfter (seconds; "" for none).
func (s *Server) Throttle(n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle, s.retryAfter = n, retryAfter
}

// SetListPageSize sets GET /secrets' largest page (1..25, the service's
// largest maxresults).
func (s *Server) SetListPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = min(max(n, 1), 25)
}

// SetPurgeProtection makes purges fail with 403, as in a vault with purge
// protection enabled.
func (s *Server) SetPurgeProtection(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeProtection = on
}

// OnRequest runs f before each authenticated request is served (outside
// the fake's lock); nil removes it.
func (s *Server) OnRequest(f func(r *http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRequest = f
}

// Requests counts requests by "METHOD kind" (kind: secret, versions,
// list, deleted, purge, recover), throttled and denied ones included.
func (s *Server) Requests(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[key]
}

// SecretNames lists live secrets' names, for tests.
func (s *Server) SecretNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sec := range s.secrets {
		out = append(out, sec.name)
	}
	return out
}

// Versions returns a live secret's versions' (enabled, tags), oldest first.
func (s *Server) Versions(name string) (enabled []bool, tags []map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[strings.ToLower(name)]
	if sec == nil {
		return nil, nil
	}
	for _, v := range sec.versions {
		enabled = append(enabled, v.enabled)
		tags = append(tags, v.tags)
	}
	return enabled, tags
}

func (s *Server) newVersionID() string {
	s.seq++
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%08x%x", s.seq, b)
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "*.vault.azure.net"},
		DNSNames:     []string{"*.vault.azure.net"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
