// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/keyward-io/keyward/custody"
)

const ns = "team-a"

func testRoundTrip(t *testing.T, s Subject) {
	r1 := newRecord(t, ns, "web-tls", "one")
	v1 := put(t, s.Store, r1, 0)
	if v1 < 1 {
		t.Fatalf("first Put returned version %d, want >= 1", v1)
	}
	md, err := s.Store.Metadata(ctx(t), ns, "web-tls")
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	wantMeta(t, "after the first Put", md, r1.Meta, v1)

	r2 := newRecord(t, ns, "web-tls", "two")
	r2.Meta.IssuerName, r2.Meta.IssuerKind, r2.Meta.IssuerGroup = "", "", "" // empty fields round-trip as empty
	if v2 := put(t, s.Store, r2, v1); v2 != v1+1 {
		t.Fatalf("second Put returned version %d, want %d", v2, v1+1)
	}
	r3 := newRecord(t, ns, "web-tls", "three")
	if v3 := put(t, s.Store, r3, -1); v3 != v1+2 {
		t.Fatalf("Put with cas -1 returned version %d, want %d", v3, v1+2)
	}
	md, err = s.Store.Metadata(ctx(t), ns, "web-tls")
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	wantMeta(t, "after the third Put", md, r3.Meta, v1+2)
	for i, r := range []custody.Record{r1, r2, r3} {
		got, err := s.Reader.Read(ctx(t), ns, "web-tls", v1+i)
		noKey(t, err, r)
		if err != nil {
			t.Fatalf("Read version %d: %v", v1+i, err)
		}
		wantData(t, fmt.Sprintf("Read version %d", v1+i), got, r, v1+i)
	}
}

func testCAS(t *testing.T, s Subject) {
	r1 := newRecord(t, ns, "cas", "one")
	v1 := put(t, s.Store, r1, 0)
	r2 := newRecord(t, ns, "cas", "two")
	v2 := put(t, s.Store, r2, v1)
	stale := newRecord(t, ns, "cas", "stale")
	for _, cas := range []int{0, v1, v2 + 1, v2 + 5} {
		_, err := s.Store.Put(ctx(t), stale, cas)
		noKey(t, err, stale)
		if !errors.Is(err, custody.ErrConflict) {
			t.Errorf("Put with cas %d over version %d: %v, want custody.ErrConflict", cas, v2, err)
		}
	}
	md, err := s.Store.Metadata(ctx(t), ns, "cas")
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	wantMeta(t, "after refused writes", md, r2.Meta, v2)
	if _, err := s.Reader.Read(ctx(t), ns, "cas", v2+1); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Read version %d after refused writes: %v, want custody.ErrNotFound", v2+1, err)
	}
}

// testCASRace starts writers with the same cas at once. With CASStrict
// exactly one wins; with CASBestEffort at least one does, every other
// either wins too (the store's documented residual race) or gets
// ErrConflict, and the record ends as one winner wrote it.
func testCASRace(t *testing.T, s Subject) {
	const writers = 8
	base := put(t, s.Store, newRecord(t, ns, "race", "base"), 0)
	recs := make([]custody.Record, writers)
	versions := make([]int, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		recs[i] = newRecord(t, ns, "race", fmt.Sprint("w", i))
		wg.Go(func() {
			<-start
			versions[i], errs[i] = s.Store.Put(ctx(t), recs[i], base)
		})
	}
	close(start)
	wg.Wait()
	winners := map[int]int{} // version -> writer
	for i, err := range errs {
		noKey(t, err, recs...)
		switch {
		case err == nil:
			winners[versions[i]] = i
		case !errors.Is(err, custody.ErrConflict):
			t.Errorf("writer %d: %v, want success or custody.ErrConflict", i, err)
		}
	}
	if len(winners) == 0 || (s.CAS == CASStrict && len(winners) != 1) {
		t.Fatalf("%d writers with cas %d: %d won (versions %v), want exactly one (CASStrict) or at least one", writers, base, len(winners), versions)
	}
	md, err := s.Store.Metadata(ctx(t), ns, "race")
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	w, ok := winners[md.Version]
	if !ok || md.Torn {
		t.Fatalf("Metadata after the race = version %d (torn %v), not a winner's %v", md.Version, md.Torn, winners)
	}
	wantMeta(t, "after the race", md, recs[w].Meta, versions[w])
	got, err := s.Reader.Read(ctx(t), ns, "race", md.Version)
	if err != nil {
		t.Fatalf("Read version %d: %v", md.Version, err)
	}
	wantData(t, "winner's data", got, recs[w], md.Version)
	if s.CAS == CASStrict && md.Version != base+1 {
		t.Errorf("version after the race = %d, want %d", md.Version, base+1)
	}
}

func testMetaOnly(t *testing.T, s Subject) {
	rec := newRecord(t, ns, "meta", "one")
	v := put(t, s.Store, rec, 0)
	md, err := s.Meta.Metadata(ctx(t), ns, "meta")
	if err != nil {
		t.Fatalf("Metadata through Meta: %v", err)
	}
	wantMeta(t, "Metadata through Meta", md, rec.Meta, v)
	if _, err := s.Meta.Metadata(ctx(t), ns, "absent"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Metadata of a missing record through Meta: %v, want custody.ErrNotFound", err)
	}
	if !s.MetaOnly {
		t.Log("the provider cannot split metadata from data: Meta may read keys")
		return
	}
	got, err := s.MetaReader.Read(ctx(t), ns, "meta", v)
	noKey(t, err, rec)
	if err == nil || len(got.Key) != 0 {
		t.Errorf("reading the key with the metadata-only credentials succeeded (%d key bytes)", len(got.Key))
	}
	other := newRecord(t, ns, "meta", "intruder")
	_, err = s.Meta.Put(ctx(t), other, v)
	noKey(t, err, rec, other)
	if err == nil {
		t.Errorf("writing with the metadata-only credentials succeeded")
	}
	md, err = s.Store.Metadata(ctx(t), ns, "meta")
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	wantMeta(t, "after the metadata-only write attempt", md, rec.Meta, v)
}

func testNotFound(t *testing.T, s Subject) {
	_, err := s.Store.Metadata(ctx(t), ns, "missing")
	notFound(t, "Metadata of a missing record", err)
	_, err = s.Reader.Read(ctx(t), ns, "missing", 1)
	notFound(t, "Read of a missing record", err)
	rec := newRecord(t, ns, "present", "one")
	v := put(t, s.Store, rec, 0)
	_, err = s.Reader.Read(ctx(t), ns, "present", v+1)
	notFound(t, "Read of a version not written yet", err, rec)
	_, err = s.Reader.Read(ctx(t), "team-b", "present", v)
	notFound(t, "Read of the same name in another namespace", err, rec)
}

func testDelete(t *testing.T, s Subject) {
	var recs []custody.Record
	v := 0
	for i := range 3 {
		rec := newRecord(t, ns, "gone", fmt.Sprint(i))
		v = put(t, s.Store, rec, v)
		recs = append(recs, rec)
	}
	keep := newRecord(t, ns, "kept", "kept")
	kv := put(t, s.Store, keep, 0)
	if err := s.Store.Delete(ctx(t), ns, "gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Store.Metadata(ctx(t), ns, "gone")
	notFound(t, "Metadata after Delete", err, recs...)
	for i := v - 2; i <= v; i++ {
		_, err := s.Reader.Read(ctx(t), ns, "gone", i)
		notFound(t, fmt.Sprintf("Read version %d after Delete", i), err, recs...)
	}
	if err := s.Store.Delete(ctx(t), ns, "gone"); err != nil && !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Delete of a deleted record: %v, want nil or custody.ErrNotFound", err)
	}
	// The record can be written again from scratch, and the neighbour is untouched.
	again := newRecord(t, ns, "gone", "again")
	av := put(t, s.Store, again, 0)
	got, err := s.Reader.Read(ctx(t), ns, "gone", av)
	if err != nil {
		t.Fatalf("Read after re-creation: %v", err)
	}
	wantData(t, "re-created record", got, again, av)
	md, err := s.Store.Metadata(ctx(t), ns, "kept")
	if err != nil {
		t.Fatalf("Metadata of the other record: %v", err)
	}
	wantMeta(t, "other record after Delete", md, keep.Meta, kv)
}
