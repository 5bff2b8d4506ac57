// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"
)

// Session logs in to Vault in the background, retrying with backoff until a
// login works, then keeps that Client alive until Run's context ends. It is
// for components that must be up before Vault is reachable or while their
// credential is wrong: `keyward agent` serves its health endpoints, and
// `keyward kms` serves its socket and reports the failed login in Status.
type Session struct {
	cfg  Config
	auth AuthMethod
	opts LoginOptions

	mu       sync.Mutex
	client   *Client
	lastErr  error
	loggedIn chan struct{} // closed at the first login
}

// firstLoginBackoff is the wait after the first failed login; it doubles up
// to LoginOptions.MaxReloginBackoff.
const firstLoginBackoff = time.Second

// NewSession returns a session that Run logs in. It checks cfg (server URL,
// CA bundle) at once, so a typo fails start-up rather than the login loop.
func NewSession(cfg Config, auth AuthMethod, opts LoginOptions) (*Session, error) {
	if _, err := NewClient(cfg); err != nil {
		return nil, err
	}
	if opts.MaxReloginBackoff <= 0 {
		opts.MaxReloginBackoff = 30 * time.Second
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &Session{cfg: cfg, auth: auth, opts: opts, loggedIn: make(chan struct{})}, nil
}

// Run logs in (again and again, with backoff, until it works), then holds the
// logged-in Client until ctx ends and closes it.
func (s *Session) Run(ctx context.Context) {
	log := s.opts.Logger
	backoff := firstLoginBackoff
	for {
		c, err := Login(ctx, s.cfg, s.auth, s.opts)
		if err == nil {
			s.mu.Lock()
			s.client, s.lastErr = c, nil
			s.mu.Unlock()
			close(s.loggedIn)
			log.Info("logged in to vault", "server", s.cfg.Server, "method", s.auth.String())
			<-ctx.Done()
			c.Close()
			return
		}
		// Vault's own error text spans lines; keep its status and messages.
		if StatusCode(err) != 0 {
			err = fmt.Errorf("logging in with %s: %w", s.auth, MapError(err))
		}
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		log.Error(err, "vault login failed; retrying", "server", s.cfg.Server, "retryIn", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.opts.MaxReloginBackoff)
	}
}

// Client returns the logged-in API client, or nil before the first login.
func (s *Session) Client() *vaultapi.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	return s.client.API()
}

// API returns the logged-in API client, or an error saying why there is
// none yet (the last failed login, if any).
func (s *Session) API() (*vaultapi.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.client != nil:
		return s.client.API(), nil
	case s.lastErr != nil:
		return nil, fmt.Errorf("not logged in to Vault: %w", s.lastErr)
	default:
		return nil, errors.New("not logged in to Vault yet")
	}
}

// Relogin logs in again now (after Vault answered 403).
func (s *Session) Relogin(ctx context.Context) error {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return errors.New("not logged in to Vault yet")
	}
	return c.Relogin(ctx)
}

// Wait returns the API client once Run has logged in, or ctx's error.
func (s *Session) Wait(ctx context.Context) (*vaultapi.Client, error) {
	select {
	case <-s.loggedIn:
		return s.Client(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the vault login to %s: %w", s.cfg.Server, ctx.Err())
	}
}
