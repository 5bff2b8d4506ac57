// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward-io/keyward/custody"
)

var legalName = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

func TestNameMapping(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60)
	tests := []struct {
		ns, name string
		want     string
		hashed   bool
	}{
		{ns: "shop", name: "web", want: "tls-stest-sshop-sweb"},
		{ns: "shop", name: "web.example.com", want: "tls-stest-sshop-sweb-dexample-dcom"},
		{ns: "a-b", name: "c--d.e", want: "tls-stest-sa--b-sc----d-de"},
		{ns: "xn--a", name: "1-2", want: "tls-stest-sxn----a-s1--2"},
		{ns: "shop", name: long, hashed: true},
	}
	s := &Store{opts: Options{Prefix: "tls/test"}, pe: "tls-stest"}
	seen := map[string]bool{}
	for _, tc := range tests {
		n := secretName(s.pe, tc.ns, tc.name)
		if !legalName.MatchString(n) {
			t.Errorf("%s/%s -> %q: not a legal Key Vault name", tc.ns, tc.name, n)
		}
		if tc.want != "" && n != tc.want {
			t.Errorf("%s/%s -> %q, want %q", tc.ns, tc.name, n, tc.want)
		}
		if seen[strings.ToLower(n)] {
			t.Errorf("%q collides", n)
		}
		seen[strings.ToLower(n)] = true
		if gns, gname, err := s.ParsePath(s.Path(tc.ns, tc.name)); err != nil || gns != tc.ns || gname != tc.name {
			t.Errorf("ParsePath(Path(%s/%s)) = %q %q %v", tc.ns, tc.name, gns, gname, err)
		}
		if tc.hashed {
			forged := strings.Replace(s.Path(tc.ns, tc.name), "#shop/", "#other/", 1)
			if _, _, err := s.ParsePath(forged); err == nil {
				t.Errorf("ParsePath accepted a record that does not hash to the name: %q", forged)
			}
		}
		ns, name, hashed, err := s.RecordName(strings.ToUpper(n[:3]) + n[3:]) // names are case-insensitive
		if err != nil || hashed != tc.hashed || (!hashed && (ns != tc.ns || name != tc.name)) {
			t.Errorf("RecordName(%q) = %q %q %t %v", n, ns, name, hashed, err)
		}
	}
	for _, n := range []string{"other-sshop-sweb", "tls-stest-sshop", "tls-stest-sshop-sweb-", "tls-stest-sshop-sweb-x", "tls-stest-sShop-sweb"} {
		if _, _, _, err := s.RecordName(n); err == nil && n != "tls-stest-sShop-sweb" {
			t.Errorf("RecordName(%q) accepted", n)
		}
	}
}

func TestInvalidNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, ref := range [][2]string{{"", "web"}, {"shop", ""}, {"Shop", "web"}, {"shop", "a/b"}, {"shop", "a_b"}, {"shop", ".web"}, {"sh.op", "web"}, {"shop", strings.Repeat("a", 254)}} {
		if _, err := e.writer.Put(ctx, record(ref[0], ref[1], "K"), 0); err == nil || !strings.Contains(err.Error(), "invalid secret reference") {
			t.Errorf("Put %q: %v", ref, err)
		}
		if _, err := e.guard.Metadata(ctx, ref[0], ref[1]); err == nil {
			t.Errorf("Metadata %q accepted", ref)
		}
		if _, err := e.agent.Read(ctx, ref[0], ref[1], 1); err == nil {
			t.Errorf("Read %q accepted", ref)
		}
	}
	if e.srv.Requests("PUT secret")+e.srv.Requests("GET versions") != 0 {
		t.Errorf("invalid names reached the vault")
	}
}

func TestLongNameHashed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	name := strings.Repeat("x", 100) + "." + strings.Repeat("y", 100)
	if _, err := e.writer.Put(ctx, record("shop", name, "K1"), 0); err != nil {
		t.Fatal(err)
	}
	if m, err := e.guard.Metadata(ctx, "shop", name); err != nil || m.Version != 1 {
		t.Errorf("Metadata = %+v, %v", m, err)
	}
	if rec, err := e.agent.Read(ctx, "shop", name, 1); err != nil || rec.Name != name {
		t.Errorf("Read: %v", err)
	}
	if names := e.srv.SecretNames(); len(names) != 1 || len(names[0]) > 127 || !strings.HasPrefix(names[0], "tls-stest-s-h") {
		t.Errorf("secret names %q", names)
	}
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rec := record("shop", "web", "K")
	rec.Certificate = make([]byte, MaxRecordBytes-len(rec.Key)-len(rec.CA))
	for i := range rec.Certificate {
		rec.Certificate[i] = byte(i) // any bytes: the value is base64
	}
	if _, err := e.writer.Put(ctx, rec, 0); err != nil {
		t.Fatalf("record of exactly MaxRecordBytes: %v", err)
	}
	rec.Certificate = append(rec.Certificate, 'x')
	if _, err := e.writer.Put(ctx, rec, -1); err == nil || !strings.Contains(err.Error(), "holds at most") {
		t.Fatalf("oversized record: %v", err)
	}
	if e.srv.Requests("PUT secret") != 1 {
		t.Errorf("PUT requests = %d: the oversized record reached the vault", e.srv.Requests("PUT secret"))
	}
}

func TestPruneDeletePurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	o := optsFor(e.srv, "writer-token")
	o.MaxVersions = 2
	w := newStore(t, o)
	for i := range 4 {
		if _, err := w.Put(ctx, record("shop", "web", fmt.Sprint("K", i+1)), i); err != nil {
			t.Fatal(err)
		}
	}
	for v, want := range map[int]bool{1: false, 2: false, 3: true, 4: true} {
		_, err := e.agent.Read(ctx, "shop", "web", v)
		if (err == nil) != want || (err != nil && !errors.Is(err, custody.ErrNotFound)) {
			t.Errorf("Read(%d) after pruning to 2: %v, want present %t", v, err, want)
		}
	}
	if err := w.Delete(ctx, "shop", "web"); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(ctx, "shop", "web"); err != nil {
		t.Errorf("Delete of a deleted record: %v", err)
	}
	if _, err := e.guard.Metadata(ctx, "shop", "web"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Metadata after Delete: %v", err)
	}
	if v, err := w.Put(ctx, record("shop", "web", "K"), 0); err != nil || v != 1 {
		t.Errorf("Put after a purged Delete = %d, %v; want version 1", v, err)
	}
}

func TestPurgeProtection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.srv.SetPurgeProtection(true)
	for i := range 2 {
		if _, err := e.writer.Put(ctx, record("shop", "web", "K"), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.writer.Delete(ctx, "shop", "web"); err != nil {
		t.Fatalf("Delete under purge protection: %v", err)
	}
	if _, err := e.guard.Metadata(ctx, "shop", "web"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Metadata after Delete: %v", err)
	}
	v, err := e.writer.Put(ctx, record("shop", "web", "NEW"), 0)
	if err != nil || v != 3 {
		t.Fatalf("Put after a soft delete = %d, %v; want version 3 (recovered, numbers keep rising)", v, err)
	}
	for old := 1; old <= 2; old++ {
		if _, err := e.agent.Read(ctx, "shop", "web", old); !errors.Is(err, custody.ErrNotFound) {
			t.Errorf("version %d of the deleted record readable after recovery: %v", old, err)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.writer.Put(ctx, record("shop", "web", "K0"), 0); err != nil {
		t.Fatal(err)
	}
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = e.writer.Put(ctx, record("shop", "web", fmt.Sprint("K", i+1)), 1) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, custody.ErrConflict):
			t.Errorf("loser error %v, want ErrConflict", err)
		}
	}
	m, err := e.guard.Metadata(ctx, "shop", "web")
	if wins != 1 || err != nil || m.Torn || m.Version < 2 {
		t.Errorf("wins = %d, metadata %+v, %v; want one winner and a settled record", wins, m, err)
	}
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.srv.Throttle(2, "0")
	if _, err := e.writer.Put(ctx, record("shop", "a", "K"), 0); err != nil {
		t.Fatalf("Put under a short throttle: %v", err)
	}
	e.srv.Throttle(1000, "0")
	start := time.Now()
	_, err := e.writer.Put(ctx, record("shop", "b", "K"), 0)
	if err == nil || !strings.Contains(err.Error(), "throttled by Key Vault: 429") {
		t.Fatalf("Put under a long throttle: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s", d)
	}
	// A Retry-After beyond MaxRetryDelay fails at once.
	e.srv.Throttle(1000, "120")
	start = time.Now()
	if _, err := e.guard.Metadata(ctx, "shop", "a"); err == nil || !strings.Contains(err.Error(), "429") || time.Since(start) > time.Second {
		t.Errorf("Retry-After 120: %v after %s", err, time.Since(start))
	}
	e.srv.Throttle(0, "")
	if _, err := e.guard.Metadata(ctx, "shop", "b"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("throttled write left something: %v", err)
	}
}

func TestEnvironmentErrors(t *testing.T) {
	t.Parallel()
	srv := startFake(t)
	ctx := context.Background()

	wrong := optsFor(srv, "writer-token")
	wrong.VaultURL = "https://no-such-vault.vault.azure.net/"
	_, err := newStore(t, wrong).Metadata(ctx, "shop", "web")
	t.Log(err)
	if err == nil || errors.Is(err, custody.ErrNotFound) || !strings.Contains(err.Error(), "no such host") {
		t.Errorf("wrong vault URL: %v, want a DNS error (never not-found)", err)
	}
	_, err = newStore(t, optsFor(srv, "unknown-token")).Metadata(ctx, "shop", "web")
	t.Log(err)
	if err == nil || errors.Is(err, custody.ErrNotFound) || !strings.Contains(err.Error(), "401") {
		t.Errorf("unknown credentials: %v, want 401", err)
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "Vault URL") {
		t.Errorf("no vault URL: %v", err)
	}
	for _, p := range []string{"tls_x", "TLS", strings.Repeat("a/", 40) + "a"} {
		if _, err := New(Options{VaultURL: "https://x.vault.azure.net/", Prefix: p, Credential: staticCred{}}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := New(Options{VaultURL: "https://x.vault.azure.net/", MaxVersions: 21, Credential: staticCred{}}); err == nil {
		t.Errorf("MaxVersions 21 accepted")
	}
}

// TestManyVersionsPaged: the versions list spans pages (25 a page, oldest
// first in the fake), so version 30 is only found on the second page.
func TestManyVersionsPaged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	o := optsFor(e.srv, "writer-token")
	o.MaxVersions = 20
	w := newStore(t, o)
	for i := range 30 {
		if _, err := w.Put(ctx, record("shop", "web", fmt.Sprint("K", i+1)), i); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := e.guard.Metadata(ctx, "shop", "web"); err != nil || m.Version != 30 || m.KeySHA256 != "sha-K30" {
		t.Errorf("Metadata = %+v, %v", m, err)
	}
	if _, err := e.agent.Read(ctx, "shop", "web", 10); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Read(10), beyond the 20 kept: %v", err)
	}
	if rec, err := e.agent.Read(ctx, "shop", "web", 11); err != nil || !strings.Contains(string(rec.Key), "K11") {
		t.Errorf("Read(11): %v", err)
	}
}

func FuzzRecordName(f *testing.F) {
	for _, s := range []string{"web", "web.example.com", "a-b.c", "a--b", "x-d", "x-s"} {
		f.Add("shop", s)
	}
	s := &Store{opts: Options{Prefix: "tls/test"}, pe: "tls-stest"}
	f.Fuzz(func(t *testing.T, ns, name string) {
		if validName(ns, name) != nil {
			return
		}
		n := secretName(s.pe, ns, name)
		if !legalName.MatchString(n) {
			t.Fatalf("%s/%s -> illegal name %q", ns, name, n)
		}
		gns, gname, hashed, err := s.RecordName(n)
		if err != nil || (!hashed && (gns != ns || gname != name)) {
			t.Fatalf("%s/%s -> %q -> %q %q %t %v", ns, name, n, gns, gname, hashed, err)
		}
	})
}
