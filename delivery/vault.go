// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
)

// Reader fetches one version of a custody record.
type Reader interface {
	// Read returns version of the record for Secret namespace/name. It
	// returns an error wrapping ErrNotFound when that version does not exist
	// (deleted, destroyed or pruned).
	Read(ctx context.Context, namespace, name string, version int) (*Bundle, error)
}

// ErrNotFound is wrapped by Reader errors for versions that do not exist.
var ErrNotFound = errors.New("custody record version not found")

// ErrMismatch is wrapped by Reader errors when a record's key does not match
// its certificate, or the record is not the one the placeholder names.
var ErrMismatch = errors.New("custody record does not match")

// VaultReaderOptions configure NewVaultReader.
type VaultReaderOptions struct {
	// Mount and Prefix locate records, as for the custody store; defaults
	// "custody" and "tls".
	Mount, Prefix string
	// Timeout bounds each Vault call; default 5s.
	Timeout time.Duration
	// OnForbidden is called when Vault answers 403 (token revoked or
	// expired), typically to log in again. Optional.
	OnForbidden func(ctx context.Context) error
}

// RecordReader reads one version of a custody record, key included: the
// key reader of a custody store (custody/vaultkv, custody/awssm,
// custody/gcpsm, custody/azkv). It wraps custody.ErrNotFound when the
// version does not exist.
type RecordReader interface {
	Read(ctx context.Context, namespace, name string, version int) (custody.Record, error)
}

// StoreReader is a Reader over any custody store's key reader: it turns a
// record into a Bundle after checking that its key matches its certificate.
type StoreReader struct {
	r RecordReader
}

// NewStoreReader returns a Reader over r.
func NewStoreReader(r RecordReader) *StoreReader { return &StoreReader{r: r} }

// VaultReader reads custody records from a Vault KV v2 mount through
// custody/vaultkv's key reader. It needs only read on
// <mount>/data/<prefix>/<namespace>/<name> (the keyward-agent policy).
type VaultReader struct {
	*StoreReader
}

// NewVaultReader returns a Reader over client, which must be authenticated
// and may have its token renewed or replaced concurrently. client is called
// for each read, so a caller that logs in lazily can hand out its client
// once it has one (nil means "not logged in yet" and fails the read).
func NewVaultReader(client func() *vaultapi.Client, opts VaultReaderOptions) (*VaultReader, error) {
	r, err := vaultkv.NewReader(client, vaultkv.ReaderOptions{Mount: opts.Mount, Prefix: opts.Prefix, Timeout: opts.Timeout, OnForbidden: opts.OnForbidden})
	if err != nil {
		return nil, err
	}
	return &VaultReader{NewStoreReader(r)}, nil
}

// Read implements Reader. The bundle is checked before it is returned: the
// key must match the certificate.
func (r *StoreReader) Read(ctx context.Context, namespace, name string, version int) (*Bundle, error) {
	rec, err := r.r.Read(ctx, namespace, name, version)
	if errors.Is(err, custody.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", err, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	b := &Bundle{
		Namespace:   namespace,
		Name:        name,
		Version:     version,
		Key:         rec.Key,
		Certificate: rec.Certificate,
		CA:          rec.CA,
		WrittenAt:   rec.Meta.WrittenAt,
	}
	if len(b.Key) == 0 || len(b.Certificate) == 0 {
		return nil, fmt.Errorf("custody record %s: no key or certificate in it: %w", b, ErrMismatch)
	}
	kp, err := b.X509KeyPair()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	b.Serial = custody.SerialHex(kp.Leaf)
	b.KeySHA256 = custody.Fingerprint(kp.Leaf.RawSubjectPublicKeyInfo)
	b.DNSNames = kp.Leaf.DNSNames
	b.NotAfter = kp.Leaf.NotAfter
	return b, nil
}
