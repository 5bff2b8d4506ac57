// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"bytes"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/keyward-io/keyward/custody"
)

// FuzzPlan checks the planner's invariants on arbitrary key and certificate
// bytes: no panic; a scrub plan redacts every key-bearing entry and yields a
// placeholder that plans as already scrubbed; errors never quote tls.key.
// The extra input becomes tls-combined.pem, whose key detection is by content.
// Seeds with real key pairs are generated at run time; testdata/fuzz/FuzzPlan
// holds only malformed inputs.
func FuzzPlan(f *testing.F) {
	for _, alg := range []string{"ecdsa", "rsa", "ed25519"} {
		p := scrubTestNewPair(f, alg)
		f.Add(p.KeyPEM, p.CertPEM, []byte{}, false)
		f.Add(p.KeyPEM, append(bytes.Clone(p.CertPEM), p.CertPEM...), p.CertPEM, true)
	}
	a, b := scrubTestNewPair(f, "ecdsa"), scrubTestNewPair(f, "ecdsa")
	f.Add(a.KeyPEM, b.CertPEM, []byte{}, false)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30}}), a.CertPEM, []byte{}, false)

	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, key, cert, extra []byte, strict bool) {
		s := scrubTestSecret(scrubTestKeyPair{KeyPEM: key, CertPEM: cert})
		if len(extra) > 0 {
			s.Data[DataCombinedPEM] = extra
		}
		p, err := Plan(s, PlanOptions{Strict: strict, Now: now, By: ByWatcher, Path: "custody/tls/team-a/web-tls"})
		if err != nil {
			if k := strings.TrimSpace(string(key)); len(k) >= 16 && strings.Contains(err.Error(), k) {
				t.Fatalf("error quotes tls.key: %v", err)
			}
			return
		}
		if p.Action != ActionScrub {
			if HoldsKeyMaterial(s) {
				t.Fatalf("key-bearing secret planned as %v", p.Action)
			}
			return
		}
		out := p.Apply(s, 1)
		if HoldsKeyMaterial(out) {
			t.Fatalf("placeholder still holds key material")
		}
		if _, ok := out.Data[custody.DataKey]; !ok {
			t.Fatalf("placeholder lost tls.key")
		}
		if again, err := Plan(out, PlanOptions{Now: now, By: ByWatcher, Path: "x"}); err != nil || again.Action != ActionAlreadyScrubbed {
			t.Fatalf("re-plan = %v, %v", again, err)
		}
		if !bytes.Equal(p.Record.Key, key) {
			t.Fatalf("record key differs from tls.key")
		}
	})
}
