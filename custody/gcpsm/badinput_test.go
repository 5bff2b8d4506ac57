// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"

	"github.com/keyward-io/keyward/custody"
	fake "github.com/keyward-io/keyward/internal/cloudfake/gcpsm"
)

func TestNameMapping(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60)
	tests := []struct {
		ns, name string
		wantID   string
		hashed   bool
	}{
		{ns: "shop", name: "web", wantID: "tls_test_shop_web"},
		{ns: "shop", name: "web.example.com", wantID: "tls_test_shop_web__example__com"},
		{ns: "a-b", name: "c-d.e-f", wantID: "tls_test_a-b_c-d__e-f"},
		{ns: "shop", name: long, hashed: true},
	}
	s := &Store{opts: Options{Prefix: "tls/test"}, pid: "tls_test"}
	for _, tc := range tests {
		id := secretID(s.pid, tc.ns, tc.name)
		if !secretIDRE(id) {
			t.Errorf("%s/%s -> %q: not a legal secret ID", tc.ns, tc.name, id)
		}
		if tc.wantID != "" && id != tc.wantID {
			t.Errorf("%s/%s -> %q, want %q", tc.ns, tc.name, id, tc.wantID)
		}
		if gns, gname, err := s.ParsePath(s.Path(tc.ns, tc.name)); err != nil || gns != tc.ns || gname != tc.name {
			t.Errorf("ParsePath(Path(%s/%s)) = %q %q %v", tc.ns, tc.name, gns, gname, err)
		}
		if tc.hashed {
			forged := strings.Replace(s.Path(tc.ns, tc.name), "#shop/", "#other/", 1)
			if _, _, err := s.ParsePath(forged); err == nil {
				t.Errorf("ParsePath accepted a record that does not hash to the name: %q", forged)
			}
		}
		ns, name, hashed, err := s.RecordName(id)
		if err != nil || ns != tc.ns || hashed != tc.hashed || (!hashed && name != tc.name) {
			t.Errorf("RecordName(%q) = %q %q %t %v", id, ns, name, hashed, err)
		}
		if !strings.HasPrefix(id, "tls_test_"+tc.ns+"_") {
			t.Errorf("%q does not start with the namespace prefix an IAM condition matches", id)
		}
	}
	for _, id := range []string{"other_shop_web", "tls_test_", "tls_test_shop", "tls_test_Shop_web", "tls_test_shop_web___x"} {
		if _, _, _, err := s.RecordName(id); err == nil {
			t.Errorf("RecordName(%q) accepted", id)
		}
	}
}

func secretIDRE(id string) bool {
	if len(id) == 0 || len(id) > 255 {
		return false
	}
	for _, c := range id {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func TestInvalidNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, ref := range [][2]string{{"", "web"}, {"shop", ""}, {"Shop", "web"}, {"shop", "a/b"}, {"shop", "a_b"}, {"shop", ".web"}, {"shop", "a..b"}, {"sh.op", "web"}, {"shop", strings.Repeat("a", 254)}} {
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
	if e.srv.Calls(fake.MCreateSecret)+e.srv.Calls(fake.MGetSecret)+e.srv.Calls(fake.MAccessSecretVersion) != 0 {
		t.Errorf("invalid names reached the service")
	}
}

func TestLongNameHashed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	name := strings.Repeat("x", 200) + "." + strings.Repeat("y", 52)
	v, err := e.writer.Put(ctx, record("shop", name, "K1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := e.guard.Metadata(ctx, "shop", name); err != nil || m.Version != v {
		t.Errorf("Metadata = %+v, %v", m, err)
	}
	if rec, err := e.agent.Read(ctx, "shop", name, v); err != nil || rec.Name != name {
		t.Errorf("Read = %v", err)
	}
	ids := e.srv.SecretIDs()
	if len(ids) != 1 || len(ids[0]) > 255 || !strings.HasPrefix(ids[0], "tls_test_shop__") {
		t.Errorf("secret IDs %q", ids)
	}
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rec := record("shop", "web", "K")
	rec.Certificate = make([]byte, MaxRecordBytes-len(rec.Key)-len(rec.CA))
	if _, err := e.writer.Put(ctx, rec, 0); err != nil {
		t.Fatalf("record of exactly MaxRecordBytes: %v", err)
	}
	rec.Certificate = append(rec.Certificate, 'x')
	_, err := e.writer.Put(ctx, rec, -1)
	if err == nil || !strings.Contains(err.Error(), "holds at most") {
		t.Fatalf("oversized record: %v", err)
	}
	if e.srv.Calls(fake.MAddSecretVersion) != 1 {
		t.Errorf("the oversized record reached the service")
	}
}

func TestDeleteAndPrune(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	o := optsFor(e.srv, "writer-token")
	o.MaxVersions = 2
	w := newStore(t, o)
	for i := range 4 {
		if _, err := w.Put(ctx, record("shop", "web", "K"), i); err != nil {
			t.Fatal(err)
		}
	}
	for v, want := range map[int]bool{1: false, 2: false, 3: true, 4: true} {
		_, err := e.agent.Read(ctx, "shop", "web", v)
		if (err == nil) != want || (err != nil && !errors.Is(err, custody.ErrNotFound)) {
			t.Errorf("Read(%d) after pruning to 2: %v, want present %t", v, err, want)
		}
	}
	if e.srv.Payload("tls_test_shop_web", 1) != nil {
		t.Errorf("a pruned version kept its payload")
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
		t.Errorf("Put after Delete = %d, %v; want version 1", v, err)
	}
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	// A short burst of RESOURCE_EXHAUSTED is absorbed by the retries.
	e.srv.Throttle(2)
	if _, err := e.writer.Put(ctx, record("shop", "a", "K"), 0); err != nil {
		t.Fatalf("Put under a short throttle: %v", err)
	}
	// A long one fails with a clear error after MaxAttempts, within the
	// timeout, and leaves nothing half-written.
	e.srv.Throttle(1000)
	before := e.srv.Calls(fake.MGetSecret)
	start := time.Now()
	_, err := e.writer.Put(ctx, record("shop", "b", "K"), 0)
	if err == nil || !strings.Contains(err.Error(), "RESOURCE_EXHAUSTED") || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("Put under a long throttle: %v", err)
	}
	if got := e.srv.Calls(fake.MGetSecret) - before; got != MaxAttempts {
		t.Errorf("GetSecret tried %d times, want %d", got, MaxAttempts)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s", d)
	}
	e.srv.Throttle(0)
	if _, err := e.guard.Metadata(ctx, "shop", "b"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("throttled write left something: %v", err)
	}
}

func TestEnvironmentErrors(t *testing.T) {
	t.Parallel()
	srv := startFake(t)
	ctx := context.Background()

	wrong := optsFor(srv, "writer-token")
	wrong.Project = "no-such-project"
	_, err := newStore(t, wrong).Metadata(ctx, "shop", "web")
	t.Log(err)
	if err == nil || errors.Is(err, custody.ErrNotFound) || !strings.Contains(err.Error(), "no-such-project") {
		t.Errorf("wrong project: %v, want a permission error naming it (never not-found)", err)
	}

	bad := optsFor(srv, "unknown-token")
	_, err = newStore(t, bad).Metadata(ctx, "shop", "web")
	t.Log(err)
	if err == nil || errors.Is(err, custody.ErrNotFound) || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Errorf("unknown credentials: %v", err)
	}

	down := optsFor(srv, "writer-token")
	down.Endpoint, down.Timeout = "127.0.0.1:1", time.Second
	start := time.Now()
	_, err = newStore(t, down).Put(ctx, record("shop", "web", "K"), 0)
	t.Log(err)
	if err == nil || errors.Is(err, custody.ErrNotFound) || time.Since(start) > 3*time.Second {
		t.Errorf("unreachable endpoint: %v after %s", err, time.Since(start))
	}

	if _, err := New(ctx, Options{}); err == nil || !strings.Contains(err.Error(), "project") {
		t.Errorf("no project: %v", err)
	}
	for _, p := range []string{"tls_x", "TLS", "a/../b", strings.Repeat("a/", 60) + "a"} {
		if _, err := New(ctx, Options{Project: "p", Prefix: p}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := New(ctx, Options{Project: "p", MaxVersions: 21}); err == nil {
		t.Errorf("MaxVersions 21 accepted")
	}
}

// TestDestroyedCurrentVersion: an operator destroys the current version;
// the record then counts as absent, and the next write (cas 0) continues
// the numbering.
func TestDestroyedCurrentVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for i := range 2 {
		if _, err := e.writer.Put(ctx, record("shop", "web", "K"), i); err != nil {
			t.Fatal(err)
		}
	}
	full := e.writer.Path("shop", "web")
	if _, err := e.writer.client.DestroySecretVersion(ctx, &smpb.DestroySecretVersionRequest{Name: full + "/versions/2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.guard.Metadata(ctx, "shop", "web"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Metadata with the current version destroyed: %v, want ErrNotFound", err)
	}
	if _, err := e.agent.Read(ctx, "shop", "web", 2); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Read of a destroyed version: %v, want ErrNotFound", err)
	}
	if v, err := e.writer.Put(ctx, record("shop", "web", "K3"), 0); err != nil || v != 3 {
		t.Errorf("Put after the destroy = %d, %v; want version 3", v, err)
	}
}

func FuzzRecordName(f *testing.F) {
	for _, s := range []string{"web", "web.example.com", "a-b.c", "tls_test_shop_x", "a__b"} {
		f.Add("shop", s)
	}
	s := &Store{opts: Options{Prefix: "tls/test"}, pid: "tls_test"}
	f.Fuzz(func(t *testing.T, ns, name string) {
		if validName(ns, name) != nil {
			return
		}
		id := secretID(s.pid, ns, name)
		if !secretIDRE(id) {
			t.Fatalf("%s/%s -> illegal ID %q", ns, name, id)
		}
		gns, gname, hashed, err := s.RecordName(id)
		if err != nil || gns != ns || (!hashed && gname != name) {
			t.Fatalf("%s/%s -> %q -> %q %q %t %v", ns, name, id, gns, gname, hashed, err)
		}
	})
}

// TestThrottledMidWrite: throttling that starts after the lease is taken
// fails the write with nothing written, and releases the lease so the
// next write need not wait for it.
func TestThrottledMidWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.writer.Put(ctx, record("shop", "web", "K1"), 0); err != nil {
		t.Fatal(err)
	}
	e.srv.Fail(fake.MAddSecretVersion, codes.ResourceExhausted, MaxAttempts)
	_, err := e.writer.Put(ctx, record("shop", "web", "K2"), 1)
	if err == nil || !strings.Contains(err.Error(), "RESOURCE_EXHAUSTED") {
		t.Fatalf("Put throttled at AddSecretVersion: %v", err)
	}
	if m, err := e.guard.Metadata(ctx, "shop", "web"); err != nil || m.Torn || m.Version != 1 {
		t.Errorf("Metadata after the failed write = %+v, %v; want version 1, intact", m, err)
	}
	if v, err := e.writer.Put(ctx, record("shop", "web", "K2"), 1); err != nil || v != 2 {
		t.Errorf("next Put = %d, %v; want version 2 at once (lease released)", v, err)
	}
}
