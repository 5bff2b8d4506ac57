// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vaultkv

import (
	"strings"
	"time"

	"github.com/keyward-io/keyward/custody"
)

// DataDescription is the data field of each record version that describes
// it: a map whose keys are "<field>=<value>" strings (certificate,
// issuer_name, issuer_kind, issuer_group, serial, not_before, not_after,
// key_sha256) and whose values are empty. It is written with the key in
// the same KV v2 data write, so the description of a version is part of
// that version and can never describe another one. KV v2's subkeys
// endpoint (<mount>/subkeys/...) answers a version's structure with every
// value removed: a reader with read on subkeys only (the guard) sees the
// description, never the key.
const DataDescription = "keyward.io/description"

// describe is the DataDescription map for m. Empty fields are left out.
func describe(m custody.Metadata) map[string]any {
	d := map[string]any{}
	for k, v := range map[string]string{
		metaCertificate: m.CertificateName,
		metaIssuerName:  m.IssuerName,
		metaIssuerKind:  m.IssuerKind,
		metaIssuerGroup: m.IssuerGroup,
		metaSerial:      m.Serial,
		metaKeySHA256:   m.KeySHA256,
	} {
		if v != "" {
			d[k+"="+v] = ""
		}
	}
	if !m.NotBefore.IsZero() {
		d[metaNotBefore+"="+m.NotBefore.UTC().Format(time.RFC3339)] = ""
	}
	if !m.NotAfter.IsZero() {
		d[metaNotAfter+"="+m.NotAfter.UTC().Format(time.RFC3339)] = ""
	}
	return d
}

// described reads a DataDescription (from a data read or a subkeys read:
// only its keys count) into a Metadata without Version. ok is false when
// desc is not a description map.
func described(desc any) (custody.Metadata, bool) {
	d, ok := desc.(map[string]any)
	if !ok {
		return custody.Metadata{}, false
	}
	fields := make(map[string]string, len(d))
	for k := range d {
		if name, value, found := strings.Cut(k, "="); found {
			fields[name] = value
		}
	}
	return fromFields(func(k string) string { return fields[k] }), true
}

// fromFields builds a Metadata (without Version) from named fields, as
// both the description and the legacy custom metadata name them.
func fromFields(str func(string) string) custody.Metadata {
	m := custody.Metadata{
		CertificateName: str(metaCertificate),
		IssuerName:      str(metaIssuerName),
		IssuerKind:      str(metaIssuerKind),
		IssuerGroup:     str(metaIssuerGroup),
		Serial:          str(metaSerial),
		KeySHA256:       str(metaKeySHA256),
	}
	if t, err := time.Parse(time.RFC3339, str(metaNotBefore)); err == nil {
		m.NotBefore = t
	}
	if t, err := time.Parse(time.RFC3339, str(metaNotAfter)); err == nil {
		m.NotAfter = t
	}
	return m
}
