// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testclock "k8s.io/utils/clock/testing"

	"github.com/keyward-io/keyward/custody/storetest"
	fake "github.com/keyward-io/keyward/internal/cloudfake/gcpsm"
)

// TestConformance runs the store conformance suite as a CONTRACT TEST:
// against internal/cloudfake/gcpsm through the official client, with the
// writer, guard (metadata only) and agent identities of deploy/gcp.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		e := newEnv(t)
		guardReader, err := NewReader(context.Background(), optsFor(e.srv, "guard-token"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = guardReader.Close() })
		return storetest.Subject{
			Store: e.writer, Meta: e.guard, MetaOnly: true, MetaReader: guardReader, Reader: e.agent,
			MaxRecordBytes: MaxRecordBytes,
			// The lease makes Keyward writers exclusive, but a writer
			// stalled past LeaseTTL can still race (package doc).
			CAS:  storetest.CASBestEffort,
			Tear: func(t *testing.T, namespace, name string) { tear(t, e, namespace, name) },
		}
	})
}

// tear is a writer that died after AddSecretVersion, before its metadata
// update, an hour ago: its lease has expired, its version is the latest.
func tear(t *testing.T, e env, namespace, name string) {
	t.Helper()
	o := optsFor(e.srv, "writer-token")
	o.Clock = testclock.NewFakePassiveClock(time.Now().Add(-time.Hour))
	dead := newStore(t, o)
	e.srv.OnCall(func(m string) {
		if m == fake.MAddSecretVersion {
			e.srv.Fail(fake.MUpdateSecret, codes.Unavailable, 1)
		}
	})
	defer e.srv.OnCall(nil)
	if _, err := dead.Put(context.Background(), record(namespace, name, "TORN"), -1); err == nil {
		t.Fatal("tear: the dying writer's metadata update went through")
	}
}
