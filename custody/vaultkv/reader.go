// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vaultkv

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/internal/vault"
)

// ReaderOptions configure NewReader.
type ReaderOptions struct {
	// Mount and Prefix locate records, as for Store. Defaults DefaultMount
	// and DefaultPrefix.
	Mount, Prefix string
	// Timeout bounds each Vault call. Default DefaultTimeout.
	Timeout time.Duration
	// OnForbidden is called when Vault answers 403 (token revoked or
	// expired), typically to log in again; the read is then tried once
	// more. Optional.
	OnForbidden func(ctx context.Context) error
}

// Reader reads custody record versions, key included. It needs only read on
// <mount>/data/<prefix>/<namespace>/<name> (the keyward-agent policy).
type Reader struct {
	client func() *vaultapi.Client
	opts   ReaderOptions
}

// NewReader returns a Reader over client, which must be authenticated and
// may have its token renewed or replaced concurrently. client is called for
// each read, so a caller that logs in lazily can hand out its client once
// it has one (nil means "not logged in yet" and fails the read).
func NewReader(client func() *vaultapi.Client, opts ReaderOptions) (*Reader, error) {
	if client == nil {
		return nil, errors.New("custody reader needs a vault client")
	}
	if opts.Mount == "" {
		opts.Mount = DefaultMount
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	opts.Mount, opts.Prefix = strings.Trim(opts.Mount, "/"), strings.Trim(opts.Prefix, "/")
	if opts.Mount == "" || opts.Prefix == "" {
		return nil, errors.New("custody mount and prefix must not be blank")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Reader{client: client, opts: opts}, nil
}

// Read returns the given version of the record for Secret namespace/name.
// Meta.Version and Meta.WrittenAt are set, and the rest of Meta from the
// version's description when it has one (records written before Keyward
// wrote descriptions keep theirs in custom metadata, which a reader's
// policy need not see). A version that does not
// exist (deleted, destroyed, pruned) is an error wrapping
// custody.ErrNotFound. Read does not check the key against the certificate:
// that is the caller's to do before serving it.
func (r *Reader) Read(ctx context.Context, namespace, name string, version int) (custody.Record, error) {
	if err := validName(namespace, name); err != nil || version < 1 {
		return custody.Record{}, fmt.Errorf("invalid custody reference %q/%q version %d", namespace, name, version)
	}
	rec, err := r.read(ctx, namespace, name, version)
	if errors.Is(err, vault.ErrForbidden) && r.opts.OnForbidden != nil {
		if lerr := r.opts.OnForbidden(ctx); lerr == nil {
			rec, err = r.read(ctx, namespace, name, version)
		}
	}
	return rec, err
}

func (r *Reader) read(ctx context.Context, namespace, name string, version int) (custody.Record, error) {
	c := r.client()
	if c == nil {
		return custody.Record{}, fmt.Errorf("reading custody record %s/%s version %d: not logged in to vault yet", namespace, name, version)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	p := path.Join(r.opts.Mount, "data", r.opts.Prefix, namespace, name)
	sec, err := c.Logical().ReadWithDataWithContext(ctx, p, map[string][]string{"version": {strconv.Itoa(version)}})
	if err != nil {
		return custody.Record{}, fmt.Errorf("reading custody record %s/%s version %d: %w", namespace, name, version, storeError(err))
	}
	// KV v2 answers a deleted or destroyed version with data null (and 404).
	if sec == nil || sec.Data == nil || sec.Data["data"] == nil {
		return custody.Record{}, fmt.Errorf("reading custody record %s/%s version %d: %w", namespace, name, version, custody.ErrNotFound)
	}
	data, _ := sec.Data["data"].(map[string]any)
	meta, _ := sec.Data["metadata"].(map[string]any)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	rec := custody.Record{
		Namespace:   namespace,
		Name:        name,
		Key:         []byte(str(data, custody.DataKey)),
		Certificate: []byte(str(data, custody.DataCertificate)),
		CA:          []byte(str(data, custody.DataCA)),
	}
	rec.Meta, _ = described(data[DataDescription])
	rec.Meta.Version = version
	if t, err := time.Parse(time.RFC3339Nano, str(meta, "created_time")); err == nil {
		rec.Meta.WrittenAt = t
	}
	return rec, nil
}
