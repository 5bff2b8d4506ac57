// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"context"
	"fmt"
	"strconv"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/internal/payload"
)

// Reader reads custody record versions, key included. It needs only
// secretmanager.versions.access on the record's secret (the keyward-agent
// binding, conditioned on the namespace's ID prefix).
type Reader struct {
	client *secretmanager.Client
	opts   Options
	pid    string
}

// NewReader returns a Reader for opts (MaxVersions and Locations are
// ignored). ctx is used to create the client only.
func NewReader(ctx context.Context, opts Options) (*Reader, error) {
	pid, err := opts.defaults(false)
	if err != nil {
		return nil, err
	}
	c, err := newClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Reader{client: c, opts: opts, pid: pid}, nil
}

// Close releases the client's connection.
func (r *Reader) Close() error { return r.client.Close() }

// Read returns version of the record for Secret namespace/name, with
// Meta.Version and Meta.WrittenAt set (the rest of Meta is in annotations
// this role cannot read). A version that does not exist, is disabled or is
// destroyed is an error wrapping custody.ErrNotFound. Read does not check
// the key against the certificate: that is the caller's to do.
func (r *Reader) Read(ctx context.Context, namespace, name string, version int) (custody.Record, error) {
	if err := validName(namespace, name); err != nil || version < 1 {
		return custody.Record{}, fmt.Errorf("invalid custody reference %q/%q version %d", namespace, name, version)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	vname := "projects/" + r.opts.Project + "/secrets/" + secretID(r.pid, namespace, name) + "/versions/" + strconv.Itoa(version)
	resp, err := r.client.AccessSecretVersion(ctx, &smpb.AccessSecretVersionRequest{Name: vname}, readRetry())
	if code(err) == codes.FailedPrecondition {
		// A disabled or destroyed version.
		return custody.Record{}, fmt.Errorf("reading custody record %s/%s version %d: %s is not enabled: %w", namespace, name, version, vname, custody.ErrNotFound)
	}
	if err != nil {
		return custody.Record{}, fmt.Errorf("reading custody record %s/%s version %d: %w", namespace, name, version, callError("accessing", vname, err))
	}
	p, err := payload.Decode(resp.GetPayload().GetData())
	if err != nil {
		return custody.Record{}, fmt.Errorf("reading custody record %s/%s version %d: %w", namespace, name, version, err)
	}
	if p.Namespace != namespace || p.Name != name {
		return custody.Record{}, fmt.Errorf("reading custody record %s/%s version %d: %s holds record %s/%s", namespace, name, version, vname, p.Namespace, p.Name)
	}
	return custody.Record{
		Namespace: namespace, Name: name, Key: p.Key, Certificate: p.Cert, CA: p.CA,
		Meta: custody.Metadata{Version: version, WrittenAt: p.WrittenAt},
	}, nil
}
