// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// These are CONTRACT TESTS: the store runs through the official azsecrets
// client against internal/cloudfake/azkv, an in-process fake of Key
// Vault's REST API over TLS. The real service cannot be reached from this
// project's machines.
package azkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/keyward-io/keyward/custody"
	fake "github.com/keyward-io/keyward/internal/cloudfake/azkv"
)

func srvClient(srv *fake.Server) *http.Client { return &http.Client{Transport: srv.Transport()} }

// staticCred hands out one token, and checks that the client asks for
// Key Vault's scope as the challenge told it.
type staticCred struct{ token string }

func (c staticCred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(o.Scopes) != 1 || o.Scopes[0] != "https://vault.azure.net/.default" {
		return azcore.AccessToken{}, fmt.Errorf("unexpected scopes %q", o.Scopes)
	}
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type env struct {
	srv    *fake.Server
	writer *Store
	guard  *Store
	agent  *Reader
}

func startFake(t *testing.T) *fake.Server {
	t.Helper()
	srv, err := fake.New("keyward-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.AddIdentity("writer-token", fake.Identity{Actions: fake.Writer()})
	srv.AddIdentity("guard-token", fake.Identity{Actions: fake.Guard()})
	srv.AddIdentity("agent-token", fake.Identity{Actions: fake.Agent()})
	return srv
}

func optsFor(srv *fake.Server, token string) Options {
	return Options{
		VaultURL:      srv.VaultURL(),
		Prefix:        "tls/test",
		Timeout:       5 * time.Second,
		Credential:    staticCred{token: token},
		ClientOptions: &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: srvClient(srv)}},
	}
}

func newStore(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newReader(t *testing.T, o Options) *Reader {
	t.Helper()
	r, err := NewReader(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newEnv(t *testing.T) env {
	t.Helper()
	srv := startFake(t)
	return env{srv: srv, writer: newStore(t, optsFor(srv, "writer-token")), guard: newStore(t, optsFor(srv, "guard-token")), agent: newReader(t, optsFor(srv, "agent-token"))}
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
	if got := e.writer.Path("shop", "web"); got != "https://keyward-test.vault.azure.net/secrets/tls-stest-sshop-sweb" {
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
	if _, err := e.guard.Put(ctx, record("shop", "web", "K2"), 1); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("guard Put: %v, want 403", err)
	}
	_, err := newReader(t, optsFor(e.srv, "writer-token")).Read(ctx, "shop", "web", 1)
	if err == nil || errors.Is(err, custody.ErrNotFound) || !strings.Contains(err.Error(), "403") {
		t.Errorf("writer Read: %v, want 403 (not not-found)", err)
	}
	if strings.Contains(fmt.Sprint(err), "K1") {
		t.Errorf("error carries key material: %v", err)
	}
	e.srv.AddIdentity("other-agent", fake.Identity{Actions: fake.Agent(), Secrets: []string{"tls-stest-sother-sweb"}})
	if _, err := newReader(t, optsFor(e.srv, "other-agent")).Read(ctx, "shop", "web", 1); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("agent scoped to another secret: %v, want 403", err)
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

// TestWriteRace is the documented residual race: a second writer sets its
// version between the first one's check and its write. Both write version
// 2; at most one may win, the record is Torn while both are enabled, and
// it settles on one version.
func TestWriteRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.writer.Put(ctx, record("shop", "web", "K0"), 0); err != nil {
		t.Fatal(err)
	}
	var putOnce, patchOnce atomic.Bool
	var inner, tornErr error
	var torn custody.Metadata
	e.srv.OnRequest(func(r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			if putOnce.CompareAndSwap(false, true) {
				_, inner = e.writer.Put(ctx, record("shop", "web", "INNER"), 1)
			}
		case http.MethodPatch:
			// The loser is about to disable its version: both are enabled now.
			if patchOnce.CompareAndSwap(false, true) {
				torn, tornErr = e.guard.Metadata(ctx, "shop", "web")
			}
		}
	})
	_, outer := e.writer.Put(ctx, record("shop", "web", "OUTER"), 1)
	e.srv.OnRequest(nil)
	if tornErr != nil || !torn.Torn || torn.Version != 2 {
		t.Errorf("Metadata inside the race window = %+v, %v; want Torn at version 2", torn, tornErr)
	}
	if inner != nil || !errors.Is(outer, custody.ErrConflict) {
		t.Fatalf("inner %v, outer %v: want the inner (first to write) to win and the outer to get ErrConflict", inner, outer)
	}
	m, err := e.guard.Metadata(ctx, "shop", "web")
	if err != nil || m.Torn || m.Version != 2 {
		t.Fatalf("Metadata after the race = %+v, %v", m, err)
	}
	rec, err := e.agent.Read(ctx, "shop", "web", 2)
	if err != nil || !bytes.Contains(rec.Key, []byte("INNER")) {
		t.Errorf("version 2 = %q, %v; want the winner's", rec.Key, err)
	}
	enabled, _ := e.srv.Versions("tls-stest-sshop-sweb")
	if len(enabled) != 3 || enabled[2] {
		t.Errorf("versions enabled = %v, want the loser's (last) disabled", enabled)
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
	// A lost race burns its number (the loser's version is disabled), so
	// the numbers may have gaps; the current one is the highest success.
	top := 0
	for v := range got {
		top = max(top, v)
	}
	if m, err := e.guard.Metadata(ctx, "shop", "web"); err != nil || m.Torn || m.Version != top || len(got) != n {
		t.Errorf("versions %v, metadata %+v, %v; want %d distinct versions, settled at the highest", got, m, err, n)
	}
}
