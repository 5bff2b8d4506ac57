// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/internal/payload"
)

// Reader reads custody record versions, key included: the delivery agent's
// and the Go delivery library's side. It needs only
// secretsmanager:GetSecretValue on its records' secrets (deploy/aws).
type Reader struct {
	client *secretsmanager.Client
	opts   Options
}

// NewReader returns a Reader. It makes no call.
func NewReader(ctx context.Context, opts Options) (*Reader, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	c, err := newClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Reader{client: c, opts: opts}, nil
}

// Read returns the given version of the record for Secret namespace/name:
// GetSecretValue with the version's staging label. Meta.Version and
// Meta.WrittenAt are set (the rest of Meta is in tags, which this
// permission may not see). A version that is not there (never written,
// unpinned beyond MaxVersions, deleted) is an error wrapping
// custody.ErrNotFound. Read checks that the payload names the record it
// asked for, but not the key against the certificate: that is the
// caller's to do before serving it.
func (r *Reader) Read(ctx context.Context, namespace, name string, version int) (custody.Record, error) {
	if err := validName(namespace, name); err != nil || version < 1 {
		return custody.Record{}, fmt.Errorf("invalid custody reference %q/%q version %d", namespace, name, version)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	sn := secretName(r.opts.Prefix, namespace, name)
	fail := func(err error) (custody.Record, error) {
		return custody.Record{}, fmt.Errorf("reading custody record %s/%s version %d (%s): %w", namespace, name, version, sn, err)
	}
	out, err := r.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(sn), VersionStage: aws.String(VersionLabel(version)),
	})
	if err != nil {
		return fail(callError("GetSecretValue", err))
	}
	if id := aws.ToString(out.VersionId); id != VersionID(version) {
		return fail(fmt.Errorf("label %s is on version %s, not keyward's %s: %w", VersionLabel(version), id, VersionID(version), custody.ErrNotFound))
	}
	p, err := payload.Decode(out.SecretBinary)
	if err != nil {
		return fail(err)
	}
	if p.Namespace != namespace || p.Name != name {
		return fail(fmt.Errorf("the secret holds the record of %s/%s", p.Namespace, p.Name))
	}
	return custody.Record{
		Namespace: namespace, Name: name, Key: p.Key, Certificate: p.Cert, CA: p.CA,
		Meta: custody.Metadata{Version: version, WrittenAt: p.WrittenAt},
	}, nil
}
