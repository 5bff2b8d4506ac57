// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"fmt"
	"strings"
	"testing"
)

// longName is a 253-character DNS-1123 subdomain, Kubernetes' longest
// Secret name.
var longName = strings.Join([]string{strings.Repeat("a", 63), strings.Repeat("b", 63), strings.Repeat("c", 63), strings.Repeat("d", 61)}, ".")

// validNames are namespace/name pairs Kubernetes allows that a mapping
// could confuse: dots against dashes, doubled dashes, digits only, the
// longest namespace and name, and a name ending in a dash and six
// characters (which AWS reads as an ARN suffix in partial ARNs).
func validNames() [][2]string {
	long := strings.Repeat("n", 62) + "9"
	return [][2]string{
		{ns, "x.y"}, {ns, "x-y"}, {ns, "x--y"}, {ns, "x.y-z"}, {ns, "x-y.z"},
		{ns, "0"}, {"0-0", "x.y"}, {"a-b", "c"}, {"a", "b-c"},
		{ns, "web-abc123"}, {long, longName}, {ns, longName}, {long, "x"},
	}
}

func testNames(t *testing.T, s Subject) {
	paths := map[string][2]string{}
	for i, n := range validNames() {
		if len(n[0]) > 63 || len(n[1]) > 253 {
			t.Fatalf("storetest: bad fixture %q", n)
		}
		p := s.Store.Path(n[0], n[1])
		if prev, dup := paths[p]; dup {
			t.Errorf("Path(%q, %q) = Path(%q, %q) = %q", n[0], n[1], prev[0], prev[1], p)
		}
		paths[p] = n
		if pp, ok := s.Store.(PathParser); ok {
			gns, gname, err := pp.ParsePath(p)
			if err != nil || gns != n[0] || gname != n[1] {
				t.Errorf("ParsePath(%q) = %q, %q, %v; want %q, %q", p, gns, gname, err, n[0], n[1])
			}
		}
		rec := newRecord(t, n[0], n[1], fmt.Sprint(i))
		v := put(t, s.Store, rec, 0)
		md, err := s.Meta.Metadata(ctx(t), n[0], n[1])
		if err != nil {
			t.Errorf("Metadata %s/%s: %v", n[0], n[1], err)
			continue
		}
		wantMeta(t, n[0]+"/"+n[1], md, rec.Meta, v)
		got, err := s.Reader.Read(ctx(t), n[0], n[1], v)
		if err != nil {
			t.Errorf("Read %s/%s: %v", n[0], n[1], err)
			continue
		}
		wantData(t, n[0]+"/"+n[1], got, rec, v)
	}
}

// testInvalidNames: references no Secret can have are refused by every
// call, before anything is written.
func testInvalidNames(t *testing.T, s Subject) {
	for _, n := range [][2]string{
		{"", "x"}, {ns, ""}, {"a/b", "x"}, {ns, "a/b"}, {ns, "."}, {ns, ".."}, {"..", "x"}, {ns, "../x"},
	} {
		rec := newRecord(t, n[0], n[1], "invalid")
		if _, err := s.Store.Put(ctx(t), rec, 0); err == nil {
			t.Errorf("Put %q/%q succeeded", n[0], n[1])
		} else {
			noKey(t, err, rec)
		}
		if _, err := s.Store.Metadata(ctx(t), n[0], n[1]); err == nil {
			t.Errorf("Metadata %q/%q succeeded", n[0], n[1])
		}
		if _, err := s.Reader.Read(ctx(t), n[0], n[1], 1); err == nil {
			t.Errorf("Read %q/%q succeeded", n[0], n[1])
		}
		if err := s.Store.Delete(ctx(t), n[0], n[1]); err == nil {
			t.Errorf("Delete %q/%q succeeded", n[0], n[1])
		}
	}
}
