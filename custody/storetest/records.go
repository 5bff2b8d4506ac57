// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyward-io/keyward/custody"
)

// callTimeout bounds every store call the suite makes; stores bound their
// own calls too, this only keeps a hung store from hanging the test.
const callTimeout = 30 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return c
}

// newRecord returns a record for namespace/name whose every field is derived
// from tag, so that a record's fields can be told from another's. Its key
// is random PEM: stores never parse it.
func newRecord(t *testing.T, namespace, name, tag string) custody.Record {
	t.Helper()
	raw := make([]byte, 96)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tag))
	nb := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(sum[0]) * time.Hour)
	return custody.Record{
		Namespace:   namespace,
		Name:        name,
		Key:         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: raw}),
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("cert " + tag)}),
		CA:          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("ca " + tag)}),
		Meta: custody.Metadata{
			CertificateName: "cert-" + tag,
			IssuerName:      "issuer-" + tag,
			IssuerKind:      "ClusterIssuer",
			IssuerGroup:     "cert-manager.io",
			Serial:          hex.EncodeToString(sum[:8]),
			NotBefore:       nb,
			NotAfter:        nb.Add(90 * 24 * time.Hour),
			KeySHA256:       hex.EncodeToString(sum[:]),
		},
	}
}

// keyMarker is the part of a record's key that must never show in an error.
func keyMarker(rec custody.Record) string {
	b, _ := pem.Decode(rec.Key)
	if b == nil {
		return string(rec.Key)
	}
	return hex.EncodeToString(b.Bytes[:16])
}

// noKey fails the test if err's text carries any of the records' key
// material (the PEM body, or its bytes in hex or raw, as a store might dump
// them). The failure shows the error only up to the material.
func noKey(t *testing.T, err error, recs ...custody.Record) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, r := range recs {
		var needles []string
		if body := strings.SplitN(string(r.Key), "\n", 3); len(body) > 1 && len(body[1]) > 16 {
			needles = append(needles, body[1][:16])
		}
		if b, _ := pem.Decode(r.Key); b != nil {
			needles = append(needles, keyMarker(r), string(b.Bytes[:16]))
		}
		for _, n := range needles {
			if i := strings.Index(msg, n); i >= 0 {
				t.Errorf("error carries key material after: %q", msg[:i])
			}
		}
	}
}

// wantMeta fails unless got describes want at version v.
func wantMeta(t *testing.T, what string, got custody.Metadata, want custody.Metadata, v int) {
	t.Helper()
	if d := metaDiff(got, want, v); d != "" {
		t.Errorf("%s: metadata %s", what, d)
	}
}

func metaDiff(got, want custody.Metadata, v int) string {
	var diffs []string
	add := func(field string, g, w any) { diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.Version != v {
		add("Version", got.Version, v)
	}
	if got.Torn {
		add("Torn", true, false)
	}
	for _, f := range [][3]string{
		{"CertificateName", got.CertificateName, want.CertificateName},
		{"IssuerName", got.IssuerName, want.IssuerName},
		{"IssuerKind", got.IssuerKind, want.IssuerKind},
		{"IssuerGroup", got.IssuerGroup, want.IssuerGroup},
		{"Serial", got.Serial, want.Serial},
		{"KeySHA256", got.KeySHA256, want.KeySHA256},
	} {
		if f[1] != f[2] {
			add(f[0], f[1], f[2])
		}
	}
	if !got.NotBefore.Equal(want.NotBefore) {
		add("NotBefore", got.NotBefore, want.NotBefore)
	}
	if !got.NotAfter.Equal(want.NotAfter) {
		add("NotAfter", got.NotAfter, want.NotAfter)
	}
	return strings.Join(diffs, "; ")
}

// wantData fails unless got holds rec's key, certificate and CA at version v.
func wantData(t *testing.T, what string, got custody.Record, rec custody.Record, v int) {
	t.Helper()
	if got.Namespace != rec.Namespace || got.Name != rec.Name {
		t.Errorf("%s: read record %s/%s, want %s/%s", what, got.Namespace, got.Name, rec.Namespace, rec.Name)
	}
	if !bytes.Equal(got.Key, rec.Key) || !bytes.Equal(got.Certificate, rec.Certificate) || !bytes.Equal(got.CA, rec.CA) {
		t.Errorf("%s: read data differs from the record written", what)
	}
	if got.Meta.Version != v {
		t.Errorf("%s: read Meta.Version = %d, want %d", what, got.Meta.Version, v)
	}
}

// put writes rec with cas and fails the test on error.
func put(t *testing.T, s custody.Store, rec custody.Record, cas int) int {
	t.Helper()
	v, err := s.Put(ctx(t), rec, cas)
	noKey(t, err, rec)
	if err != nil {
		t.Fatalf("Put %s/%s cas=%d: %v", rec.Namespace, rec.Name, cas, err)
	}
	return v
}

// notFound fails unless err wraps custody.ErrNotFound.
func notFound(t *testing.T, what string, err error, recs ...custody.Record) {
	t.Helper()
	noKey(t, err, recs...)
	if !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("%s: %v, want an error wrapping custody.ErrNotFound", what, err)
	}
}
