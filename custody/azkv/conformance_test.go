// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"testing"

	"github.com/keyward-io/keyward/custody/storetest"
)

// TestConformance runs the store conformance suite as a CONTRACT TEST:
// against internal/cloudfake/azkv through the official client, with the
// writer, guard (metadata only) and agent identities of deploy/azure.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		e := newEnv(t)
		return storetest.Subject{
			Store: e.writer, Meta: e.guard, MetaOnly: true,
			MetaReader: newReader(t, optsFor(e.srv, "guard-token")), Reader: e.agent,
			MaxRecordBytes: MaxRecordBytes,
			// Races are detected after the write, not prevented (package doc).
			CAS: storetest.CASBestEffort,
			// Value and tags are one SetSecret: no tear between them.
		}
	})
}
