// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package revocation revokes, in Vault PKI, the certificates a VaultIssuer or
// VaultClusterIssuer with spec.revocation signed once they are no longer in
// use: superseded in their custody placeholder Secret by a renewal or re-key,
// or left behind by a deleted Certificate or Secret. It sees serial numbers
// and issuers only, never a key. Pending revocations wait out the issuer's
// grace period in a ConfigMap, so a restart or a new leader picks them up.
// See docs/revocation.md.
package revocation

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// Reasons a serial becomes pending (Entry.Reason).
const (
	// ReasonSuperseded: the Secret now holds another certificate (renewal, re-key).
	ReasonSuperseded = "superseded"
	// ReasonCertificateDeleted: the Certificate was deleted.
	ReasonCertificateDeleted = "certificate-deleted"
	// ReasonSecretDeleted: the placeholder Secret was deleted.
	ReasonSecretDeleted = "secret-deleted"
)

// IssuerRef names a Keyward issuer. Namespace is empty for a VaultClusterIssuer.
type IssuerRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String is "VaultClusterIssuer/<name>" or "VaultIssuer/<namespace>/<name>".
func (r IssuerRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Object returns an empty issuer object of the ref's kind, or nil for an
// unknown kind.
func (r IssuerRef) Object() v1alpha1.GenericIssuer {
	switch r.Kind {
	case v1alpha1.VaultClusterIssuerKind:
		return &v1alpha1.VaultClusterIssuer{}
	case v1alpha1.VaultIssuerKind:
		return &v1alpha1.VaultIssuer{}
	}
	return nil
}

// Entry is one pending revocation: public facts only (serial, issuer, where
// the certificate was used), never key material.
type Entry struct {
	// Serial is the certificate's serial number, lower-case hex without
	// colons (custody.SerialHex).
	Serial string `json:"serial"`
	// Issuer signed the certificate; its spec.revocation.auth revokes it.
	Issuer IssuerRef `json:"issuer"`
	// Namespace and Secret are the placeholder Secret that held it.
	Namespace string `json:"namespace"`
	Secret    string `json:"secret"`
	// Certificate is the cert-manager Certificate that owned the Secret.
	Certificate string `json:"certificate,omitempty"`
	// Reason is ReasonSuperseded, ReasonCertificateDeleted or ReasonSecretDeleted.
	Reason string `json:"reason"`
	// SupersededBy is the serial that replaced it (ReasonSuperseded only).
	SupersededBy string `json:"supersededBy,omitempty"`
	// Detected is when Keyward saw it go out of use; Due is Detected plus
	// the issuer's grace period: no revocation is attempted before.
	Detected time.Time `json:"detected"`
	Due      time.Time `json:"due"`
	// Attempts counts failed attempts; NextAttempt is when the next may run
	// (zero: at Due); LastError is the last failure, for events and humans.
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
}

// Key identifies an entry: a serial is unique within its issuer's mount, and
// the same serial seen twice (superseded, then its Secret deleted) is one
// revocation.
func (e *Entry) Key() string {
	return e.Issuer.String() + "#" + strings.ToLower(e.Serial)
}

// ReadyAt is when the next attempt may run: Due, or NextAttempt after a failure.
func (e *Entry) ReadyAt() time.Time {
	if e.NextAttempt.After(e.Due) {
		return e.NextAttempt
	}
	return e.Due
}

// stateVersion is the format of the persisted state; Decode refuses others.
const stateVersion = 1

// DataKey is the ConfigMap key holding the pending revocations.
const DataKey = "pending.json"

type persisted struct {
	Version int      `json:"version"`
	Pending []*Entry `json:"pending"`
}

// Encode serialises entries, sorted by key, so an unchanged set encodes to
// the same bytes (and the ConfigMap is not rewritten for nothing).
func Encode(entries map[string]*Entry) (string, error) {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p := persisted{Version: stateVersion, Pending: make([]*Entry, 0, len(keys))}
	for _, k := range keys {
		p.Pending = append(p.Pending, entries[k])
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encoding pending revocations: %w", err)
	}
	return string(b), nil
}

// Decode reads what Encode wrote. An empty string is an empty set. Entries
// without a serial or issuer are dropped (they could never be revoked).
func Decode(s string) (map[string]*Entry, error) {
	out := map[string]*Entry{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	var p persisted
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("decoding pending revocations: %w", err)
	}
	if p.Version != stateVersion {
		return nil, fmt.Errorf("decoding pending revocations: format version %d, this Keyward reads %d", p.Version, stateVersion)
	}
	for _, e := range p.Pending {
		if e == nil || e.Serial == "" || e.Issuer.Name == "" || e.Issuer.Object() == nil {
			continue
		}
		out[e.Key()] = e
	}
	return out, nil
}
