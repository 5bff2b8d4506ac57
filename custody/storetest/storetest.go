// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package storetest is the conformance suite every custody.Store runs: Vault
// KV v2 against the real Vault, each cloud store against its contract fake.
// A store package's test calls Run with a function that opens the store
// under test over a fresh, empty set of records; the suite then checks the
// custody.Store contract (record.go) case by case, each a subtest:
//
//   - round trip: every Metadata field, Version >= 1 and one more per Put,
//     and every version's key, certificate and CA through the key reader;
//   - check-and-set: cas 0 on an existing record and a stale cas fail with
//     custody.ErrConflict and write nothing; N writers racing with the same
//     cas: exactly one wins with CASStrict, at least one and the others
//     ErrConflict with CASBestEffort;
//   - metadata without data access: Subject.Meta reads the same metadata,
//     and, with MetaOnly, neither reads the key nor writes;
//   - torn writes: under a concurrent writer, Metadata is either Torn (only
//     Version set) or every field of one record, the one Put wrote at that
//     version; with a Tear hook, a write interrupted between data and
//     metadata is reported Torn and the next Put repairs it;
//   - not found, delete (every version gone), concurrency (records written in
//     parallel never mix), max size (MaxRecordBytes of key+certificate+CA
//     is stored, one byte more is refused naming the limit, and nothing is
//     written), name mapping (the longest and oddest names Kubernetes allows
//     map to distinct paths and round-trip; invalid names are refused);
//   - listing, when the store implements custody.Lister (skipped
//     otherwise): List names exactly one namespace's records ("ns-a", not
//     "ns-ab" nor "ns"), across a fake's pages, an empty list for a
//     namespace without records, and no record deleted with Delete;
//   - no error string anywhere in the suite carries key material.
//
// This package imports "testing" and is meant for tests only.
package storetest

import (
	"context"
	"testing"

	"github.com/keyward-io/keyward/custody"
)

// Subject is one store under test.
type Subject struct {
	// Store is the custody writer's view: Put, Metadata, Delete, Path.
	Store custody.Store
	// Meta is a client with metadata-only permission where the provider can
	// express it (it may equal Store when it cannot; MetaOnly must then be
	// false).
	Meta custody.Store
	// MetaOnly is true when Meta really cannot read key data; the suite
	// then proves it with MetaReader, and proves that Meta cannot write.
	MetaOnly bool
	// MetaReader is a key reader with Meta's credentials. Required when
	// MetaOnly is true: reading a key through it must fail.
	MetaReader KeyReader
	// Reader is the agent's view: it reads one version with the key.
	Reader KeyReader
	// MaxRecordBytes is the provider's size limit for one record, counted
	// as len(Key)+len(Certificate)+len(CA).
	MaxRecordBytes int
	// CAS says how strong the store's check-and-set is.
	CAS CASKind
	// Tear, when not nil, leaves the record namespace/name with a new data
	// version that no metadata describes: what a writer that died between
	// a two-call write leaves, or (Vault) a version written without
	// Keyward's description. Stores where that cannot happen leave it nil.
	Tear func(t *testing.T, namespace, name string)
}

// KeyReader reads one version of a record, key included (an agent's view).
type KeyReader interface {
	Read(ctx context.Context, namespace, name string, version int) (custody.Record, error)
}

// PathParser is implemented by stores whose Path can be mapped back to the
// record's namespace and name; the suite then checks the round trip.
type PathParser interface {
	ParsePath(path string) (namespace, name string, err error)
}

// CASKind is the strength of a store's check-and-set.
type CASKind int

const (
	// CASStrict: a stale version is refused atomically by the provider.
	CASStrict CASKind = iota
	// CASBestEffort: the version is checked, then written; a narrow race
	// remains, documented by the store.
	CASBestEffort
)

// Run runs every conformance case. newSubject returns a Subject over a
// fresh, empty namespace of records (for example a unique prefix); it is
// called once per case.
func Run(t *testing.T, newSubject func(t *testing.T) Subject) {
	cases := []struct {
		name string
		run  func(t *testing.T, s Subject)
	}{
		{"round trip", testRoundTrip},
		{"check-and-set", testCAS},
		{"check-and-set race", testCASRace},
		{"metadata without data access", testMetaOnly},
		{"torn writes", testTorn},
		{"not found", testNotFound},
		{"delete", testDelete},
		{"concurrency", testConcurrency},
		{"max size", testMaxSize},
		{"name mapping", testNames},
		{"invalid names", testInvalidNames},
		{"list", testList},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSubject(t)
			if s.Store == nil || s.Meta == nil || s.Reader == nil {
				t.Fatal("storetest: Subject needs Store, Meta and Reader")
			}
			if s.MetaOnly && s.MetaReader == nil {
				t.Fatal("storetest: MetaOnly needs a MetaReader to prove it")
			}
			c.run(t, s)
		})
	}
}
