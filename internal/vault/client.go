// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package vault builds Vault clients for Keyward's components and keeps them
// logged in. It knows Vault's auth methods (Kubernetes, AppRole, token) and
// token lifetimes, and nothing about Keyward's CRDs: the issuer, the custody
// writer and the guard each turn their own configuration into a Config and an
// AuthMethod and call Login.
package vault

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// DefaultTimeout bounds every request a Client makes when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config says where Vault is and how to talk to it. It holds no credentials.
type Config struct {
	// Server is Vault's base URL, e.g. https://vault.example.com:8200.
	Server string
	// CABundle is a PEM bundle trusted for Vault's TLS certificate; empty
	// means the system roots.
	CABundle []byte
	// Namespace is sent as X-Vault-Namespace when not empty.
	Namespace string
	// Timeout bounds each HTTP request; zero means DefaultTimeout. Callers
	// should still pass contexts with their own deadlines.
	Timeout time.Duration
	// ClientCertFile and ClientKeyFile are a PEM TLS client certificate and
	// key presented to Vault (CertAuth's credential); both or neither.
	ClientCertFile, ClientKeyFile string
}

// NewClient returns an unauthenticated Vault API client for cfg. It ignores
// the VAULT_* environment variables (in particular VAULT_TOKEN), does not
// retry on its own (callers own their retry policy) and never follows
// redirects to other hosts.
func NewClient(cfg Config) (*vaultapi.Client, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("creating vault client: server %q is not an http(s) URL", cfg.Server)
	}
	vc := vaultapi.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("creating vault client for %s: %w", cfg.Server, vc.Error)
	}
	vc.Address = strings.TrimSuffix(cfg.Server, "/")
	vc.MaxRetries = 0
	vc.Timeout = cfg.Timeout
	if vc.Timeout <= 0 {
		vc.Timeout = DefaultTimeout
	}
	// DefaultConfig honours VAULT_CACERT and friends; start from a clean TLS
	// configuration so only what the caller configured is trusted.
	if (cfg.ClientCertFile == "") != (cfg.ClientKeyFile == "") {
		return nil, fmt.Errorf("creating vault client for %s: a client certificate needs both its certificate and key files", cfg.Server)
	}
	if err := vc.ConfigureTLS(&vaultapi.TLSConfig{CACertBytes: cfg.CABundle, ClientCert: cfg.ClientCertFile, ClientKey: cfg.ClientKeyFile}); err != nil {
		return nil, fmt.Errorf("configuring TLS for vault %s: %w", cfg.Server, err)
	}
	c, err := vaultapi.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("creating vault client for %s: %w", cfg.Server, err)
	}
	c.ClearToken() // NewClient picks up VAULT_TOKEN from the environment
	c.ClearNamespace()
	if cfg.Namespace != "" {
		c.SetNamespace(cfg.Namespace)
	}
	return c, nil
}

// HealthError says why Vault is not able to serve requests.
type HealthError struct {
	// Reason is a CamelCase cause: VaultUnreachable, VaultSealed or VaultUninitialized.
	Reason string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *HealthError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *HealthError) Unwrap() error { return e.Err }

// Health reports whether the Vault behind c can serve requests: reachable,
// initialized and unsealed. Standby and performance-standby nodes count as
// healthy (they forward). Failures are *HealthError.
func Health(ctx context.Context, c *vaultapi.Client) (*vaultapi.HealthResponse, error) {
	h, err := c.Sys().HealthWithContext(ctx)
	switch {
	case err != nil:
		return nil, &HealthError{Reason: "VaultUnreachable", Err: fmt.Errorf("checking health of vault %s: %w", c.Address(), err)}
	case !h.Initialized:
		return h, &HealthError{Reason: "VaultUninitialized", Err: fmt.Errorf("vault %s is not initialized", c.Address())}
	case h.Sealed:
		return h, &HealthError{Reason: "VaultSealed", Err: fmt.Errorf("vault %s is sealed", c.Address())}
	}
	return h, nil
}
