// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"context"
	"sync"
)

// Cache holds one logged-in Client per owner (e.g. per issuer name), valid
// for one version of the owner's configuration (e.g. its UID and generation). A new
// version replaces and closes the old client. The zero value is ready to use;
// it must not be copied. It is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	version string
	client  *Client
	ready   chan struct{} // closed once client or err is set
	err     error
}

// Get returns the client cached for key at version, or logs in with login
// and caches the result. Concurrent callers for the same key and version
// share one login. A failed login is not cached.
func (c *Cache) Get(ctx context.Context, key string, version string, login func(context.Context) (*Client, error)) (*Client, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*cacheEntry{}
	}
	e, ok := c.entries[key]
	if ok && e.version == version {
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		return e.client, nil
	}
	if ok {
		delete(c.entries, key)
		go closeWhenReady(e)
	}
	e = &cacheEntry{version: version, ready: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()

	e.client, e.err = login(ctx)
	close(e.ready)
	if e.err != nil {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		return nil, e.err
	}
	return e.client, nil
}

// Forget closes and drops the client cached for key, if any.
func (c *Cache) Forget(key string) {
	c.mu.Lock()
	e, ok := c.entries[key]
	delete(c.entries, key)
	c.mu.Unlock()
	if ok {
		closeWhenReady(e)
	}
}

// Close closes every cached client.
func (c *Cache) Close() {
	c.mu.Lock()
	entries := c.entries
	c.entries = nil
	c.mu.Unlock()
	for _, e := range entries {
		closeWhenReady(e)
	}
}

// Len returns the number of cached clients.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func closeWhenReady(e *cacheEntry) {
	<-e.ready
	if e.client != nil {
		e.client.Close()
	}
}
