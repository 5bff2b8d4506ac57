// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"context"
	"errors"
	"time"
)

// Annotations and labels that Keyward puts on a scrubbed (placeholder) Secret.
// They are the only link between a Secret in the API and its custody record,
// so their names are part of Keyward's public contract.
const (
	// AnnotationCustodyPath names the custody record, as "<mount>/<prefix>/<namespace>/<secret>".
	AnnotationCustodyPath = "keyward.io/custody-path"
	// AnnotationCustodyVersion is the custody record version that holds this Secret's key.
	AnnotationCustodyVersion = "keyward.io/custody-version"
	// AnnotationKeySHA256 is the hex SHA-256 of the key's SubjectPublicKeyInfo (DER).
	// It identifies the key pair without revealing anything about the private key.
	AnnotationKeySHA256 = "keyward.io/key-sha256"
	// AnnotationScrubbedAt is the RFC 3339 time (nanoseconds) the key was removed.
	AnnotationScrubbedAt = "keyward.io/scrubbed-at"
	// AnnotationScrubbedBy is "webhook" or "watcher": which path removed the key.
	AnnotationScrubbedBy = "keyward.io/scrubbed-by"
	// AnnotationNotBefore and AnnotationNotAfter carry the certificate's validity
	// (RFC 3339) in strict mode, where tls.crt is not kept in the Secret.
	AnnotationNotBefore = "keyward.io/not-before"
	AnnotationNotAfter  = "keyward.io/not-after"
	// AnnotationSerial is the certificate serial number (hex) the custody record holds.
	AnnotationSerial = "keyward.io/serial"

	// LabelCustody is set to LabelCustodyVault on every Secret whose key is in custody.
	LabelCustody      = "keyward.io/custody"
	LabelCustodyVault = "vault"

	// NamespaceLabelCustody on a Namespace opts it in ("enabled").
	NamespaceLabelCustody = "keyward.io/custody"
	// NamespaceLabelRedactCertificates on a Namespace overrides strict mode
	// ("true" or "false") for that namespace.
	NamespaceLabelRedactCertificates = "keyward.io/redact-certificates"
)

// Record is what custody holds for one Secret: the private key and the public
// material issued with it. Key is PEM; it must never be logged.
type Record struct {
	// Namespace and Name identify the Secret the record belongs to.
	Namespace string
	Name      string
	// Key is the PEM private key (tls.key).
	Key []byte
	// Certificate is the PEM leaf certificate plus any intermediates (tls.crt).
	Certificate []byte
	// CA is the PEM CA bundle (ca.crt), possibly empty.
	CA []byte
	// Meta describes the record; it is stored as Vault KV custom metadata,
	// which readers without data access can see.
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
	// Serial is the leaf certificate's serial number, lower-case hex.
	Serial string
	// NotBefore and NotAfter are the leaf certificate's validity.
	NotBefore time.Time
	NotAfter  time.Time
	// KeySHA256 is the hex SHA-256 of the public key's DER SubjectPublicKeyInfo.
	KeySHA256 string
	// Version is the store's version of the record (Vault KV v2 version).
	// Ignored on Put.
	Version int
	// Torn reports that the record's metadata describes another version
	// than the current one: a write is between its data and its metadata
	// (for milliseconds), or was interrupted there. Only Version is set
	// then. Ignored on Put.
	Torn bool
}

// Store keeps custody records. Implementations must be safe for concurrent use.
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
	// AnnotationCustodyPath.
	Path(namespace, name string) string
}

// ErrNotFound is wrapped by Store errors for records that do not exist.
var ErrNotFound = errors.New("custody record not found")

// ErrConflict is wrapped by Store.Put when the check-and-set version is stale.
var ErrConflict = errors.New("custody record changed concurrently")
