// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package custody

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Data-field names of a custody record. They are, by contract, the data keys
// of a kubernetes.io/tls Secret, so a consumer can materialise a TLS Secret
// from a record and the scrubber moves each Secret entry to the field of the
// same name.
const (
	// DataKey holds the PEM private key (tls.key).
	DataKey = corev1.TLSPrivateKeyKey
	// DataCertificate holds the PEM leaf certificate plus intermediates (tls.crt).
	DataCertificate = corev1.TLSCertKey
	// DataCA holds the PEM CA bundle (ca.crt), possibly empty.
	DataCA = "ca.crt"
)

// Record is what custody holds for one Secret: the private key and the public
// material issued with it. Key is PEM; it must never be logged.
type Record struct {
	// Namespace and Name identify the Secret the record belongs to.
	Namespace string
	Name      string
	// Key is the PEM private key (DataKey).
	Key []byte
	// Certificate is the PEM leaf certificate plus any intermediates (DataCertificate).
	Certificate []byte
	// CA is the PEM CA bundle (DataCA), possibly empty.
	CA []byte
	// Meta describes the record; a store keeps it where readers without
	// data access can see it (Vault KV: in the version's data, as key names
	// the subkeys endpoint shows without values).
	Meta Metadata
}

// Metadata is the public description of a custody record. Nothing in it is secret.
type Metadata struct {
	// CertificateName is the cert-manager Certificate that owns the Secret.
	CertificateName string
	// IssuerName, IssuerKind and IssuerGroup copy cert-manager's issuer annotations.
	IssuerName  string
	IssuerKind  string
	IssuerGroup string
	// Serial is the leaf certificate's serial number, lower-case hex (SerialHex).
	Serial string
	// NotBefore and NotAfter are the leaf certificate's validity.
	NotBefore time.Time
	NotAfter  time.Time
	// KeySHA256 is the key fingerprint (Fingerprint of the leaf's public key).
	KeySHA256 string
	// Version is the store's version of the record (Vault KV v2 version).
	// Ignored on Put.
	Version int
	// WrittenAt is when the store wrote this version, when the store says
	// (set by key readers; zero otherwise). Ignored on Put.
	WrittenAt time.Time
	// Torn reports that the record's metadata describes another version
	// than the current one, in stores that write a version and its
	// metadata in two calls: a write is between them (for milliseconds), or
	// was interrupted there (for Vault: a version written without its
	// description, by hand or before versions carried one). Only Version is
	// set then. Ignored on Put.
	Torn bool
}

// Store keeps custody records. Implementations must be safe for concurrent
// use, must never return key material in an error, and must bound every
// call in time whatever the caller's context allows.
type Store interface {
	// Put writes rec. cas is the version the caller believes is current
	// (0: the record must not exist yet; -1: no check). It returns the new version.
	// A lost check-and-set race returns an error wrapping ErrConflict.
	Put(ctx context.Context, rec Record, cas int) (int, error)
	// Metadata returns the current record's metadata, or an error wrapping
	// ErrNotFound if there is none (or its current version is deleted).
	Metadata(ctx context.Context, namespace, name string) (Metadata, error)
	// Delete removes the record and all its versions.
	Delete(ctx context.Context, namespace, name string) error
	// Path is the store-specific location of a record, recorded in
	// AnnotationPath.
	Path(namespace, name string) string
}

// Lister is implemented by stores that can name a namespace's records in
// one call (or one call per page of results). The custody audit uses it, so
// that what it costs the store each period grows with the number of custody
// namespaces, not of records; a store without it is audited one Metadata
// read per record.
type Lister interface {
	// List returns the names of the Secrets of namespace that have a record
	// in the store, in any order. A record whose current version is deleted
	// may be listed. A namespace without records is an empty list, not an
	// error.
	List(ctx context.Context, namespace string) ([]string, error)
}

// ErrNotFound is wrapped by store errors for records (or record versions)
// that do not exist.
var ErrNotFound = errors.New("custody record not found")

// ErrConflict is wrapped by Store.Put when the check-and-set version is stale.
var ErrConflict = errors.New("custody record changed concurrently")
