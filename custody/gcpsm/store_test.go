// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// These are CONTRACT TESTS: the store runs through the official Go client
// against internal/cloudfake/gcpsm, an in-process fake of Secret Manager's
// gRPC API. The real service cannot be reached from this project's machines.
package gcpsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testclock "k8s.io/utils/clock/testing"

	"github.com/keyward-io/keyward/custody"
	fake "github.com/keyward-io/keyward/internal/cloudfake/gcpsm"
)

const testProject = "keyward-test"

type env struct {
	srv    *fake.Server
	writer *Store
	guard  *Store
	agent  *Reader
}

func startFake(t *testing.T) *fake.Server {
	t.Helper()
	srv, err := fake.New(testProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.AddIdentity("writer-token", fake.Identity{Methods: fake.Writer()})
	srv.AddIdentity("guard-token", fake.Identity{Methods: fake.Guard()})
	srv.AddIdentity("agent-token", fake.Identity{Methods: fake.Agent()})
	srv.AddIdentity("admin-token", fake.Identity{Methods: fake.Admin()})
	return srv
}

func optsFor(srv *fake.Server, token string) Options {
	return Options{
		Project:     testProject,
		Prefix:      "tls/test",
		Timeout:     5 * time.Second,
		Endpoint:    srv.Addr(),
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(srv.TransportCredentials())},
		ClientOptions: []option.ClientOption{
			option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "Bearer"})),
		},
	}
}

func newStore(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newEnv(t *testing.T) env {
	t.Helper()
	srv := startFake(t)
	r, err := NewReader(context.Background(), optsFor(srv, "agent-token"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return env{srv: srv, writer: newStore(t, optsFor(srv, "writer-token")), guard: newStore(t, optsFor(srv, "guard-token")), agent: r}
}

func record(ns, name, key string) custody.Record {
	return custody.Record{
		Namespace: ns, Name: name,
		Key: []byte("-----BEGIN PRIVATE KEY-----\n" + key + "\n-----END PRIVATE KEY-----\n"), Certificate: []byte("CERT " + key), CA: []byte("CA"),
		Meta: custody.Metadata{
			CertificateName: "web", IssuerName: "ca", IssuerKind: "VaultClusterIssuer", IssuerGroup: "vault.keyward.io",
			Serial: "0a1b", KeySHA256: "sha-" + key,
			NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		},
	}
}

func TestPutMetadataReadRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.guard.Metadata(ctx, "shop", "web"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("Metadata before any write: %v, want ErrNotFound", err)
	}
	v1, err := e.writer.Put(ctx, record("shop", "web", "K1"), 0)
	if err != nil || v1 != 1 {
		t.Fatalf("first Put = %d, %v", v1, err)
	}
	v2, err := e.writer.Put(ctx, record("shop", "web", "K2"), v1)
	if err != nil || v2 != 2 {
		t.Fatalf("second Put = %d, %v", v2, err)
	}
	m, err := e.guard.Metadata(ctx, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	want := record("shop", "web", "K2").Meta
	want.Version = 2
	if m != want {
		t.Errorf("Metadata = %+v, want %+v", m, want)
	}
	for v, key := range map[int]string{1: "K1", 2: "K2"} {
		rec, err := e.agent.Read(ctx, "shop", "web", v)
		if err != nil {
			t.Fatalf("Read(%d): %v", v, err)
		}
		if !bytes.Contains(rec.Key, []byte(key)) || rec.Meta.Version != v || rec.Meta.WrittenAt.IsZero() || string(rec.CA) != "CA" {
			t.Errorf("Read(%d) = key %q meta %+v", v, rec.Key, rec.Meta)
		}
	}
	if _, err := e.agent.Read(ctx, "shop", "web", 3); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Read of a missing version: %v, want ErrNotFound", err)
	}
	if got := e.writer.Path("shop", "web"); got != "projects/keyward-test/secrets/tls_test_shop_web" {
		t.Errorf("Path = %q", got)
	}
}

func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.writer.Put(ctx, record("shop", "web", "K1"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.guard.Put(ctx, record("shop", "web", "K2"), 1); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("guard Put: %v, want PermissionDenied", err)
	}
	// The writer's identity cannot read a payload back.
	wr, err := NewReader(ctx, optsFor(e.srv, "writer-token"))
	if err != nil {
		t.Fatal(err)
	}
	defer wr.Close()
	_, err = wr.Read(ctx, "shop", "web", 1)
	if err == nil || errors.Is(err, custody.ErrNotFound) || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("writer Read: %v, want PermissionDenied (not not-found)", err)
	}
	if strings.Contains(fmt.Sprint(err), "K1") {
		t.Errorf("error carries key material: %v", err)
	}
	// An agent conditioned on another namespace's prefix is denied.
	e.srv.AddIdentity("other-agent", fake.Identity{Methods: fake.Agent(), SecretPrefix: "projects/keyward-test/secrets/tls_test_other_"})
	or, err := NewReader(ctx, optsFor(e.srv, "other-agent"))
	if err != nil {
		t.Fatal(err)
	}
	defer or.Close()
	if _, err := or.Read(ctx, "shop", "web", 1); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("other namespace's agent Read: %v, want PermissionDenied", err)
	}
}

func TestCheckAndSet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.writer.Put(ctx, record("shop", "web", "K1"), 1); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("cas 1 on a missing record: %v, want ErrConflict", err)
	}
	if _, err := e.writer.Put(ctx, record("shop", "web", "K1"), 0); err != nil {
		t.Fatal(err)
	}
	for _, cas := range []int{0, 2} {
		if _, err := e.writer.Put(ctx, record("shop", "web", "K2"), cas); !errors.Is(err, custody.ErrConflict) {
			t.Errorf("stale cas %d: %v, want ErrConflict", cas, err)
		}
	}
	if v, err := e.writer.Put(ctx, record("shop", "web", "K2"), -1); err != nil || v != 2 {
		t.Errorf("cas -1 = %d, %v", v, err)
	}
}

// TestConcurrentWriters: writers racing with the same cas; exactly one
// wins, the others get ErrConflict, and the record is never left torn.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.writer.Put(ctx, record("shop", "web", "K0"), 0); err != nil {
		t.Fatal(err)
	}
	const n = 8
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
	if wins != 1 || err != nil || m.Torn || m.Version != 2 {
		t.Errorf("wins = %d, metadata %+v, %v; want 1 winner and version 2, not torn", wins, m, err)
	}
}

// TestLeaseRace interleaves a second writer between the first one's lease
// and its AddSecretVersion: the second must see the lease and back off.
func TestLeaseRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.writer.Put(ctx, record("shop", "web", "K0"), 0); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var inner error
	e.srv.OnCall(func(m string) {
		if m == fake.MAddSecretVersion {
			once.Do(func() { _, inner = e.writer.Put(ctx, record("shop", "web", "INNER"), 1) })
		}
	})
	v, err := e.writer.Put(ctx, record("shop", "web", "OUTER"), 1)
	e.srv.OnCall(nil)
	if err != nil || v != 2 || !errors.Is(inner, custody.ErrConflict) {
		t.Fatalf("outer = %d, %v; inner = %v; want outer version 2 and inner ErrConflict", v, err, inner)
	}
	rec, err := e.agent.Read(ctx, "shop", "web", 2)
	if err != nil || !bytes.Contains(rec.Key, []byte("OUTER")) {
		t.Errorf("version 2 = %q, %v", rec.Key, err)
	}
}

func TestTornWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.writer.Put(ctx, record("shop", "web", "K1"), 0); err != nil {
		t.Fatal(err)
	}
	// The writer "dies" after adding version 2: its metadata update fails.
	e.srv.OnCall(func(m string) {
		if m == fake.MAddSecretVersion {
			e.srv.Fail(fake.MUpdateSecret, codes.Internal, 1)
		}
	})
	_, err := e.writer.Put(ctx, record("shop", "web", "K2"), 1)
	e.srv.OnCall(nil)
	if err == nil || !strings.Contains(err.Error(), "torn") {
		t.Fatalf("Put with a failed metadata update: %v, want a torn-record error", err)
	}
	m, err := e.guard.Metadata(ctx, "shop", "web")
	if err != nil || !m.Torn || m.Version != 2 || m.KeySHA256 != "" {
		t.Fatalf("Metadata = %+v, %v; want Torn at version 2 with nothing else", m, err)
	}
	// Within the dead writer's lease, another write is a conflict.
	if _, err := e.writer.Put(ctx, record("shop", "web", "K3"), 2); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("Put within the lease: %v, want ErrConflict", err)
	}
	// The next write after the lease expired heals it.
	late := optsFor(e.srv, "writer-token")
	late.Clock = testclock.NewFakePassiveClock(time.Now().Add(time.Hour))
	if v, err := newStore(t, late).Put(ctx, record("shop", "web", "K3"), 2); err != nil || v != 3 {
		t.Fatalf("Put after the torn write = %d, %v", v, err)
	}
	if m, err := e.guard.Metadata(ctx, "shop", "web"); err != nil || m.Torn || m.Version != 3 {
		t.Errorf("Metadata after healing = %+v, %v", m, err)
	}
}

// TestConcurrentUnchecked: writers without a cas all get through, each
// with its own version.
func TestConcurrentUnchecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const n = 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int]bool{}
	for i := range n {
		wg.Go(func() {
			v, err := e.writer.Put(ctx, record("shop", "web", fmt.Sprint("K", i)), -1)
			if err != nil {
				t.Errorf("Put -1: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			got[v] = true
		})
	}
	wg.Wait()
	if m, err := e.guard.Metadata(ctx, "shop", "web"); err != nil || m.Torn || m.Version != n || len(got) != n {
		t.Errorf("versions %v, metadata %+v, %v; want %d distinct versions, settled", got, m, err, n)
	}
}
