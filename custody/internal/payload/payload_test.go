// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package payload

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 12, 4, 15, 4, 5, 123456789, time.UTC)
	tests := []Record{
		{Namespace: "ns", Name: "web", WrittenAt: when, Key: []byte("K\n"), Cert: []byte("C\n\n"), CA: nil},
		{Namespace: strings.Repeat("n", 63), Name: strings.Repeat("a.", 126) + "b", WrittenAt: when,
			Key: []byte{0, 1, '\n', 0xff}, Cert: bytes.Repeat([]byte("x"), 70000), CA: []byte("\n")},
	}
	for _, r := range tests {
		p := Encode(r)
		if over := len(p) - len(r.Key) - len(r.Cert) - len(r.CA); over > MaxOverhead {
			t.Errorf("overhead %d > %d", over, MaxOverhead)
		}
		got, err := Decode(p)
		if err != nil {
			t.Fatal(err)
		}
		if got.Namespace != r.Namespace || got.Name != r.Name || !got.WrittenAt.Equal(r.WrittenAt) ||
			!bytes.Equal(got.Key, r.Key) || !bytes.Equal(got.Cert, r.Cert) || !bytes.Equal(got.CA, r.CA) {
			t.Errorf("round trip changed the record %s/%s", r.Namespace, r.Name)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	good := Encode(Record{Namespace: "ns", Name: "web", Key: []byte("SECRETKEY")})
	for name, p := range map[string][]byte{
		"empty":      nil,
		"other blob": []byte("-----BEGIN PRIVATE KEY-----\nSECRETKEY\n"),
		"truncated":  good[:len(good)-1],
		"extra":      append(bytes.Clone(good), 'x'),
		"no name":    []byte("keyward-record/v1\nns\n2026-01-01T00:00:00Z\n0 0 0\n"),
		"bad time":   []byte("keyward-record/v1\nns/a\nyesterday\n0 0 0\n"),
		"neg length": []byte("keyward-record/v1\nns/a\n2026-01-01T00:00:00Z\n-1 1 0\n"),
	} {
		_, err := Decode(p)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "SECRETKEY") {
			t.Errorf("%s: error quotes the payload: %v", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(Record{Namespace: "ns", Name: "web", Key: []byte("k"), Cert: []byte("c")}))
	f.Add([]byte("keyward-record/v1\nns/a\n2026-01-01T00:00:00Z\n1 0 0\nk"))
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := Decode(p)
		if err != nil {
			return
		}
		if len(r.Key)+len(r.Cert)+len(r.CA) > len(p) {
			t.Fatalf("decoded more than the payload holds")
		}
	})
}
