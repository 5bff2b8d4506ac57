// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Contract tests of the Kong sink. Real Kong cannot run on this machine (no
// Docker; Kong OSS is not packaged for Debian): fakeKong (fake_test.go)
// implements Kong's documented Admin API, and the tests check the exact
// requests the sink sends to it. No test prints a key or a token.

package kong

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/internal/deliverytest"
)

func newSink(t *testing.T, f *fakeKong, o Options) *Sink {
	t.Helper()
	o.AdminURL = f.srv.URL
	if o.Mode == "" {
		o.Mode = ModeDB
		if f.dbless {
			o.Mode = ModeDBLess
		}
	}
	s, err := New(o, Deps{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestUUIDv5(t *testing.T) {
	t.Parallel()
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	// RFC 9562's name-based UUID of www.example.com in the DNS namespace,
	// as every UUID library computes it.
	if got := uuidV5(dns, "www.example.com"); got != "2ed6657d-e927-568b-95e1-2665a8aea6a2" {
		t.Errorf("uuidV5 = %s, want 2ed6657d-e927-568b-95e1-2665a8aea6a2", got)
	}
	a, b := CertificateID("shop", "web-tls"), CertificateID("shop", "web-tls2")
	if !uuidPattern.MatchString(a) || a[14] != '5' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Errorf("CertificateID %s is not a version 5 UUID", a)
	}
	if a == b || CertificateID("shop", "web-tls") != a || CertificateID("sho", "pweb-tls") == a {
		t.Errorf("CertificateID must be deterministic and differ between Secrets")
	}
}

func TestDBModeSendsDocumentedPUT(t *testing.T) {
	t.Parallel()
	for _, withToken := range []bool{false, true} {
		t.Run(map[bool]string{false: "kong oss", true: "with admin token"}[withToken], func(t *testing.T) {
			t.Parallel()
			f := newFakeKong(t, false, nil)
			o := Options{Tags: []string{"keyward", "team-a"}}
			if withToken {
				f.setToken("rbac-token")
				o.AdminTokenFile = deliverytest.WriteSecretFile(t, "token", "rbac-token")
			}
			s := newSink(t, f, o)
			b := deliverytest.Bundle(t, "shop", "web-tls", 4, "web.example.com", "www.example.com")
			if err := s.Deliver(context.Background(), b); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			reqs := f.reqs()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			id := CertificateID("shop", "web-tls")
			if r.Method != http.MethodPut || r.Path != "/certificates/"+id || r.Query != "" {
				t.Errorf("request %s %s?%s, want PUT /certificates/%s", r.Method, r.Path, r.Query, id)
			}
			if r.ContentType != "application/json" {
				t.Errorf("Content-Type %q", r.ContentType)
			}
			if withToken && r.Token != "rbac-token" {
				t.Errorf("Kong-Admin-Token header is not the token from the file")
			}
			if !withToken && r.Token != "" {
				t.Errorf("Kong-Admin-Token sent without a token file")
			}
			want := map[string]any{
				"cert": string(b.Certificate), "key": string(b.Key),
				"snis": []any{"web.example.com", "www.example.com"}, "tags": []any{"keyward", "team-a"},
			}
			if !reflect.DeepEqual(r.Body, want) {
				t.Errorf("body fields differ from {cert, key, snis, tags}")
			}
		})
	}
}

func TestDeliverIsIdempotentPerVersion(t *testing.T) {
	t.Parallel()
	for _, dbless := range []bool{false, true} {
		t.Run(map[bool]string{false: "db", true: "dbless"}[dbless], func(t *testing.T) {
			t.Parallel()
			f := newFakeKong(t, dbless, nil)
			s := newSink(t, f, Options{})
			ctx := context.Background()
			perDelivery := 1 // PUT
			if dbless {
				perDelivery = 2 // GET then POST
			}
			v1 := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")
			for range 2 {
				if err := s.Deliver(ctx, v1); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(f.reqs()); n != perDelivery {
				t.Fatalf("two Delivers of one version: %d requests, want %d", n, perDelivery)
			}
			if err := s.Deliver(ctx, deliverytest.Bundle(t, "ns", "a", 2, "a.example.com")); err != nil {
				t.Fatal(err)
			}
			if n := len(f.reqs()); n != 2*perDelivery {
				t.Fatalf("new version: %d requests in all, want %d", n, 2*perDelivery)
			}
			// Same version number, new key (custody rebuilt): delivered.
			rebuilt := deliverytest.Bundle(t, "ns", "a", 2, "a.example.com")
			rebuilt.KeySHA256 = "bb"
			if err := s.Deliver(ctx, rebuilt); err != nil {
				t.Fatal(err)
			}
			if n := len(f.reqs()); n != 3*perDelivery {
				t.Fatalf("new key under a known version: %d requests in all, want %d", n, 3*perDelivery)
			}
			// After Resync the same version goes again; for DB-less Kong
			// answers 304 to the unchanged configuration, which is success.
			s.Resync()
			v2again := deliverytest.Bundle(t, "ns", "a", 2, "a.example.com")
			v2again.KeySHA256 = "bb"
			v2again.Key, v2again.Certificate = f.lastKeyAndCert(t, dbless)
			if err := s.Deliver(ctx, v2again); err != nil {
				t.Fatalf("Deliver after Resync: %v", err)
			}
			if n := len(f.reqs()); n != 4*perDelivery {
				t.Fatalf("after Resync: %d requests in all, want %d", n, 4*perDelivery)
			}
		})
	}
}

// lastKeyAndCert returns what Kong holds for ns/a, to re-deliver it unchanged.
func (f *fakeKong) lastKeyAndCert(t *testing.T, dbless bool) ([]byte, []byte) {
	t.Helper()
	id := CertificateID("ns", "a")
	if !dbless {
		f.mu.Lock()
		defer f.mu.Unlock()
		c := f.certs[id]
		return []byte(c["key"].(string)), []byte(c["cert"].(string))
	}
	for _, c := range asList(f.currentConfig()["certificates"]) {
		m := c.(map[string]any)
		if m["id"] == id {
			return []byte(m["key"].(string)), []byte(m["cert"].(string))
		}
	}
	t.Fatal("certificate not in Kong's configuration")
	return nil, nil
}

// exportedConfig is a DB-less configuration as Kong's GET /config exports
// it: a service, a route, and another team's certificate with its SNI.
func exportedConfig() map[string]any {
	return map[string]any{
		"_format_version": "3.0",
		"_transform":      false,
		"services": []any{map[string]any{
			"id": "0855b320-0dd2-547d-891d-601e9b38647f", "name": "web", "host": "web.shop.svc", "port": 8080,
			"protocol": "http", "created_at": 1700000000, "tags": nil,
		}},
		"routes": []any{map[string]any{
			"id": "481a9539-f49c-51b6-b2e2-fe99ee68866c", "service": "0855b320-0dd2-547d-891d-601e9b38647f",
			"hosts": []any{"web.example.com"}, "paths": []any{"/"},
		}},
		"certificates": []any{map[string]any{
			"id": "11111111-2222-5333-8444-555555555555", "cert": "OTHER CERT", "key": "OTHER TEAM KEY", "tags": nil,
		}},
		"snis": []any{map[string]any{
			"id": "66666666-7777-5888-9999-000000000000", "name": "other.example.com",
			"certificate": "11111111-2222-5333-8444-555555555555",
		}},
	}
}

func TestDBLessReplacesOnlyItsCertificate(t *testing.T) {
	t.Parallel()
	f := newFakeKong(t, true, exportedConfig())
	s := newSink(t, f, Options{})
	ctx := context.Background()
	id := CertificateID("shop", "web-tls")
	v1 := deliverytest.Bundle(t, "shop", "web-tls", 1, "web.example.com", "www.example.com")
	if err := s.Deliver(ctx, v1); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := f.reqs()
	if len(reqs) != 2 || reqs[0].Method != http.MethodGet || reqs[0].Path != "/config" ||
		reqs[1].Method != http.MethodPost || reqs[1].Path != "/config" || reqs[1].Query != "check_hash=1" ||
		reqs[1].ContentType != "application/json" {
		t.Fatalf("requests %v, want GET /config then POST /config?check_hash=1 (JSON)", describe(reqs))
	}
	if _, ok := reqs[1].Body["config"].(string); !ok || len(reqs[1].Body) != 1 {
		t.Fatalf("POST body must be {\"config\": <string>}, has fields %v", deliverytest.Keys(reqs[1].Body))
	}

	got := f.currentConfig()
	want := exportedConfig()
	for _, kind := range []string{"_format_version", "_transform", "services", "routes"} {
		if !jsonEqual(got[kind], want[kind]) {
			t.Errorf("%s changed", kind)
		}
	}
	certs := asList(got["certificates"])
	if len(certs) != 2 || !jsonEqual(certs[0], asList(want["certificates"])[0]) {
		t.Fatalf("the other certificate must stay as it was, and ours be added (%d certificates)", len(certs))
	}
	ours := certs[1].(map[string]any)
	if ours["id"] != id || ours["cert"] != string(v1.Certificate) || ours["key"] != string(v1.Key) || !jsonEqual(ours["tags"], []any{"keyward"}) || len(ours) != 4 {
		t.Errorf("our certificate entity has fields %v, want id, cert, key, tags=[keyward]", deliverytest.Keys(ours))
	}
	assertSNIs(t, got, id, "web.example.com", "www.example.com")

	// Version 2 with other DNS names: replaced, old SNI gone, rest untouched.
	v2 := deliverytest.Bundle(t, "shop", "web-tls", 2, "web.example.com", "api.example.com")
	if err := s.Deliver(ctx, v2); err != nil {
		t.Fatalf("Deliver v2: %v", err)
	}
	got = f.currentConfig()
	certs = asList(got["certificates"])
	if len(certs) != 2 || certs[1].(map[string]any)["key"] != string(v2.Key) {
		t.Fatalf("version 2 did not replace version 1 in place (%d certificates)", len(certs))
	}
	assertSNIs(t, got, id, "web.example.com", "api.example.com")
	if !jsonEqual(got["routes"], want["routes"]) || !jsonEqual(certs[0], asList(want["certificates"])[0]) {
		t.Errorf("version 2 changed other entities")
	}
}

// assertSNIs checks config has exactly one SNI entity per name for cert
// id, besides other.example.com.
func assertSNIs(t *testing.T, config map[string]any, id string, names ...string) {
	t.Helper()
	var ours []string
	other := false
	for _, s := range asList(config["snis"]) {
		m := s.(map[string]any)
		switch {
		case m["certificate"] == id:
			ours = append(ours, m["name"].(string))
			if !uuidPattern.MatchString(m["id"].(string)) || !jsonEqual(m["tags"], []any{"keyward"}) {
				t.Errorf("SNI %v has no UUID id or not the tags", m["name"])
			}
		case m["name"] == "other.example.com":
			other = true
		default:
			t.Errorf("unexpected SNI %v", m["name"])
		}
	}
	slices.Sort(ours)
	slices.Sort(names)
	if !slices.Equal(ours, names) {
		t.Errorf("SNIs of our certificate = %v, want %v", ours, names)
	}
	if !other {
		t.Errorf("the other certificate's SNI was dropped")
	}
}

func TestParseConfigKeepsKongExport(t *testing.T) {
	t.Parallel()
	// The shape of Kong 3.x's YAML export: nulls as ~, integers, foreign
	// keys as ids.
	text := "_format_version: \"3.0\"\n_transform: false\nservices:\n- id: 0855b320-0dd2-547d-891d-601e9b38647f\n  created_at: 1700000000\n  retries: 5\n  client_certificate: ~\n  read_timeout: 60000\n"
	config, err := parseConfig(text)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"created_at":1700000000`, `"client_certificate":null`, `"read_timeout":60000`, `"_transform":false`, `"_format_version":"3.0"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("round trip lost %s: %s", want, out)
		}
	}
	if c, err := parseConfig(""); err != nil || len(c) != 0 {
		t.Errorf("empty configuration: %v, %v", c, err)
	}
	if _, err := parseConfig("- a\n- b\n"); err == nil {
		t.Errorf("a list parsed as a configuration")
	}
}

func TestSNIConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("db", func(t *testing.T) {
		t.Parallel()
		f := newFakeKong(t, false, nil)
		s := newSink(t, f, Options{})
		if err := s.Deliver(ctx, deliverytest.Bundle(t, "team-a", "web", 1, "shared.example.com")); err != nil {
			t.Fatal(err)
		}
		b := deliverytest.Bundle(t, "team-b", "web", 1, "shared.example.com")
		err := s.Deliver(ctx, b)
		if !errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), "another Kong certificate already serves") ||
			!strings.Contains(err.Error(), b.String()) || !strings.Contains(err.Error(), "shared.example.com") {
			t.Fatalf("got %v, want a permanent SNI conflict error naming the Secret and the SNI", err)
		}
		f.failNext(deliverytest.Failure{Status: http.StatusConflict, Msg: "UNIQUE violation detected on '{name=\"shared.example.com\"}'"})
		err = s.Deliver(ctx, b)
		if !errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "another Kong certificate") {
			t.Fatalf("409: got %v, want a permanent SNI conflict error", err)
		}
	})
	t.Run("dbless", func(t *testing.T) {
		t.Parallel()
		f := newFakeKong(t, true, exportedConfig())
		s := newSink(t, f, Options{})
		b := deliverytest.Bundle(t, "team-b", "web", 1, "other.example.com")
		err := s.Deliver(ctx, b)
		if !errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), "another Kong certificate already serves") {
			t.Fatalf("got %v, want a permanent SNI conflict error", err)
		}
		if !jsonEqual(f.currentConfig(), exportedConfig()) {
			t.Errorf("a rejected configuration changed Kong's")
		}
	})
}

func TestDeliverErrors(t *testing.T) {
	t.Parallel()
	b := deliverytest.Bundle(t, "shop", "web-tls", 7, "web.example.com")
	id := CertificateID("shop", "web-tls")
	cases := []struct {
		name      string
		dbless    bool
		fail      []deliverytest.Failure
		postOnly  bool // fail the POST /config, not the GET before it
		permanent bool
		contains  []string
	}{
		{"db 500 is transient", false, []deliverytest.Failure{{Status: 500, Msg: "An unexpected error occurred"}}, false, false,
			[]string{b.String(), "PUT /certificates/" + id, "500", "An unexpected error occurred"}},
		{"db 400 is permanent", false, []deliverytest.Failure{{Status: 400, Msg: "schema violation (cert: invalid certificate: x509.new: asn1)"}}, false, true,
			[]string{b.String(), "PUT /certificates/" + id, "400", "schema violation"}},
		{"db against dbless kong", true, nil, false, true, []string{b.String(), "405", "--kong-mode=dbless"}},
		{"dbless GET 500 is transient", true, []deliverytest.Failure{{Status: 500, Msg: "An unexpected error occurred"}}, false, false,
			[]string{b.String(), "GET /config", "500"}},
		{"dbless POST 400 is permanent", true, []deliverytest.Failure{{Status: 400, Msg: "declarative config is invalid: {certificates={key=\"invalid key\"}}"}}, true, true,
			[]string{b.String(), "POST /config?check_hash=1", "400", "invalid key"}},
		{"dbless POST 413 is permanent", true, []deliverytest.Failure{{Status: 413, Msg: "Configuration does not fit in Kong cache"}}, true, true,
			[]string{b.String(), "413", "mem_cache_size"}},
		{"dbless against db kong", false, nil, false, true, []string{b.String(), "GET /config", "uses a database", "--kong-mode=db"}},
		{"message quoting the key is withheld", false, []deliverytest.Failure{{Status: 400, Msg: "bad key " + string(b.Key)}}, false, true,
			[]string{b.String(), "withheld"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeKong(t, tc.dbless, nil)
			mode := ModeDB
			if strings.HasPrefix(tc.name, "dbless") {
				mode = ModeDBLess
			}
			s := newSink(t, f, Options{Mode: mode})
			if tc.postOnly {
				f.failPOST(tc.fail...)
			} else {
				f.failNext(tc.fail...)
			}
			err := s.Deliver(context.Background(), b)
			deliverytest.AssertDeliverError(t, err, b, tc.permanent, tc.contains)
		})
	}
}

func TestAdminTokenReReadOn401(t *testing.T) {
	t.Parallel()
	f := newFakeKong(t, false, nil)
	f.setToken("old-token")
	tokenFile := deliverytest.WriteSecretFile(t, "token", "old-token")
	s := newSink(t, f, Options{AdminTokenFile: tokenFile})
	ctx := context.Background()
	if err := s.Deliver(ctx, deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")); err != nil {
		t.Fatal(err)
	}
	f.setToken("new-token")
	if err := os.WriteFile(tokenFile, []byte("new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, deliverytest.Bundle(t, "ns", "a", 2, "a.example.com")); err != nil {
		t.Fatalf("Deliver after token rotation: %v", err)
	}
	reqs := f.reqs()
	if len(reqs) != 3 || reqs[1].Token != "old-token" || reqs[2].Token != "new-token" {
		t.Fatalf("want the PUT refused with the old token, then retried once with the new one (%d requests)", len(reqs))
	}
	f.setToken("newer-token")
	err := s.Deliver(ctx, deliverytest.Bundle(t, "ns", "a", 3, "a.example.com"))
	if !errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "--kong-admin-token-file") {
		t.Fatalf("got %v, want a permanent error naming the 401 and the flag", err)
	}
	if n := len(f.reqs()); n != 4 {
		t.Errorf("%d requests in all, want 4 (no retry with an unchanged token)", n)
	}
	deliverytest.AssertNoSecrets(t, err, "new-token", "newer-token")
}

func TestDeliverNoAnswer(t *testing.T) {
	t.Parallel()
	b := deliverytest.Bundle(t, "shop", "web-tls", 1, "web.example.com")
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		s, err := New(Options{AdminURL: deliverytest.ClosedURL(), Mode: ModeDBLess}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Deliver(context.Background(), b)
		if err == nil || errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), b.String()) || !strings.Contains(err.Error(), "GET /config") {
			t.Fatalf("got %v, want a transient error naming the Secret and the path", err)
		}
	})
	t.Run("timeout is bounded", func(t *testing.T) {
		t.Parallel()
		f := newFakeKong(t, false, nil)
		f.gate.Hold(t)
		deliverytest.AssertDeliverTimesOut(t, newSink(t, f, Options{Timeout: 200 * time.Millisecond}), b)
	})
}

func TestDeliverWithoutDNSNamesIsPermanent(t *testing.T) {
	t.Parallel()
	f := newFakeKong(t, false, nil)
	s := newSink(t, f, Options{})
	b := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")
	b.DNSNames = nil
	if err := s.Deliver(context.Background(), b); !errors.Is(err, delivery.ErrPermanent) {
		t.Fatalf("got %v, want ErrPermanent", err)
	}
	if n := len(f.reqs()); n != 0 {
		t.Errorf("sent %d requests, want none", n)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"no admin url", Options{}, "--kong-admin-url is required"},
		{"bad admin url", Options{AdminURL: "kong:8001"}, "not an http(s) URL"},
		{"bad mode", Options{AdminURL: "http://kong:8001", Mode: "postgres"}, `--kong-mode "postgres"`},
		{"bad tag", Options{AdminURL: "http://kong:8001", Tags: []string{"a,b"}}, "--kong-tags"},
		{"missing token file", Options{AdminURL: "http://kong:8001", AdminTokenFile: "/nonexistent/token"}, "reading admin token file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tc.o, Deps{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	s, err := New(Options{AdminURL: "http://kong:8001/"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if s.o.Mode != ModeDBLess || !slices.Equal(s.o.Tags, []string{DefaultTag}) || s.o.Timeout != DefaultTimeout || s.o.AdminURL != "http://kong:8001" {
		t.Errorf("defaults: %+v", s.o)
	}
}

func TestAddFlags(t *testing.T) {
	t.Parallel()
	var o Options
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	o.AddFlags(fs)
	if o.Mode != ModeDBLess || o.Timeout != DefaultTimeout || !slices.Equal(o.Tags, []string{"keyward"}) {
		t.Errorf("defaults: %+v", o)
	}
	if err := fs.Parse([]string{"--kong-admin-url=http://kong:8001", "--kong-admin-token-file=/t", "--kong-mode=db", "--kong-timeout=2s", "--kong-tags=keyward,team-a"}); err != nil {
		t.Fatal(err)
	}
	want := Options{AdminURL: "http://kong:8001", AdminTokenFile: "/t", Mode: ModeDB, Timeout: 2 * time.Second, Tags: []string{"keyward", "team-a"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("flags parsed to %+v, want %+v", o, want)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func describe(rs []request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Method+" "+r.Path+"?"+r.Query)
	}
	return out
}
