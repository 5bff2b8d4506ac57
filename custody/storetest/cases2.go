// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/keyward-io/keyward/custody"
)

// testTorn reads metadata while a writer writes: every answer is either
// Torn with only Version set, or one record's fields at the version Put
// returned for it, never a mix. With a Tear hook, an interrupted write
// is reported Torn until the next Put.
func testTorn(t *testing.T, s Subject) {
	const writes, readers = 6, 2
	recs := make([]custody.Record, writes)
	versions := make([]int, writes)
	var mu sync.Mutex
	var seen []custody.Metadata
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				md, err := s.Meta.Metadata(ctx(t), ns, "torn")
				noKey(t, err, recs...)
				if err == nil {
					mu.Lock()
					seen = append(seen, md)
					mu.Unlock()
				} else if !errors.Is(err, custody.ErrNotFound) {
					t.Errorf("Metadata during writes: %v", err)
				}
			}
		})
	}
	v := 0
	for i := range writes {
		recs[i] = newRecord(t, ns, "torn", strconv.Itoa(i))
		v = put(t, s.Store, recs[i], v)
		versions[i] = v
	}
	close(done)
	wg.Wait()
	for _, md := range seen {
		checkObserved(t, md, recs, versions)
	}
	t.Logf("%d metadata reads during %d writes", len(seen), writes)
	if s.Tear != nil {
		testTear(t, s, recs[writes-1], v)
	}
}

func checkObserved(t *testing.T, md custody.Metadata, recs []custody.Record, versions []int) {
	t.Helper()
	if md.Torn {
		if (md != custody.Metadata{Version: md.Version, Torn: true}) {
			t.Errorf("torn metadata carries fields besides Version: %+v", md)
		}
		return
	}
	i, err := strconv.Atoi(strings.TrimPrefix(md.CertificateName, "cert-"))
	if err != nil || i < 0 || i >= len(recs) {
		t.Errorf("metadata names no record written: %+v", md)
		return
	}
	if d := metaDiff(md, recs[i].Meta, versions[i]); d != "" {
		t.Errorf("metadata mixes records or versions (certificate of write %d): %s", i, d)
	}
}

func testTear(t *testing.T, s Subject, last custody.Record, v int) {
	s.Tear(t, ns, "torn")
	md, err := s.Meta.Metadata(ctx(t), ns, "torn")
	if err != nil {
		t.Fatalf("Metadata after a torn write: %v", err)
	}
	if !md.Torn || md.Version <= v || (md != custody.Metadata{Version: md.Version, Torn: true}) {
		t.Fatalf("Metadata after a torn write = %+v, want only Torn and a Version after %d", md, v)
	}
	rec := newRecord(t, ns, "torn", "repair")
	nv := put(t, s.Store, rec, md.Version)
	md, err = s.Meta.Metadata(ctx(t), ns, "torn")
	if err != nil {
		t.Fatalf("Metadata after the repairing Put: %v", err)
	}
	wantMeta(t, "after the repairing Put", md, rec.Meta, nv)
	if got, err := s.Reader.Read(ctx(t), ns, "torn", v); err == nil {
		wantData(t, "the version before the torn write", got, last, v)
	}
}

// testConcurrency writes many records in parallel, each a few versions,
// and checks that no record sees another's fields.
func testConcurrency(t *testing.T, s Subject) {
	const records, versions = 12, 2
	var wg sync.WaitGroup
	for i := range records {
		wg.Go(func() {
			name := fmt.Sprintf("web-%d", i)
			v := 0
			var rec custody.Record
			for j := range versions {
				rec = newRecord(t, ns, name, fmt.Sprintf("%d-%d", i, j))
				nv, err := s.Store.Put(ctx(t), rec, v)
				noKey(t, err, rec)
				if err != nil {
					t.Errorf("Put %s: %v", name, err)
					return
				}
				v = nv
			}
			md, err := s.Store.Metadata(ctx(t), ns, name)
			if err != nil {
				t.Errorf("Metadata %s: %v", name, err)
				return
			}
			wantMeta(t, name, md, rec.Meta, v)
			got, err := s.Reader.Read(ctx(t), ns, name, v)
			if err != nil {
				t.Errorf("Read %s: %v", name, err)
				return
			}
			wantData(t, name, got, rec, v)
		})
	}
	wg.Wait()
}

func testMaxSize(t *testing.T, s Subject) {
	if s.MaxRecordBytes <= 0 {
		t.Fatal("storetest: Subject.MaxRecordBytes must be set")
	}
	rec := newRecord(t, ns, "big", "big")
	fill := s.MaxRecordBytes - len(rec.Key) - len(rec.CA)
	rec.Certificate = []byte(strings.Repeat("A", fill))
	v := put(t, s.Store, rec, 0)
	got, err := s.Reader.Read(ctx(t), ns, "big", v)
	if err != nil {
		t.Fatalf("Read of a record of exactly %d bytes: %v", s.MaxRecordBytes, err)
	}
	wantData(t, "largest record", got, rec, v)

	over := newRecord(t, ns, "big", "over")
	over.Certificate = []byte(strings.Repeat("B", fill+1))
	for _, cas := range []int{v, -1} {
		_, err = s.Store.Put(ctx(t), over, cas)
		noKey(t, err, rec, over)
		if err == nil || errors.Is(err, custody.ErrConflict) {
			t.Fatalf("Put of %d bytes (limit %d), cas %d: %v, want a size error", s.MaxRecordBytes+1, s.MaxRecordBytes, cas, err)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(s.MaxRecordBytes)) {
			t.Errorf("size error does not name the limit %d: %v", s.MaxRecordBytes, err)
		}
	}
	md, err := s.Store.Metadata(ctx(t), ns, "big")
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	wantMeta(t, "after refused oversized writes", md, rec.Meta, v)
	_, err = s.Store.Put(ctx(t), func() custody.Record { r := over; r.Name = "big-new"; return r }(), 0)
	if err == nil {
		t.Errorf("Put of an oversized new record succeeded")
	}
	_, err = s.Store.Metadata(ctx(t), ns, "big-new")
	notFound(t, "Metadata of a refused oversized new record", err, over)
}
