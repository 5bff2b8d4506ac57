// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Contract tests of the APISIX sink. Real APISIX cannot run on this machine
// (no Docker; APISIX is not in Debian's packages): fakeAPISIX (fake_test.go)
// implements APISIX's documented Admin API, and the tests check the exact
// requests the sink sends to it. No test prints a key, an admin key or a token.

package apisix

import (
	"context"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/internal/deliverytest"
)

func newInlineSink(t *testing.T, f *fakeAPISIX, keyFile string) *Sink {
	t.Helper()
	s, err := New(Options{AdminURL: f.srv.URL, AdminKeyFile: keyFile, Timeout: 5 * time.Second}, Deps{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestInlineDeliverSendsDocumentedPUT(t *testing.T) {
	t.Parallel()
	f := newFakeAPISIX(t, "admin-key-1")
	s := newInlineSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "admin-key-1"))
	b := deliverytest.Bundle(t, "shop", "web-tls", 3, "web.example.com", "www.example.com")

	if err := s.Deliver(context.Background(), b); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := f.reqs()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPut || r.Path != "/apisix/admin/ssls/keyward_shop_web-tls" {
		t.Errorf("request = %s %s, want PUT /apisix/admin/ssls/keyward_shop_web-tls", r.Method, r.Path)
	}
	if r.APIKey != "admin-key-1" {
		t.Errorf("X-API-KEY header is not the key from the key file")
	}
	if r.ContentType != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", r.ContentType)
	}
	want := map[string]any{
		"cert": string(b.Certificate),
		"key":  string(b.Key),
		"snis": []any{"web.example.com", "www.example.com"},
		"type": "server",
	}
	if !reflect.DeepEqual(r.Body, want) {
		// Name the fields only: the body holds the key.
		t.Errorf("body fields differ from {cert, key, snis, type=server} (keys %v)", deliverytest.Keys(r.Body))
	}
	if got := f.ssl("keyward_shop_web-tls"); got == nil {
		t.Errorf("fake APISIX did not store the SSL object")
	}
}

func TestDeliverIsIdempotentPerVersion(t *testing.T) {
	t.Parallel()
	f := newFakeAPISIX(t, "k")
	s := newInlineSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "k"))
	ctx := context.Background()
	v1 := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")

	for range 2 {
		if err := s.Deliver(ctx, v1); err != nil {
			t.Fatalf("Deliver v1: %v", err)
		}
	}
	if n := len(f.reqs()); n != 1 {
		t.Fatalf("two Delivers of version 1 sent %d requests, want 1", n)
	}
	v2 := deliverytest.Bundle(t, "ns", "a", 2, "a.example.com")
	if err := s.Deliver(ctx, v2); err != nil {
		t.Fatalf("Deliver v2: %v", err)
	}
	reqs := f.reqs()
	if len(reqs) != 2 || reqs[1].Method != http.MethodPut || reqs[1].Body["key"] != string(v2.Key) {
		t.Fatalf("a new version sent %d requests in all, want exactly one more PUT with its key", len(reqs))
	}
	// Another Secret is tracked separately.
	if err := s.Deliver(ctx, deliverytest.Bundle(t, "ns", "b", 2, "b.example.com")); err != nil {
		t.Fatal(err)
	}
	if n := len(f.reqs()); n != 3 {
		t.Fatalf("version 2 of another Secret: %d requests in all, want 3", n)
	}
	s.Resync()
	if err := s.Deliver(ctx, v2); err != nil {
		t.Fatal(err)
	}
	reqs = f.reqs()
	if len(reqs) != 4 || !reflect.DeepEqual(reqs[3], reqs[1]) {
		t.Fatalf("after Resync the same version must be sent again, identically (upsert)")
	}
	// Same version number, new key (custody rebuilt, versions restarted):
	// delivered again.
	rebuilt := deliverytest.Bundle(t, "ns", "a", 2, "a.example.com")
	rebuilt.KeySHA256 = "aa"
	if err := s.Deliver(ctx, rebuilt); err != nil {
		t.Fatal(err)
	}
	if reqs = f.reqs(); len(reqs) != 5 || reqs[4].Body["key"] != string(rebuilt.Key) {
		t.Fatalf("a new key under a known version number was not delivered")
	}
	// A failed PUT is not remembered: the retry sends it.
	v3 := deliverytest.Bundle(t, "ns", "a", 3, "a.example.com")
	f.failNext(deliverytest.Failure{Status: http.StatusServiceUnavailable, Msg: "etcd unavailable"})
	if err := s.Deliver(ctx, v3); err == nil {
		t.Fatal("Deliver succeeded although APISIX answered 503")
	}
	if err := s.Deliver(ctx, v3); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(f.reqs()); n != 7 {
		t.Fatalf("failed PUT then retry: %d requests in all, want 7", n)
	}
}

func TestDeliverErrors(t *testing.T) {
	t.Parallel()
	b := deliverytest.Bundle(t, "shop", "web-tls", 7, "web.example.com")
	cases := []struct {
		name      string
		fail      deliverytest.Failure
		permanent bool
		contains  []string
	}{
		{"500 is transient", deliverytest.Failure{Status: 500, Msg: "failed to put ssl: etcd timeout"}, false,
			[]string{b.String(), "/apisix/admin/ssls/keyward_shop_web-tls", "500", "etcd timeout"}},
		{"503 is transient", deliverytest.Failure{Status: 503, Msg: ""}, false, []string{b.String(), "503"}},
		{"400 with error_msg is permanent", deliverytest.Failure{Status: 400, Msg: "invalid configuration: property \"snis\" validation failed"}, true,
			[]string{b.String(), "/apisix/admin/ssls/keyward_shop_web-tls", "400", "property \"snis\" validation failed"}},
		{"404 is permanent and explained", deliverytest.Failure{Status: 404, Msg: "404 Route Not Found"}, true,
			[]string{b.String(), "404", "etcd"}},
		{"error_msg quoting the key is withheld", deliverytest.Failure{Status: 400, Msg: "bad key: " + string(b.Key)}, true,
			[]string{b.String(), "withheld"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAPISIX(t, "admin-secret")
			s := newInlineSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "admin-secret"))
			f.failNext(tc.fail)
			err := s.Deliver(context.Background(), b)
			deliverytest.AssertDeliverError(t, err, b, tc.permanent, tc.contains, "admin-secret")
		})
	}
}

func TestAdminKeyReReadOn401(t *testing.T) {
	t.Parallel()
	f := newFakeAPISIX(t, "old-key")
	keyFile := deliverytest.WriteSecretFile(t, "admin-key", "old-key")
	s := newInlineSink(t, f, keyFile)
	ctx := context.Background()
	if err := s.Deliver(ctx, deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")); err != nil {
		t.Fatal(err)
	}

	// APISIX's key rotates, and the mounted file follows.
	f.setKey("new-key")
	if err := os.WriteFile(keyFile, []byte("new-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, deliverytest.Bundle(t, "ns", "a", 2, "a.example.com")); err != nil {
		t.Fatalf("Deliver after key rotation: %v", err)
	}
	reqs := f.reqs()
	if len(reqs) != 3 || reqs[1].APIKey != "old-key" || reqs[2].APIKey != "new-key" {
		t.Fatalf("want the PUT refused with the old key then retried once with the new one (%d requests)", len(reqs))
	}

	// Refused and the file has not changed: no blind retry, a permanent error.
	f.setKey("newer-key")
	err := s.Deliver(ctx, deliverytest.Bundle(t, "ns", "a", 3, "a.example.com"))
	if !errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("got %v, want a permanent error naming the 401", err)
	}
	if n := len(f.reqs()); n != 4 {
		t.Errorf("%d requests in all, want 4 (no retry with the same key)", n)
	}
	deliverytest.AssertNoSecrets(t, err, "new-key", "newer-key")
}

func TestDeliverNoAnswer(t *testing.T) {
	t.Parallel()
	b := deliverytest.Bundle(t, "shop", "web-tls", 1, "web.example.com")

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		s, err := New(Options{AdminURL: deliverytest.ClosedURL(), AdminKeyFile: deliverytest.WriteSecretFile(t, "admin-key", "k")}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Deliver(context.Background(), b)
		if err == nil || errors.Is(err, delivery.ErrPermanent) {
			t.Fatalf("got %v, want a transient error", err)
		}
		if !strings.Contains(err.Error(), b.String()) || !strings.Contains(err.Error(), "/apisix/admin/ssls/") {
			t.Errorf("error %q does not name the Secret and the path", err)
		}
	})

	for _, mode := range []string{ModeInline, ModeStandalone} {
		t.Run("timeout is bounded/"+mode, func(t *testing.T) {
			t.Parallel()
			f := newFakeAPISIX(t, "k")
			f.standalone = mode == ModeStandalone
			f.gate.Hold(t)
			s, err := New(Options{AdminURL: f.srv.URL, AdminKeyFile: deliverytest.WriteSecretFile(t, "admin-key", "k"), Mode: mode, Timeout: 200 * time.Millisecond}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			deliverytest.AssertDeliverTimesOut(t, s, b)
		})
	}
}

func TestDeliverWithoutDNSNamesIsPermanent(t *testing.T) {
	t.Parallel()
	f := newFakeAPISIX(t, "k")
	s := newInlineSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "k"))
	b := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")
	b.DNSNames = nil
	if err := s.Deliver(context.Background(), b); !errors.Is(err, delivery.ErrPermanent) {
		t.Fatalf("got %v, want ErrPermanent", err)
	}
	if n := len(f.reqs()); n != 0 {
		t.Errorf("sent %d requests, want none", n)
	}
}

func TestSSLID(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", 63)
	cases := []struct {
		prefix, ns, name, want string
	}{
		{"keyward_", "shop", "web-tls", "keyward_shop_web-tls"},
		{"k.", "a", "b.c", "k.a_b.c"},
		{"keyward_", "kube-system", strings.Repeat("x", 42), "keyward_kube-system_" + strings.Repeat("x", 42)}, // 8+11+1+42 = 62
	}
	for _, tc := range cases {
		if got := SSLID(tc.prefix, tc.ns, tc.name); got != tc.want {
			t.Errorf("SSLID(%q, %q, %q) = %q, want %q", tc.prefix, tc.ns, tc.name, got, tc.want)
		}
	}
	a := SSLID("keyward_", long, long+"a")
	b := SSLID("keyward_", long, long+"b")
	for _, id := range []string{a, b} {
		if len(id) != maxIDLength || !idPattern.MatchString(id) || !strings.HasPrefix(id, "keyward_"+long[:10]) {
			t.Errorf("long id %q: want %d characters of APISIX's charset, starting with prefix and namespace", id, maxIDLength)
		}
	}
	if a == b {
		t.Errorf("two Secrets whose names differ only past the cut got the same id %q", a)
	}
	if SSLID("keyward_", long, long+"a") != a {
		t.Errorf("SSLID is not deterministic")
	}
	// "_" separates namespace and name, and never occurs in either.
	if SSLID("p", "a-b", "c") == SSLID("p", "a", "b-c") {
		t.Errorf("different Secrets share an id")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	keyFile := deliverytest.WriteSecretFile(t, "admin-key", "k")
	ok := Options{AdminURL: "http://apisix:9180", AdminKeyFile: keyFile}
	cases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no admin url", func(o *Options) { o.AdminURL = "" }, "--apisix-admin-url is required"},
		{"admin url without scheme", func(o *Options) { o.AdminURL = "apisix:9180" }, "is not an http(s) URL"},
		{"no key file", func(o *Options) { o.AdminKeyFile = "" }, "--apisix-admin-key-file is required"},
		{"missing key file", func(o *Options) { o.AdminKeyFile = keyFile + ".missing" }, "reading admin key file"},
		{"bad mode", func(o *Options) { o.Mode = "etcd" }, `--apisix-mode "etcd"`},
		{"bad prefix", func(o *Options) { o.SSLIDPrefix = "key/ward" }, "--apisix-ssl-id-prefix"},
		{"secret-ref without vault", func(o *Options) { o.Mode = ModeSecretRef; o.MirrorMount = "m"; o.VaultURL = "http://v:8200" }, "needs a Vault client"},
		{"secret-ref without mount", func(o *Options) { o.Mode = ModeSecretRef; o.VaultURL = "http://v:8200" }, "--apisix-mirror-mount is required"},
		{"secret-ref without vault url", func(o *Options) { o.Mode = ModeSecretRef; o.MirrorMount = "m" }, "--apisix-vault-url is required"},
		{"secret-ref vault url with path", func(o *Options) {
			o.Mode = ModeSecretRef
			o.MirrorMount = "m"
			o.VaultURL = "http://v:8200/v1"
		}, "without a path"},
		{"token ttl too short", func(o *Options) { o.Mode = ModeSecretRef; o.TokenTTL = time.Minute }, "--apisix-token-ttl"},
		{"bad manager id", func(o *Options) { o.Mode = ModeSecretRef; o.SecretManagerID = "a/b" }, "--apisix-secret-manager-id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := ok
			tc.edit(&o)
			_, err := New(o, Deps{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(ok, Deps{}); err != nil {
		t.Fatalf("valid inline options: %v", err)
	}
	standalone := ok
	standalone.Mode = ModeStandalone
	if _, err := New(standalone, Deps{}); err != nil {
		t.Fatalf("valid standalone options (no Vault needed): %v", err)
	}
}

func TestAddFlags(t *testing.T) {
	t.Parallel()
	var o Options
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{
		"--apisix-admin-url=https://apisix:9180", "--apisix-admin-key-file=/k", "--apisix-mode=secret-ref",
		"--apisix-ssl-id-prefix=kw-", "--apisix-timeout=3s", "--apisix-secret-manager-id=kw",
		"--apisix-mirror-mount=apisix-mirror", "--apisix-vault-url=https://vault:8200", "--apisix-token-ttl=2h",
		"--apisix-token-policy=p", "--apisix-token-role=r", "--apisix-token-revoke-delay=5s",
	}); err != nil {
		t.Fatal(err)
	}
	want := Options{
		AdminURL: "https://apisix:9180", AdminKeyFile: "/k", Mode: ModeSecretRef, SSLIDPrefix: "kw-",
		Timeout: 3 * time.Second, SecretManagerID: "kw", MirrorMount: "apisix-mirror",
		VaultURL: "https://vault:8200", TokenTTL: 2 * time.Hour, TokenPolicy: "p", TokenRole: "r",
		TokenRevokeDelay: 5 * time.Second,
	}
	if o != want {
		t.Errorf("flags parsed to %+v, want %+v", o, want)
	}
	var d Options
	d.AddFlags(pflag.NewFlagSet("defaults", pflag.ContinueOnError))
	if d.Mode != ModeInline || d.SSLIDPrefix != DefaultSSLIDPrefix || d.Timeout != DefaultTimeout || d.TokenTTL != DefaultTokenTTL {
		t.Errorf("defaults = %+v", d)
	}
}
