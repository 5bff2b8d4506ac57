// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyward-io/keyward/scrubber"
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

// VaultReader reads custody records from a Vault KV v2 mount. It needs only
// read on <mount>/data/<prefix>/<namespace>/<name> (the keyward-agent policy).
type VaultReader struct {
	client func() *vaultapi.Client
	opts   VaultReaderOptions
}

// NewVaultReader returns a Reader over client, which must be authenticated
// and may have its token renewed or replaced concurrently. client is called
// for each read, so a caller that logs in lazily can hand out its client
// once it has one (nil means "not logged in yet" and fails the read).
func NewVaultReader(client func() *vaultapi.Client, opts VaultReaderOptions) (*VaultReader, error) {
	if client == nil {
		return nil, errors.New("custody reader needs a vault client")
	}
	if opts.Mount == "" {
		opts.Mount = scrubber.DefaultCustodyMount
	}
	if opts.Prefix == "" {
		opts.Prefix = scrubber.DefaultCustodyPrefix
	}
	opts.Mount, opts.Prefix = strings.Trim(opts.Mount, "/"), strings.Trim(opts.Prefix, "/")
	if opts.Mount == "" || opts.Prefix == "" {
		return nil, errors.New("custody mount and prefix must not be blank")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = scrubber.DefaultVaultCallTimeout
	}
	return &VaultReader{client: client, opts: opts}, nil
}

// Read implements Reader. The bundle is checked before it is returned: the
// key must match the certificate.
func (r *VaultReader) Read(ctx context.Context, namespace, name string, version int) (*Bundle, error) {
	if namespace == "" || name == "" || strings.Contains(namespace+name, "/") || version < 1 {
		return nil, fmt.Errorf("invalid custody reference %q/%q version %d", namespace, name, version)
	}
	b, err := r.read(ctx, namespace, name, version)
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden && r.opts.OnForbidden != nil {
		if lerr := r.opts.OnForbidden(ctx); lerr == nil {
			b, err = r.read(ctx, namespace, name, version)
		}
	}
	return b, err
}

func (r *VaultReader) read(ctx context.Context, namespace, name string, version int) (*Bundle, error) {
	c := r.client()
	if c == nil {
		return nil, fmt.Errorf("reading custody record %s/%s version %d: not logged in to vault yet", namespace, name, version)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	p := path.Join(r.opts.Mount, "data", r.opts.Prefix, namespace, name)
	sec, err := c.Logical().ReadWithDataWithContext(ctx, p, map[string][]string{"version": {strconv.Itoa(version)}})
	if err != nil {
		var re *vaultapi.ResponseError
		if errors.As(err, &re) {
			if re.StatusCode == http.StatusNotFound {
				return nil, fmt.Errorf("reading custody record %s/%s version %d: %w", namespace, name, version, ErrNotFound)
			}
			return nil, fmt.Errorf("reading custody record %s/%s version %d: vault %s %s: status %d: %s: %w",
				namespace, name, version, re.HTTPMethod, p, re.StatusCode, strings.Join(re.Errors, "; "), re)
		}
		return nil, fmt.Errorf("reading custody record %s/%s version %d: %w", namespace, name, version, err)
	}
	// KV v2 answers a deleted or destroyed version with data null (and 404).
	if sec == nil || sec.Data == nil || sec.Data["data"] == nil {
		return nil, fmt.Errorf("reading custody record %s/%s version %d: %w", namespace, name, version, ErrNotFound)
	}
	data, _ := sec.Data["data"].(map[string]any)
	meta, _ := sec.Data["metadata"].(map[string]any)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	b := &Bundle{
		Namespace:   namespace,
		Name:        name,
		Version:     version,
		Key:         []byte(str(data, scrubber.DataTLSKey)),
		Certificate: []byte(str(data, scrubber.DataTLSCert)),
		CA:          []byte(str(data, scrubber.DataCA)),
	}
	if t, err := time.Parse(time.RFC3339Nano, str(meta, "created_time")); err == nil {
		b.WrittenAt = t
	}
	if len(b.Key) == 0 || len(b.Certificate) == 0 {
		return nil, fmt.Errorf("custody record %s: no key or certificate in it: %w", b, ErrMismatch)
	}
	kp, err := b.X509KeyPair()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	b.Serial = scrubber.SerialHex(kp.Leaf)
	b.KeySHA256 = scrubber.KeySHA256(kp.Leaf)
	b.DNSNames = kp.Leaf.DNSNames
	b.NotAfter = kp.Leaf.NotAfter
	return b, nil
}
