// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
)

// noReader and noStore are never called: the test below only fills the cache.
type noReader struct{ client.Reader }
type noStore struct{ custody.Store }

func TestLoaderCacheIsBounded(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	l, err := NewLoader(noReader{}, noStore{}, clocktesting.NewFakePassiveClock(now), nil, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	l.cacheSize = 3
	for i := range 10 {
		l.remember(cacheKey{namespace: "apps", name: "s", version: string(rune('a' + i))}, nil, now)
		if len(l.cache) > 3 {
			t.Fatalf("cache grew to %d entries, bound is 3", len(l.cache))
		}
	}
}
