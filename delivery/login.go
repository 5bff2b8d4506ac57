// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"

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

// VaultSession is a Vault login that a delivery agent can start before
// Vault answers: Run retries the first login with backoff, then keeps the
// token renewed (and logs in again when it cannot be renewed).
type VaultSession struct {
	cfg  VaultConfig
	auth vault.AuthMethod
	log  logr.Logger

	mu       sync.Mutex
	client   *vault.Client
	loggedIn chan struct{} // closed at the first login
}

// NewVaultSession checks cfg; call Run to log in.
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
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	// Fail on a bad URL or CA bundle now, not in the login loop.
	if _, err := vault.NewClient(vault.Config{Server: cfg.Server, CABundle: cfg.CABundle, Namespace: cfg.Namespace}); err != nil {
		return nil, err
	}
	return &VaultSession{
		loggedIn: make(chan struct{}),
		cfg:      cfg,
		auth:     &vault.KubernetesFileAuth{MountPath: cfg.AuthMount, Role: cfg.Role, TokenFile: cfg.TokenFile},
		log:      log,
	}, nil
}

// Run logs in, retrying every 1s up to every 30s until it succeeds, then
// keeps the session alive until ctx ends.
func (s *VaultSession) Run(ctx context.Context) {
	backoff := time.Second
	for {
		c, err := vault.Login(ctx, vault.Config{Server: s.cfg.Server, CABundle: s.cfg.CABundle, Namespace: s.cfg.Namespace, Timeout: s.cfg.Timeout},
			s.auth, vault.LoginOptions{Logger: s.log, MaxReloginBackoff: 30 * time.Second})
		if err == nil {
			s.mu.Lock()
			s.client = c
			s.mu.Unlock()
			close(s.loggedIn)
			s.log.Info("logged in to vault", "server", s.cfg.Server, "method", s.auth.String())
			<-ctx.Done()
			c.Close()
			return
		}
		s.log.Error(err, "vault login failed; retrying", "server", s.cfg.Server, "retryIn", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Client returns the logged-in API client, or nil before the first login.
func (s *VaultSession) Client() *vaultapi.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	return s.client.API()
}

// Relogin logs in again now (after Vault answered 403).
func (s *VaultSession) Relogin(ctx context.Context) error {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return errors.New("vault session: not logged in yet")
	}
	return c.Relogin(ctx)
}

// Wait returns the API client once Run has logged in, or ctx's error.
func (s *VaultSession) Wait(ctx context.Context) (*vaultapi.Client, error) {
	select {
	case <-s.loggedIn:
		return s.Client(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the vault login to %s: %w", s.cfg.Server, ctx.Err())
	}
}
