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
	"k8s.io/utils/clock"
)

// Client is a Vault client that stays logged in: it renews its token with a
// vaultapi.LifetimeWatcher and logs in again when the token can no longer be
// renewed. It is safe for concurrent use. Close stops the background work.
type Client struct {
	cfg    Config
	auth   AuthMethod
	clock  clock.Clock
	log    logr.Logger
	api    *vaultapi.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	lastLogin time.Time
}

// LoginOptions tune Login; the zero value is fine.
type LoginOptions struct {
	// Clock paces re-login retries; default the real clock.
	Clock clock.Clock
	// Logger receives renewal and re-login events (never tokens); default discard.
	Logger logr.Logger
	// MaxReloginBackoff caps the wait between failed re-logins; default 1m.
	MaxReloginBackoff time.Duration
}

// Login builds a client for cfg, logs in with auth and keeps the token alive
// until Close. The first login is synchronous and its failure is returned as
// a *LoginError; later re-logins happen in the background.
func Login(ctx context.Context, cfg Config, auth AuthMethod, opts LoginOptions) (*Client, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.MaxReloginBackoff <= 0 {
		opts.MaxReloginBackoff = time.Minute
	}
	api, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, auth: auth, clock: opts.Clock, log: opts.Logger, api: api, done: make(chan struct{})}
	sec, err := c.login(ctx)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.keepAlive(bg, sec, opts.MaxReloginBackoff)
	return c, nil
}

// API returns the authenticated client. Its token changes on renewal and
// re-login; do not copy the token out of it.
func (c *Client) API() *vaultapi.Client { return c.api }

// Auth returns the auth method the client logs in with.
func (c *Client) Auth() AuthMethod { return c.auth }

// Close stops renewal and re-login and waits for the background goroutine.
// The token is left to expire (revoking it would break concurrent users of a
// shared token under TokenAuth).
func (c *Client) Close() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

// Relogin logs in again now, e.g. after Vault answered 403 because the token
// was revoked. Concurrent calls within a second collapse into one.
func (c *Client) Relogin(ctx context.Context) error {
	c.mu.Lock()
	recent := c.clock.Since(c.lastLogin) < time.Second
	c.mu.Unlock()
	if recent {
		return nil
	}
	_, err := c.login(ctx)
	return err
}

func (c *Client) login(ctx context.Context) (*vaultapi.Secret, error) {
	// Each login gets its own unauthenticated client so an expired token
	// never rides along and the shared client is only touched to swap tokens.
	lc, err := NewClient(c.cfg)
	if err != nil {
		return nil, err
	}
	sec, err := c.auth.Login(ctx, lc)
	if err != nil {
		return nil, &LoginError{Method: c.auth.String(), Err: err}
	}
	c.api.SetToken(sec.Auth.ClientToken)
	c.mu.Lock()
	c.lastLogin = c.clock.Now()
	c.mu.Unlock()
	c.log.V(1).Info("logged in to vault", "server", c.cfg.Server, "method", c.auth.String(), "ttl", time.Duration(sec.Auth.LeaseDuration)*time.Second)
	return sec, nil
}

// keepAlive renews the token while Vault allows, then logs in again, until ctx ends.
func (c *Client) keepAlive(ctx context.Context, sec *vaultapi.Secret, maxBackoff time.Duration) {
	defer close(c.done)
	for {
		if sec != nil && sec.Auth != nil && sec.Auth.Renewable && sec.Auth.LeaseDuration > 0 {
			c.watch(ctx, sec)
		} else if !c.sleep(ctx, c.nonRenewableWait(sec)) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		sec = c.reloginWithBackoff(ctx, maxBackoff)
		if sec == nil {
			return
		}
	}
}

// watch renews the token until the watcher gives up or ctx ends.
func (c *Client) watch(ctx context.Context, sec *vaultapi.Secret) {
	w, err := c.api.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{Secret: sec})
	if err != nil {
		c.log.Error(err, "cannot watch vault token; will log in again", "server", c.cfg.Server)
		return
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-w.DoneCh():
			// nil: the max TTL was reached; non-nil: renewal failed. Both mean
			// the current token is about to stop working.
			if err != nil {
				c.log.Info("vault token renewal failed; logging in again", "server", c.cfg.Server, "error", err.Error())
			} else {
				c.log.V(1).Info("vault token reached its max TTL; logging in again", "server", c.cfg.Server)
			}
			return
		case r := <-w.RenewCh():
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				c.log.V(2).Info("renewed vault token", "server", c.cfg.Server, "ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second)
			}
		}
	}
}

// nonRenewableWait is how long a token that cannot be renewed is used before
// logging in again: two thirds of its TTL, or an hour for tokens without one
// (e.g. a root token in a test).
func (c *Client) nonRenewableWait(sec *vaultapi.Secret) time.Duration {
	if sec == nil || sec.Auth == nil || sec.Auth.LeaseDuration <= 0 {
		return time.Hour
	}
	return time.Duration(sec.Auth.LeaseDuration) * time.Second * 2 / 3
}

func (c *Client) reloginWithBackoff(ctx context.Context, maxBackoff time.Duration) *vaultapi.Secret {
	backoff := time.Second
	for {
		lctx, cancel := context.WithTimeout(ctx, c.timeout())
		sec, err := c.login(lctx)
		cancel()
		if err == nil {
			return sec
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Info("re-login to vault failed; retrying", "server", c.cfg.Server, "method", c.auth.String(), "error", err.Error(), "backoff", backoff)
		if !c.sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	t := c.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

func (c *Client) timeout() time.Duration {
	if c.cfg.Timeout > 0 {
		return c.cfg.Timeout
	}
	return DefaultTimeout
}

// IsLoginError reports whether err is (or wraps) a *LoginError.
func IsLoginError(err error) bool {
	var le *LoginError
	return errors.As(err, &le)
}

// String describes the client for messages: server and auth method.
func (c *Client) String() string { return fmt.Sprintf("vault %s with %s", c.cfg.Server, c.auth) }
