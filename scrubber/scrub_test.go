// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"context"
	"testing"

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
			store := &watcherFakeStore{records: map[string]Record{}}
			sec := scrubTestSecret(scrubTestNewPair(t, "ecdsa"))
			for i := 0; i < tc.existing; i++ {
				if _, err := store.Put(context.Background(), Record{Namespace: sec.Namespace, Name: sec.Name}, -1); err != nil {
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
