// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package vaultkv keeps custody records in a Vault (or OpenBao) KV v2 mount:
// Store writes records and reads their description (the custody writer's
// and the guard's side), Reader reads one version's data (a delivery
// agent's side). A record lives at <mount>/data/<prefix>/<namespace>/<secret>.
// Each version holds the key, the certificate and the CA, plus the
// version's public description (DataDescription), all written by one data
// write; the guard reads the description through the subkeys endpoint,
// which strips every value, so a policy can allow the description without
// the key. Vault's errors become the custody contract's
// (custody.ErrNotFound, custody.ErrConflict) here and nowhere else.
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

// Defaults for Options and ReaderOptions.
const (
	DefaultMount       = "custody"
	DefaultPrefix      = "tls"
	DefaultMaxVersions = 5
	DefaultTimeout     = 5 * time.Second
	// MaxVersionsLimit bounds Options.MaxVersions (and Keyward's
	// --custody-max-versions flag): custody keeps old keys only so a
	// consumer can finish a rotation, not as an archive.
	MaxVersionsLimit = 20
	// MaxRecordBytes bounds a record's key+certificate+CA: 1 MiB, what a
	// Kubernetes Secret may hold in all, so any Secret the apiserver would
	// store can be taken into custody. Vault has no per-secret limit of its
	// own, but its storage does: integrated storage (Raft) takes 1 MiB an
	// entry by default (max_entry_size), Consul KV 512 KiB a value; a
	// record over the backend's limit is refused by Vault with its own
	// error, and nothing is redacted. Put refuses a larger record before
	// any call. A TLS record is a few KiB.
	MaxRecordBytes = 1 << 20
)

// Field names of a record's description (DataDescription). Records written
// before the description existed carry the same fields in the key's custom
// metadata (with metaVersion); Metadata still reads those.
const (
	metaCertificate = "certificate"
	metaIssuerName  = "issuer_name"
	metaIssuerKind  = "issuer_kind"
	metaIssuerGroup = "issuer_group"
	metaSerial      = "serial"
	metaNotBefore   = "not_before"
	metaNotAfter    = "not_after"
	metaKeySHA256   = "key_sha256"
	// metaVersion is the data version a legacy custom metadata describes. KV
	// v2 keeps custom metadata per key, not per version, and it was written
	// after the data, so a reader must check it against current_version.
	metaVersion = "version"
)

// Options configure New.
type Options struct {
	// Mount is the KV v2 mount path. Default DefaultMount.
	Mount string
	// Prefix is the folder under the mount that holds records. Default DefaultPrefix.
	Prefix string
	// MaxVersions is how many versions of a record Vault keeps
	// (1..MaxVersionsLimit), the mount's max_versions (EnsureMaxVersions).
	// Default DefaultMaxVersions.
	MaxVersions int
	// Timeout bounds each Vault call, whatever the caller's context allows.
	// Default DefaultTimeout.
	Timeout time.Duration
}

// Store is a custody.Store over a Vault KV v2 mount. It never reads record
// data: writing needs the keyward-custody-writer policy, Metadata alone the
// keyward-guard policy (read on subkeys, and on metadata for records
// written before descriptions).
type Store struct {
	client *vaultapi.Client
	opts   Options
}

var (
	_ custody.Store  = (*Store)(nil)
	_ custody.Lister = (*Store)(nil)
)

// New returns a Store using client, which must already be authenticated.
// The client's token may be renewed or replaced concurrently.
func New(client *vaultapi.Client, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("custody store needs a vault client")
	}
	if opts.Mount == "" {
		opts.Mount = DefaultMount
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.MaxVersions == 0 {
		opts.MaxVersions = DefaultMaxVersions
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	opts.Mount = strings.Trim(opts.Mount, "/")
	opts.Prefix = strings.Trim(opts.Prefix, "/")
	if opts.Mount == "" || opts.Prefix == "" {
		return nil, errors.New("custody store mount and prefix must not be blank")
	}
	if opts.MaxVersions < 1 || opts.MaxVersions > MaxVersionsLimit {
		return nil, fmt.Errorf("custody store max versions %d out of range 1..%d", opts.MaxVersions, MaxVersionsLimit)
	}
	return &Store{client: client, opts: opts}, nil
}

// Path returns "<mount>/<prefix>/<namespace>/<name>", the logical name that
// `vault kv get -mount=<mount> <prefix>/<namespace>/<name>` understands.
func (s *Store) Path(namespace, name string) string {
	return path.Join(s.opts.Mount, s.opts.Prefix, namespace, name)
}

func (s *Store) apiPath(kind, namespace, name string) string {
	return path.Join(s.opts.Mount, kind, s.opts.Prefix, namespace, name)
}

func validName(namespace, name string) error {
	for _, n := range []string{namespace, name} {
		if n == "" || strings.ContainsAny(n, "/") || n == "." || n == ".." {
			return fmt.Errorf("invalid secret reference %q/%q", namespace, name)
		}
	}
	return nil
}

// Put writes the record with check-and-set: key, certificate, CA and the
// version's description in one KV v2 data write, nothing else. cas 0 also
// succeeds when the key exists but its current version is deleted or
// destroyed, matching Metadata, which reports such a record as not found.
// How many versions Vault keeps is the mount's max_versions
// (EnsureMaxVersions); Put does not set it per key.
func (s *Store) Put(ctx context.Context, rec custody.Record, cas int) (int, error) {
	if err := validName(rec.Namespace, rec.Name); err != nil {
		return 0, fmt.Errorf("writing custody record: %w", err)
	}
	if n := len(rec.Key) + len(rec.Certificate) + len(rec.CA); n > MaxRecordBytes {
		return 0, fmt.Errorf("writing custody record for secret %s/%s: record is %d bytes, the custody store holds at most %d", rec.Namespace, rec.Name, n, MaxRecordBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()

	version, err := s.putData(ctx, rec, cas)
	if errors.Is(err, custody.ErrConflict) && cas == 0 {
		// A record whose current version was deleted counts as absent (see
		// Metadata); retry against the deleted version so re-issuance after a
		// `vault kv delete` is possible.
		current, deleted, merr := s.currentVersion(ctx, rec.Namespace, rec.Name)
		if merr == nil && deleted {
			version, err = s.putData(ctx, rec, current)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("writing custody record for secret %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	return version, nil
}

func (s *Store) putData(ctx context.Context, rec custody.Record, cas int) (int, error) {
	body := map[string]any{
		"data": map[string]any{
			custody.DataKey:         string(rec.Key),
			custody.DataCertificate: string(rec.Certificate),
			custody.DataCA:          string(rec.CA),
			DataDescription:         describe(rec.Meta),
		},
	}
	if cas >= 0 {
		body["options"] = map[string]any{"cas": cas}
	}
	sec, err := s.client.Logical().WriteWithContext(ctx, s.apiPath("data", rec.Namespace, rec.Name), body)
	if err != nil {
		return 0, storeError(err)
	}
	if sec == nil || sec.Data == nil {
		return 0, errors.New("vault returned no version for the write")
	}
	v, err := intField(sec.Data["version"])
	if err != nil {
		return 0, fmt.Errorf("reading written version: %w", err)
	}
	return v, nil
}

// Metadata reads the current version's description (never its data) with
// one read of the subkeys endpoint, which answers the version's structure
// with every value removed, and the version's number. Description and
// version come from the same stored version, so they always agree. A
// current version without a description (written before Keyward wrote
// descriptions, or by hand) is read from the key's custom metadata as
// before; when that describes another version (an old write between its
// data and its metadata, or a version Keyward did not write), only Version
// is set and Torn: callers that compare fingerprints then see a mismatch,
// which is the truth.
func (s *Store) Metadata(ctx context.Context, namespace, name string) (custody.Metadata, error) {
	if err := validName(namespace, name); err != nil {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	m, ok, err := s.subkeys(ctx, namespace, name)
	if err == nil && !ok {
		m, err = s.legacyMetadata(ctx, namespace, name)
	}
	if err != nil {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s: %w", namespace, name, err)
	}
	return m, nil
}

// subkeys reads the current version's structure. ok is false when the
// version carries no description.
func (s *Store) subkeys(ctx context.Context, namespace, name string) (custody.Metadata, bool, error) {
	// depth 2: the description's keys are the second level; the PEM fields
	// are leaves either way.
	sec, err := s.client.Logical().ReadWithDataWithContext(ctx, s.apiPath("subkeys", namespace, name), map[string][]string{"depth": {"2"}})
	if err != nil {
		return custody.Metadata{}, false, storeError(err)
	}
	// KV v2 answers a missing key with 404 and no body, a deleted or
	// destroyed current version with 404, its metadata and no subkeys.
	if sec == nil || sec.Data == nil {
		return custody.Metadata{}, false, custody.ErrNotFound
	}
	keys, _ := sec.Data["subkeys"].(map[string]any)
	meta, _ := sec.Data["metadata"].(map[string]any)
	if keys == nil {
		v, _ := intField(meta["version"])
		return custody.Metadata{}, false, fmt.Errorf("current version %d is deleted: %w", v, custody.ErrNotFound)
	}
	version, err := intField(meta["version"])
	if err != nil || version < 1 {
		return custody.Metadata{}, false, fmt.Errorf("reading the current version's number: %v", meta["version"])
	}
	m, ok := described(keys[DataDescription])
	m.Version = version
	return m, ok, nil
}

// legacyMetadata reads a record version written without a description
// from the key's custom metadata.
func (s *Store) legacyMetadata(ctx context.Context, namespace, name string) (custody.Metadata, error) {
	sec, err := s.readMetadata(ctx, namespace, name)
	if err != nil {
		return custody.Metadata{}, err
	}
	current, deleted, err := versionState(sec)
	if err != nil {
		return custody.Metadata{}, err
	}
	if deleted || current == 0 {
		return custody.Metadata{}, fmt.Errorf("current version %d is deleted: %w", current, custody.ErrNotFound)
	}
	custom, _ := sec.Data["custom_metadata"].(map[string]any)
	str := func(k string) string { v, _ := custom[k].(string); return v }
	if str(metaVersion) != strconv.Itoa(current) {
		return custody.Metadata{Version: current, Torn: true}, nil
	}
	m := fromFields(str)
	m.Version = current
	return m, nil
}

// EnsureMaxVersions makes the mount's max_versions Options.MaxVersions,
// reading <mount>/config and writing it only when it differs (the
// keyward-custody-writer policy allows read and update of max_versions
// there, nothing else). Keyward calls it once at start-up; Put no longer
// sets max_versions per record. It reports whether it wrote.
func (s *Store) EnsureMaxVersions(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	p := path.Join(s.opts.Mount, "config")
	sec, err := s.client.Logical().ReadWithContext(ctx, p)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", p, storeError(err))
	}
	if sec != nil && sec.Data != nil {
		if n, err := intField(sec.Data["max_versions"]); err == nil && n == s.opts.MaxVersions {
			return false, nil
		}
	}
	if _, err := s.client.Logical().WriteWithContext(ctx, p, map[string]any{"max_versions": s.opts.MaxVersions}); err != nil {
		return false, fmt.Errorf("setting max_versions=%d on %s: %w", s.opts.MaxVersions, p, storeError(err))
	}
	return true, nil
}

func (s *Store) readMetadata(ctx context.Context, namespace, name string) (*vaultapi.Secret, error) {
	sec, err := s.client.Logical().ReadWithContext(ctx, s.apiPath("metadata", namespace, name))
	if err != nil {
		return nil, storeError(err)
	}
	if sec == nil || sec.Data == nil {
		return nil, custody.ErrNotFound
	}
	return sec, nil
}

// currentVersion reports the key's current version and whether it is deleted
// or destroyed.
func (s *Store) currentVersion(ctx context.Context, namespace, name string) (int, bool, error) {
	sec, err := s.readMetadata(ctx, namespace, name)
	if err != nil {
		return 0, false, err
	}
	return versionState(sec)
}

func versionState(sec *vaultapi.Secret) (int, bool, error) {
	current, err := intField(sec.Data["current_version"])
	if err != nil {
		return 0, false, fmt.Errorf("reading current_version: %w", err)
	}
	versions, _ := sec.Data["versions"].(map[string]any)
	v, _ := versions[strconv.Itoa(current)].(map[string]any)
	if v == nil {
		return current, true, nil
	}
	destroyed, _ := v["destroyed"].(bool)
	deletion, _ := v["deletion_time"].(string)
	return current, destroyed || deletion != "", nil
}

// List names the records of namespace with one LIST of its metadata folder
// (list on <mount>/metadata/<prefix>/*). Vault lists every key that has
// metadata, so a record whose current version is deleted is listed too.
func (s *Store) List(ctx context.Context, namespace string) ([]string, error) {
	if err := custody.ValidateListNamespace(namespace); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sec, err := s.client.Logical().ListWithContext(ctx, s.apiPath("metadata", namespace, "")+"/")
	if err != nil {
		err = storeError(err)
		if errors.Is(err, custody.ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing custody records of namespace %s: %w", namespace, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, nil // Vault answers an empty folder with 404 and no body
	}
	keys, _ := sec.Data["keys"].([]any)
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		// A key ending in "/" is a folder, not a record of this namespace.
		if n, ok := k.(string); ok && n != "" && !strings.HasSuffix(n, "/") {
			names = append(names, n)
		}
	}
	return names, nil
}

// Delete removes the record's metadata and every version.
func (s *Store) Delete(ctx context.Context, namespace, name string) error {
	if err := validName(namespace, name); err != nil {
		return fmt.Errorf("deleting custody record: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if _, err := s.client.Logical().DeleteWithContext(ctx, s.apiPath("metadata", namespace, name)); err != nil {
		return fmt.Errorf("deleting custody record for secret %s/%s: %w", namespace, name, storeError(err))
	}
	return nil
}

// storeError maps a Vault client error (vault.MapError) onto the custody
// contract: a missing path is custody.ErrNotFound, a stale check-and-set
// version custody.ErrConflict. Messages keep Vault's method, URL, status and
// error strings (they name paths, never data), never response bodies.
func storeError(err error) error {
	err = vault.MapError(err)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return fmt.Errorf("%w: %w", err, custody.ErrNotFound)
	case errors.Is(err, vault.ErrCheckAndSet):
		return fmt.Errorf("%w: %w", err, custody.ErrConflict)
	}
	return err
}

func intField(v any) (int, error) {
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }:
		i, err := n.Int64()
		return int(i), err
	case float64:
		return int(n), nil
	case int:
		return n, nil
	default:
		return 0, fmt.Errorf("unexpected %T", v)
	}
}
