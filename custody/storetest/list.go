// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/keyward-io/keyward/custody"
)

// listFixture is what testList writes: namespace -> Secret names. "ns-ab"
// extends "ns-a" and "ns" prefixes both, to catch a prefix match taken for
// a namespace; ns-a has more records than a fake's page and the oddest
// names (a dot, doubled dashes, digits only, the longest name, which some
// stores keep by its hash).
func listFixture() map[string][]string {
	return map[string][]string{
		"ns-a":  {"web", "api.example.com", "x--y", "0", longName, "gone"},
		"ns-ab": {"web", "other"},
		ns:      {"web"},
	}
}

// testList: a store that implements custody.Lister names exactly the
// records of the namespace asked for, none of another namespace whose name
// extends it or is extended by it, an empty list (no error) for a
// namespace without records, and no record deleted with Delete; an invalid
// namespace is refused.
func testList(t *testing.T, s Subject) {
	l, ok := s.Store.(custody.Lister)
	if !ok {
		t.Skip("the store does not implement custody.Lister: the audit reads each record's metadata")
	}
	var recs []custody.Record
	for namespace, names := range listFixture() {
		for i, name := range names {
			rec := newRecord(t, namespace, name, fmt.Sprint("list-", namespace, "-", i))
			put(t, s.Store, rec, 0)
			recs = append(recs, rec)
		}
	}
	for namespace, want := range listFixture() {
		wantList(t, l, namespace, want, recs)
	}
	for _, empty := range []string{"ns", "ns-b", "absent"} {
		wantList(t, l, empty, nil, recs)
	}
	if err := s.Store.Delete(ctx(t), "ns-a", "gone"); err != nil {
		t.Fatalf("Delete ns-a/gone: %v", err)
	}
	wantList(t, l, "ns-a", slices.DeleteFunc(listFixture()["ns-a"], func(n string) bool { return n == "gone" }), recs)
	for _, bad := range []string{"", "a/b"} {
		if names, err := l.List(ctx(t), bad); err == nil {
			t.Errorf("List(%q) = %q, want an error", bad, names)
		}
	}
}

// wantList fails unless List(namespace) returns exactly want, in any order.
func wantList(t *testing.T, l custody.Lister, namespace string, want []string, recs []custody.Record) {
	t.Helper()
	got, err := l.List(ctx(t), namespace)
	noKey(t, err, recs...)
	if err != nil {
		t.Errorf("List(%q): %v", namespace, err)
		return
	}
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("List(%q) = %q, want %q", namespace, got, want)
	}
}
