// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Secret-ref mode against a real Vault dev server (bin/vault) and fakeAPISIX.
// Real APISIX cannot run on this machine (no Docker; not in Debian's
// packages), so fakeAPISIX resolves $secret:// references exactly as
// APISIX's documented Vault secret manager does, over HTTP against the real
// Vault with the token the sink gave it. No test prints a key or a token.

package apisix

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/internal/deliverytest"
	"github.com/keyward-io/keyward/e2e/framework"
)

const (
	testMirror = "apisix-mirror"
	testRole   = "keyward-apisix"
)

// agentPolicy is what the agent's own Vault token needs in secret-ref mode
// with a token role (docs/delivery-gateways.md shows the same).
var agentPolicy = fmt.Sprintf(`
path "%[1]s/*" { capabilities = ["create", "update", "read", "list", "delete"] }
path "auth/token/create/%[2]s" { capabilities = ["update"] }
`, testMirror, testRole)

func TestSecretRefWithRealVault(t *testing.T) {
	v := framework.VaultForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().MountWithContext(ctx, testMirror, &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatalf("mounting kv v1: %v", err)
	}
	if err := root.Sys().PutPolicyWithContext(ctx, DefaultTokenPolicy, MirrorReadPolicy(testMirror)); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicyWithContext(ctx, "apisix-agent", agentPolicy); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, "auth/token/roles/"+testRole, map[string]any{
		"allowed_policies": []string{DefaultTokenPolicy}, "orphan": true, "renewable": false,
	}); err != nil {
		t.Fatalf("writing token role: %v", err)
	}
	agentToken, err := v.TokenForPolicies(ctx, "apisix-agent")
	if err != nil {
		t.Fatal(err)
	}
	agent, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	agent.SetToken(agentToken)

	f := newFakeAPISIX(t, "admin-key")
	// A random base time: nothing may depend on the wall clock.
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000+rand.Int64N(1e8), 0))
	s, err := New(Options{
		AdminURL: f.srv.URL, AdminKeyFile: deliverytest.WriteSecretFile(t, "admin-key", "admin-key"), Mode: ModeSecretRef,
		MirrorMount: testMirror, VaultURL: v.Addr, TokenTTL: time.Hour, TokenRole: testRole,
		TokenRevokeDelay: 10 * time.Second, Timeout: 10 * time.Second,
	}, Deps{Vault: agent, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}

	id := SSLID(DefaultSSLIDPrefix, "shop", "web-tls")
	v1 := deliverytest.Bundle(t, "shop", "web-tls", 1, "web.example.com")
	if err := s.Deliver(ctx, v1); err != nil {
		t.Fatalf("Deliver v1: %v", err)
	}

	// Requests: the secret manager first (APISIX must be able to resolve
	// the references before it sees them), then the SSL object.
	reqs := f.reqs()
	if len(reqs) != 2 || reqs[0].Path != "/apisix/admin/secrets/vault/"+DefaultSecretManagerID || reqs[1].Path != "/apisix/admin/ssls/"+id {
		t.Fatalf("requests = %v, want PUT secrets/vault/%s then PUT ssls/%s", paths(reqs), DefaultSecretManagerID, id)
	}
	mgr := f.secret(DefaultSecretManagerID)
	if mgr["uri"] != v.Addr || mgr["prefix"] != testMirror || len(mgr) != 3 {
		t.Errorf("secret manager object has uri=%v prefix=%v and %d fields, want uri=%s prefix=%s and token", mgr["uri"], mgr["prefix"], len(mgr), v.Addr, testMirror)
	}
	token1, _ := mgr["token"].(string)
	ssl := f.ssl(id)
	wantRef := "$secret://vault/" + DefaultSecretManagerID + "/shop/web-tls/v1"
	if ssl["cert"] != wantRef+"/cert" || ssl["key"] != wantRef+"/key" || ssl["type"] != "server" {
		t.Errorf("SSL object cert=%v key=%v type=%v, want references %s/{cert,key} and type server", ssl["cert"], ssl["key"], ssl["type"], wantRef)
	}
	assertResolves(t, f, ssl, v1)

	// APISIX's token is read-only on the mirror, and only on the mirror.
	apisixClient := clientWithToken(t, v, token1)
	if _, err := apisixClient.Logical().WriteWithContext(ctx, testMirror+"/shop/web-tls/v9", map[string]any{"key": "x"}); !isForbidden(err) {
		t.Errorf("APISIX's token could write the mirror (err %v)", err)
	}
	if _, err := apisixClient.Logical().ReadWithContext(ctx, framework.VaultCustodyMount+"/data/tls/shop/web-tls"); !isForbidden(err) {
		t.Errorf("APISIX's token could read the custody mount (err %v)", err)
	}
	self, err := apisixClient.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if orphan, _ := self.Data["orphan"].(bool); !orphan {
		t.Errorf("APISIX's token is not an orphan: it would die with the agent's login token")
	}

	// Same version again: nothing sent. New versions: one mirror write and
	// one SSL PUT each; the mirror keeps the current and previous version.
	if err := s.Deliver(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if n := len(f.reqs()); n != 2 {
		t.Fatalf("re-delivering version 1 sent %d more requests", n-2)
	}
	v2 := deliverytest.Bundle(t, "shop", "web-tls", 2, "web.example.com")
	v3 := deliverytest.Bundle(t, "shop", "web-tls", 3, "web.example.com")
	for _, b := range []*delivery.Bundle{v2, v3} {
		if err := s.Deliver(ctx, b); err != nil {
			t.Fatalf("Deliver v%d: %v", b.Version, err)
		}
	}
	if got := paths(f.reqs()[2:]); strings.Join(got, " ") != "/apisix/admin/ssls/"+id+" /apisix/admin/ssls/"+id {
		t.Errorf("versions 2 and 3 sent %v, want one SSL PUT each", got)
	}
	if got := mirrorVersions(t, root, "shop/web-tls"); strings.Join(got, ",") != "v2,v3" {
		t.Errorf("mirror holds %v, want v2,v3 (v1 deleted, previous kept)", got)
	}
	assertResolves(t, f, f.ssl(id), v3)
	// The previous version stays readable for handshakes in flight.
	if got, err := f.resolve(t, "$secret://vault/"+DefaultSecretManagerID+"/shop/web-tls/v2/key"); err != nil || got != string(v2.Key) {
		t.Errorf("previous version not readable through APISIX's reference (err %v)", err)
	}

	// With the key's fingerprint known, it is part of the entry name; when
	// the custody mount is rebuilt and versions restart at 1 with a new
	// key, the reference is still new, so APISIX's cache cannot hide it.
	v4 := deliverytest.Bundle(t, "shop", "web-tls", 4, "web.example.com")
	v4.KeySHA256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if err := s.Deliver(ctx, v4); err != nil {
		t.Fatal(err)
	}
	if got := f.ssl(id)["key"]; got != "$secret://vault/"+DefaultSecretManagerID+"/shop/web-tls/v4-0123456789ab/key" {
		t.Errorf("key reference %v, want one to v4-0123456789ab", got)
	}
	if got := mirrorVersions(t, root, "shop/web-tls"); strings.Join(got, ",") != "v3,v4-0123456789ab" {
		t.Errorf("mirror holds %v, want v3,v4-0123456789ab", got)
	}
	rebuilt := deliverytest.Bundle(t, "shop", "web-tls", 1, "web.example.com")
	rebuilt.KeySHA256 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	if err := s.Deliver(ctx, rebuilt); err != nil {
		t.Fatal(err)
	}
	if got := mirrorVersions(t, root, "shop/web-tls"); strings.Join(got, ",") != "v1-fedcba987654" {
		t.Errorf("after versions restarted, mirror holds %v, want only v1-fedcba987654", got)
	}
	assertResolves(t, f, f.ssl(id), rebuilt)
	v3 = rebuilt

	// Half the TTL later, Maintain gives APISIX a new token; the old one
	// keeps working for TokenRevokeDelay, then is revoked.
	clk.Step(31 * time.Minute)
	if err := s.Maintain(ctx); err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	token2, _ := f.secret(DefaultSecretManagerID)["token"].(string)
	if token2 == "" || token2 == token1 {
		t.Fatalf("APISIX's token was not replaced after half its TTL")
	}
	if _, err := apisixClient.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		t.Errorf("old token revoked before TokenRevokeDelay: %v", err)
	}
	clk.Step(11 * time.Second)
	if err := s.Maintain(ctx); err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	if _, err := apisixClient.Auth().Token().LookupSelfWithContext(ctx); !isForbidden(err) {
		t.Errorf("old token still valid after rotation and delay (err %v)", err)
	}
	assertResolves(t, f, f.ssl(id), v3)

	// Run replaces the token on its own timer.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	clk.Step(31 * time.Minute)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if tok, _ := f.secret(DefaultSecretManagerID)["token"].(string); tok != token2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not replace the token within 30s of it falling due")
		}
		if !clk.HasWaiters() {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		clk.Step(time.Minute)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	assertResolves(t, f, f.ssl(id), v3)
}

func TestSecretRefVaultUnreachableIsTransient(t *testing.T) {
	t.Parallel()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = "http://127.0.0.1:1" // nothing listens on port 1
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("agent-token-value")
	f := newFakeAPISIX(t, "k")
	s, err := New(Options{
		AdminURL: f.srv.URL, AdminKeyFile: deliverytest.WriteSecretFile(t, "admin-key", "k"), Mode: ModeSecretRef,
		MirrorMount: testMirror, VaultURL: "http://vault:8200", Timeout: 2 * time.Second,
	}, Deps{Vault: c})
	if err != nil {
		t.Fatal(err)
	}
	b := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")
	err = s.Deliver(context.Background(), b)
	if err == nil || errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), b.String()) {
		t.Fatalf("got %v, want a transient error naming the Secret", err)
	}
	deliverytest.AssertNoSecrets(t, err, "agent-token-value", string(b.Key))
	if n := len(f.reqs()); n != 0 {
		t.Errorf("APISIX got %d requests although no token could be made", n)
	}
}

func TestSecretManagerNotFoundIsExplained(t *testing.T) {
	v := framework.VaultForTest(t)
	ctx := context.Background()
	root, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().MountWithContext(ctx, testMirror, &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicyWithContext(ctx, DefaultTokenPolicy, MirrorReadPolicy(testMirror)); err != nil {
		t.Fatal(err)
	}
	f := newFakeAPISIX(t, "k")
	s, err := New(Options{
		AdminURL: f.srv.URL, AdminKeyFile: deliverytest.WriteSecretFile(t, "admin-key", "k"), Mode: ModeSecretRef,
		MirrorMount: testMirror, VaultURL: v.Addr, TokenRevokeDelay: time.Second,
	}, Deps{Vault: root})
	if err != nil {
		t.Fatal(err)
	}
	// An APISIX without the secrets API answers 404 to it.
	f.failNext(deliverytest.Failure{Status: http.StatusNotFound, Msg: "404 Route Not Found"})
	b := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")
	err = s.Deliver(ctx, b)
	if !errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), "no secrets Admin API") ||
		!strings.Contains(err.Error(), "/apisix/admin/secrets/vault/keyward") || !strings.Contains(err.Error(), b.String()) {
		t.Fatalf("got %v, want a permanent error explaining the 404 on the secret manager", err)
	}
	// The token APISIX did not take was revoked at once, not left to expire.
	accessors, err := root.Logical().ListWithContext(ctx, "auth/token/accessors")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accessors.Data["keys"].([]any) {
		info, err := root.Auth().Token().LookupAccessorWithContext(ctx, a.(string))
		if err != nil {
			continue
		}
		if strings.Contains(fmt.Sprint(info.Data["display_name"]), "keyward-apisix") {
			t.Errorf("a token APISIX refused is still valid")
		}
	}
}

func assertResolves(t *testing.T, f *fakeAPISIX, ssl map[string]any, b *delivery.Bundle) {
	t.Helper()
	for field, want := range map[string][]byte{"cert": b.Certificate, "key": b.Key} {
		ref, _ := ssl[field].(string)
		got, err := f.resolve(t, ref)
		if err != nil {
			t.Errorf("APISIX could not resolve the %s reference of version %d: %v", field, b.Version, err)
		} else if got != string(want) {
			t.Errorf("the %s reference resolves to something other than version %d's %s", field, b.Version, field)
		}
	}
}

func clientWithToken(t *testing.T, v *framework.Vault, token string) *vaultapi.Client {
	t.Helper()
	c, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func isForbidden(err error) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

func mirrorVersions(t *testing.T, c *vaultapi.Client, dir string) []string {
	t.Helper()
	list, err := c.Logical().List(testMirror + "/" + dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if list != nil {
		for _, k := range list.Data["keys"].([]any) {
			out = append(out, k.(string))
		}
	}
	sort.Strings(out)
	return out
}

func paths(rs []request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Path)
	}
	return out
}
