// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/internal/payload"
)

// Reader reads custody record versions, key included. It needs
// secrets/readMetadata/action (to find the Key Vault version tagged N) and
// secrets/getSecret/action on the record's secret (the keyward-agent role).
type Reader struct {
	client *azsecrets.Client
	opts   Options
	pe     string
}

// NewReader returns a Reader for opts (MaxVersions and KeepDeleted are ignored).
func NewReader(opts Options) (*Reader, error) {
	pe, err := opts.defaults(false)
	if err != nil {
		return nil, err
	}
	c, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	return &Reader{client: c, opts: opts, pe: pe}, nil
}

// Read returns version of the record for Secret namespace/name, with
// Meta.Version and Meta.WrittenAt set. A version that does not exist or is
// disabled is an error wrapping custody.ErrNotFound. Read does not check
// the key against the certificate: that is the caller's to do.
func (r *Reader) Read(ctx context.Context, namespace, name string, version int) (custody.Record, error) {
	if err := validName(namespace, name); err != nil || version < 1 {
		return custody.Record{}, fmt.Errorf("invalid custody reference %q/%q version %d", namespace, name, version)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	rec, err := r.read(ctx, namespace, name, version)
	if err != nil {
		return custody.Record{}, fmt.Errorf("reading custody record %s/%s version %d: %w", namespace, name, version, err)
	}
	return rec, nil
}

func (r *Reader) read(ctx context.Context, namespace, name string, version int) (custody.Record, error) {
	sn := secretName(r.pe, namespace, name)
	st, err := listVersions(ctx, r.client, sn)
	if err != nil {
		return custody.Record{}, err
	}
	cands := st.tagged(version)
	if len(cands) == 0 {
		return custody.Record{}, fmt.Errorf("%s has no enabled version tagged %d: %w", sn, version, custody.ErrNotFound)
	}
	resp, err := r.client.GetSecret(ctx, sn, cands[0].id, nil)
	if isStatus(err, 403) && isDisabled(err) {
		return custody.Record{}, fmt.Errorf("%s version %s was disabled: %w", sn, cands[0].id, custody.ErrNotFound)
	}
	if err != nil {
		return custody.Record{}, callError("getting", sn, err)
	}
	if resp.Value == nil {
		return custody.Record{}, fmt.Errorf("%s version %s has no value", sn, cands[0].id)
	}
	raw, err := base64.StdEncoding.DecodeString(*resp.Value)
	if err != nil {
		return custody.Record{}, errors.New(sn + " does not hold a keyward record (value is not base64)")
	}
	p, err := payload.Decode(raw)
	if err != nil {
		return custody.Record{}, fmt.Errorf("%s: %w", sn, err)
	}
	if p.Namespace != namespace || p.Name != name {
		return custody.Record{}, fmt.Errorf("%s holds record %s/%s", sn, p.Namespace, p.Name)
	}
	return custody.Record{
		Namespace: namespace, Name: name, Key: p.Key, Certificate: p.Cert, CA: p.CA,
		Meta: custody.Metadata{Version: version, WrittenAt: p.WrittenAt},
	}, nil
}

// isDisabled tells a disabled version's 403 from a denied permission
// (the inner error code; the text is not surfaced).
func isDisabled(err error) bool {
	return strings.Contains(err.Error(), "SecretDisabled")
}
