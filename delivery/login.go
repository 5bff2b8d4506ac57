// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"errors"
	"time"

	"github.com/go-logr/logr"

	"github.com/keyward-io/keyward/internal/vault"
)

// VaultConfig says how a delivery agent logs in to Vault: Kubernetes auth
// with its pod's projected ServiceAccount token.
type VaultConfig struct {
	// Server is Vault's URL; CABundle the PEM roots trusted for it (empty:
	// system roots); Namespace an optional Vault namespace.
	Server    string
	CABundle  []byte
	Namespace string
	// AuthMount (default "kubernetes") and Role (default "keyward-agent")
	// name the Kubernetes auth role.
	AuthMount, Role string
	// TokenFile is the projected ServiceAccount token (audience "vault"),
	// read at every login.
	TokenFile string
	// Timeout bounds each Vault request; default 10s.
	Timeout time.Duration
}

// VaultSession is the agent's Vault login: Kubernetes auth with the
// projected ServiceAccount token, retried with backoff until it works, then
// kept alive (internal/vault.Session) until Run's context ends.
type VaultSession struct {
	*vault.Session
}

// NewVaultSession returns a session that Run logs in. It checks the server
// URL and CA bundle at once.
func NewVaultSession(cfg VaultConfig, log logr.Logger) (*VaultSession, error) {
	if cfg.Server == "" || cfg.TokenFile == "" {
		return nil, errors.New("vault session: a server and a service account token file are required")
	}
	if cfg.Role == "" {
		cfg.Role = "keyward-agent"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	s, err := vault.NewSession(vault.Config{Server: cfg.Server, CABundle: cfg.CABundle, Namespace: cfg.Namespace, Timeout: cfg.Timeout},
		&vault.KubernetesFileAuth{MountPath: cfg.AuthMount, Role: cfg.Role, TokenFile: cfg.TokenFile},
		vault.LoginOptions{Logger: log, MaxReloginBackoff: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	return &VaultSession{Session: s}, nil
}
