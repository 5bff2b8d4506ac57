// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package revocation

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	due := time.Date(2031, 1, 2, 3, 4, 5, 600, time.UTC)
	a := &Entry{Serial: "1f", Issuer: IssuerRef{Kind: v1alpha1.VaultClusterIssuerKind, Name: "vault"}, Namespace: "ns", Secret: "a-tls",
		Certificate: "a", Reason: ReasonSuperseded, SupersededBy: "2a", Detected: due.Add(-time.Hour), Due: due}
	b := &Entry{Serial: "3c", Issuer: IssuerRef{Kind: v1alpha1.VaultIssuerKind, Namespace: "ns", Name: "team"}, Namespace: "ns", Secret: "b-tls",
		Reason: ReasonCertificateDeleted, Detected: due, Due: due, Attempts: 2, NextAttempt: due.Add(4 * time.Second), LastError: "vault: status 503"}
	in := map[string]*Entry{a.Key(): a, b.Key(): b}
	s, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Encode(map[string]*Entry{b.Key(): b, a.Key(): a})
	if s != again {
		t.Errorf("Encode depends on map order:\n%s\n%s", s, again)
	}
	out, err := Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n in %+v\nout %+v", in, out)
	}
	if strings.Contains(s, "nextAttempt") && a.NextAttempt.IsZero() && strings.Count(s, "nextAttempt") != 1 {
		t.Errorf("zero NextAttempt encoded: %s", s)
	}

	if got, err := Decode(""); err != nil || len(got) != 0 {
		t.Errorf("Decode(\"\") = %v, %v; want empty", got, err)
	}
	if _, err := Decode(`{"version":2,"pending":[]}`); err == nil {
		t.Errorf("Decode accepted an unknown format version")
	}
	if _, err := Decode(`{"version":1,"pending":[`); err == nil {
		t.Errorf("Decode accepted truncated JSON")
	}
	got, err := Decode(`{"version":1,"pending":[{"serial":"","issuer":{"kind":"VaultClusterIssuer","name":"v"}},{"serial":"1f","issuer":{"kind":"ClusterIssuer","name":"v"}},null,{"serial":"1F","issuer":{"kind":"VaultClusterIssuer","name":"v"}}]}`)
	if err != nil || len(got) != 1 || got["VaultClusterIssuer/v#1f"] == nil {
		t.Errorf("Decode kept unrevocable entries or lost the good one: %v, %v", got, err)
	}
}
