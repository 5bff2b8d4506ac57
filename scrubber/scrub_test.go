// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// TestScrubExpectedVersion checks the write's Vault round trips: a right
// expected version writes at once, a stale one or none reads the current
// version first, and every path ends with the record at the next version.
func TestScrubExpectedVersion(t *testing.T) {
	for _, tc := range []struct {
		name      string
		existing  int // records written before the scrub
		expected  *int
		wantReads int
		wantPuts  int
		wantMiss  float64
	}{
		{name: "create, no record", existing: 0, expected: ptr.To(0), wantReads: 0, wantPuts: 1},
		{name: "update, hint current", existing: 2, expected: ptr.To(2), wantReads: 0, wantPuts: 1},
		{name: "create over an old record", existing: 1, expected: ptr.To(0), wantReads: 1, wantPuts: 2, wantMiss: 1},
		{name: "update, stale hint", existing: 3, expected: ptr.To(1), wantReads: 1, wantPuts: 2, wantMiss: 1},
		{name: "no hint", existing: 1, expected: nil, wantReads: 1, wantPuts: 1},
		{name: "negative hint is ignored", existing: 1, expected: ptr.To(-1), wantReads: 1, wantPuts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &watcherFakeStore{records: map[string]custody.Record{}}
			sec := scrubTestSecret(scrubTestNewPair(t, "ecdsa"))
			for i := 0; i < tc.existing; i++ {
				if _, err := store.Put(context.Background(), custody.Record{Namespace: sec.Namespace, Name: sec.Name}, -1); err != nil {
					t.Fatal(err)
				}
			}
			store.puts, store.reads = 0, 0
			m, err := NewMetrics(nil)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewScrubber(store, clock.RealClock{}, m, 0)
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.Scrub(context.Background(), ScrubRequest{Secret: sec, By: ByWebhook, ExpectedVersion: tc.expected})
			if err != nil {
				t.Fatalf("Scrub: %v", err)
			}
			if out.Result != ResultScrubbed || out.Version != tc.existing+1 {
				t.Errorf("result %s version %d, want %s version %d", out.Result, out.Version, ResultScrubbed, tc.existing+1)
			}
			if store.reads != tc.wantReads || store.puts != tc.wantPuts {
				t.Errorf("store calls: %d metadata reads, %d puts; want %d and %d", store.reads, store.puts, tc.wantReads, tc.wantPuts)
			}
			if got := testutil.ToFloat64(m.StaleVersionHints); got != tc.wantMiss {
				t.Errorf("keyward_custody_version_hint_misses_total = %v, want %v", got, tc.wantMiss)
			}
		})
	}
}

// TestScrubReusesUnchangedRecord: the same key and certificate written again
// over the placeholder that names them costs one metadata read, no write.
func TestScrubReusesUnchangedRecord(t *testing.T) {
	store := &watcherFakeStore{records: map[string]custody.Record{}}
	s, err := NewScrubber(store, clock.RealClock{}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	pair := scrubTestNewPair(t, "ecdsa")
	first, err := s.Scrub(context.Background(), ScrubRequest{Secret: scrubTestSecret(pair), By: ByWebhook, ExpectedVersion: ptr.To(0)})
	if err != nil || first.Version != 1 {
		t.Fatalf("first scrub: version %d, %v", first.Version, err)
	}
	fp, serial := first.Plan.Record.Meta.KeySHA256, first.Plan.Record.Meta.Serial

	for _, tc := range []struct {
		name        string
		version     int
		fp, serial  string
		wantVersion int
		wantPuts    int
	}{
		{"same key and certificate", 1, fp, serial, 1, 0},
		{"placeholder names another key", 1, "00" + fp[2:], serial, 2, 1},
		{"same key, new certificate", 2, fp, "ff", 3, 1},
		{"placeholder names an old version (stale hint: conflict, read, write)", 1, fp, serial, 4, 2},
	} {
		store.puts, store.reads = 0, 0
		out, err := s.Scrub(context.Background(), ScrubRequest{Secret: scrubTestSecret(pair), By: ByWebhook,
			ExpectedVersion: ptr.To(tc.version), ExpectedKeySHA256: tc.fp, ExpectedSerial: tc.serial})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if out.Version != tc.wantVersion || store.puts != tc.wantPuts || out.Secret == nil {
			t.Errorf("%s: version %d with %d puts (secret %v), want version %d with %d puts", tc.name, out.Version, store.puts, out.Secret != nil, tc.wantVersion, tc.wantPuts)
		}
	}
}

// TestScrubNotifiesConfirmedWrites: observers hear of every confirmed write
// and reuse, with the placeholder and the record's version, and of nothing
// else (dry runs, failed writes).
func TestScrubNotifiesConfirmedWrites(t *testing.T) {
	store := &watcherFakeStore{records: map[string]custody.Record{}}
	s, err := NewScrubber(store, clock.RealClock{}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		version, annotation, keySHA256 string
	}
	var got []seen
	s.OnCustodyWrite(func(p *corev1.Secret, m custody.Metadata) {
		got = append(got, seen{strconv.Itoa(m.Version), p.Annotations[custody.AnnotationVersion], m.KeySHA256})
	})
	pair := scrubTestNewPair(t, "ecdsa")
	if _, err := s.Scrub(context.Background(), ScrubRequest{Secret: scrubTestSecret(pair), By: ByWebhook, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("a dry run notified observers: %v", got)
	}
	first, err := s.Scrub(context.Background(), ScrubRequest{Secret: scrubTestSecret(pair), By: ByWebhook, ExpectedVersion: ptr.To(0)})
	if err != nil {
		t.Fatal(err)
	}
	fp, serial := first.Plan.Record.Meta.KeySHA256, first.Plan.Record.Meta.Serial
	// The same key and certificate again over its placeholder: reused, not written.
	if _, err := s.Scrub(context.Background(), ScrubRequest{Secret: scrubTestSecret(pair), By: ByWebhook,
		ExpectedVersion: ptr.To(1), ExpectedKeySHA256: fp, ExpectedSerial: serial}); err != nil {
		t.Fatal(err)
	}
	store.putErr = errors.New("vault sealed")
	if _, err := s.Scrub(context.Background(), ScrubRequest{Secret: scrubTestSecret(pair), By: ByWebhook, ExpectedVersion: ptr.To(1)}); err == nil {
		t.Fatal("want the failed write's error")
	}
	want := []seen{{"1", "1", fp}, {"1", "1", fp}}
	if !slices.Equal(got, want) {
		t.Fatalf("observers saw %v, want %v (the write and the reuse, not the dry run or the failed write)", got, want)
	}
}
