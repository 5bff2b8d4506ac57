// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Contract tests of standalone mode. Real APISIX cannot run on this machine
// (no Docker; APISIX is not in Debian's packages): fakeAPISIX in standalone
// mode (fake_test.go) implements /apisix/admin/configs as APISIX documents
// it and as its apisix/admin/standalone.lua behaves, and the tests check
// the exact requests the sink sends. No test prints a key or an admin key.

package apisix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/internal/deliverytest"
)

func newStandaloneSink(t *testing.T, f *fakeAPISIX, keyFile string) *Sink {
	t.Helper()
	s, err := New(Options{AdminURL: f.srv.URL, AdminKeyFile: keyFile, Mode: ModeStandalone, Timeout: 5 * time.Second}, Deps{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// otherTeams is a configuration the sink must leave as it is: a route, an
// upstream, another team's SSL object (with a modifiedIndex), and an older
// version of the sink's own SSL object.
func otherTeams(t *testing.T, ours map[string]any) map[string]any {
	t.Helper()
	other := deliverytest.Bundle(t, "team-b", "api-tls", 1, "api.example.org")
	ssls := []any{map[string]any{
		"id": "team-b-ssl", "cert": string(other.Certificate), "key": string(other.Key),
		"snis": []any{"api.example.org"}, "modifiedIndex": 7,
	}}
	if ours != nil {
		ssls = append(ssls, ours)
	}
	conf := map[string]any{
		"routes": []any{map[string]any{"id": "r1", "uri": "/hello", "upstream_id": "u1", "modifiedIndex": 3}},
		"upstreams": []any{map[string]any{
			"id": "u1", "type": "roundrobin", "nodes": map[string]any{"10.0.0.1:80": 1},
		}},
		"ssls": ssls,
	}
	for _, k := range standaloneKinds {
		conf[k+"_conf_version"] = 0
	}
	conf["routes_conf_version"] = 3
	conf["upstreams_conf_version"] = 2
	conf["ssls_conf_version"] = 5
	return conf
}

func sslItem(id string, b *delivery.Bundle) map[string]any {
	snis := []any{}
	for _, n := range b.DNSNames {
		snis = append(snis, n)
	}
	return map[string]any{"id": id, "cert": string(b.Certificate), "key": string(b.Key), "snis": snis, "type": "server"}
}

func TestStandaloneDeliverSendsDocumentedRequests(t *testing.T) {
	t.Parallel()
	f := newStandaloneAPISIX(t, "admin-key-1")
	const id = "keyward_shop_web-tls"
	old := deliverytest.Bundle(t, "shop", "web-tls", 2, "web.example.com")
	f.seed(otherTeams(t, sslItem(id, old)))
	before := f.config()
	s := newStandaloneSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "admin-key-1"))
	b := deliverytest.Bundle(t, "shop", "web-tls", 3, "web.example.com", "www.example.com")

	if err := s.Deliver(context.Background(), b); err != nil {
		t.Fatalf("Deliver: %v", deliverytest.Redacted(err, b))
	}
	reqs := f.reqs()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want GET, PUT, GET", len(reqs))
	}
	for i, want := range []string{http.MethodGet, http.MethodPut, http.MethodGet} {
		r := reqs[i]
		if r.Method != want || r.Path != "/apisix/admin/configs" {
			t.Errorf("request %d = %s %s, want %s /apisix/admin/configs", i, r.Method, r.Path, want)
		}
		if r.APIKey != "admin-key-1" {
			t.Errorf("request %d: X-API-KEY is not the key from the key file", i)
		}
	}
	if reqs[0].Accept != "application/json" {
		t.Errorf("GET Accept = %q, want application/json", reqs[0].Accept)
	}
	put := reqs[1]
	if put.ContentType != "application/json" {
		t.Errorf("PUT Content-Type = %q, want application/json", put.ContentType)
	}
	sum := sha256.Sum256(put.Raw)
	if put.Digest != hex.EncodeToString(sum[:]) {
		t.Errorf("PUT X-Digest = %q, want the hex SHA-256 of the body", put.Digest)
	}
	body := put.Body
	if body["ssls_conf_version"] != float64(6) {
		t.Errorf("ssls_conf_version = %v, want 6 (the one read + 1)", body["ssls_conf_version"])
	}
	for _, k := range standaloneKinds {
		if k == "ssls" {
			continue
		}
		if body[k+"_conf_version"] != before[k+"_conf_version"] {
			t.Errorf("%s_conf_version = %v, want %v as read (so that APISIX refuses the PUT if another writer changed it)",
				k, body[k+"_conf_version"], before[k+"_conf_version"])
		}
	}
	for _, k := range []string{"routes", "upstreams"} {
		if !reflect.DeepEqual(body[k], before[k]) {
			t.Errorf("PUT changed %s: %v, want %v", k, body[k], before[k])
		}
	}
	for _, k := range []string{"X-Digest", "X-Last-Modified"} {
		if _, ok := body[k]; ok {
			t.Errorf("PUT body carries APISIX's metadata %s", k)
		}
	}
	ssls, _ := body["ssls"].([]any)
	if len(ssls) != 2 {
		t.Fatalf("PUT has %d SSL objects, want 2 (the other team's and ours)", len(ssls))
	}
	if !reflect.DeepEqual(ssls[0], before["ssls"].([]any)[0]) {
		t.Errorf("the other team's SSL object was changed")
	}
	if !reflect.DeepEqual(ssls[1], sslItem(id, b)) {
		// Name the fields only: the object holds the key.
		t.Errorf("our SSL object has fields %v, want exactly id, cert, key, snis, type=server with the new version (no modifiedIndex, so APISIX reloads it)",
			deliverytest.Keys(ssls[1].(map[string]any)))
	}

	after := f.config()
	if got := standaloneSSLByID(after, id); got == nil || got["key"] != string(b.Key) {
		t.Errorf("APISIX does not hold the new version of our SSL object")
	}
	if got := standaloneSSLByID(after, "team-b-ssl"); !reflect.DeepEqual(got, before["ssls"].([]any)[0]) {
		t.Errorf("APISIX lost or changed the other team's SSL object")
	}
	if !reflect.DeepEqual(after["routes"], before["routes"]) || !reflect.DeepEqual(after["upstreams"], before["upstreams"]) {
		t.Errorf("APISIX's routes or upstreams changed")
	}
}

func TestStandaloneAddsToEmptyAPISIX(t *testing.T) {
	t.Parallel()
	f := newStandaloneAPISIX(t, "k")
	s := newStandaloneSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "k"))
	b := deliverytest.Bundle(t, "shop", "web-tls", 1, "web.example.com")
	if err := s.Deliver(context.Background(), b); err != nil {
		t.Fatalf("Deliver: %v", deliverytest.Redacted(err, b))
	}
	put := f.reqs()[1]
	if put.Body["ssls_conf_version"] != float64(1) || put.Body["routes_conf_version"] != float64(0) {
		t.Errorf("versions sent: ssls %v routes %v, want 1 and 0", put.Body["ssls_conf_version"], put.Body["routes_conf_version"])
	}
	ssls, _ := put.Body["ssls"].([]any)
	if len(ssls) != 1 || !reflect.DeepEqual(ssls[0], sslItem("keyward_shop_web-tls", b)) {
		t.Errorf("PUT ssls has %d objects, want exactly ours", len(ssls))
	}
	if standaloneSSLByID(f.config(), "keyward_shop_web-tls") == nil {
		t.Errorf("APISIX does not hold our SSL object")
	}
}

func TestStandaloneIdempotencyAndRestart(t *testing.T) {
	t.Parallel()
	f := newStandaloneAPISIX(t, "k")
	f.seed(otherTeams(t, nil))
	s := newStandaloneSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "k"))
	ctx := context.Background()
	v1 := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")
	methods := func(from int) []string {
		var m []string
		for _, r := range f.reqs()[from:] {
			m = append(m, r.Method)
		}
		return m
	}

	for range 2 {
		if err := s.Deliver(ctx, v1); err != nil {
			t.Fatalf("Deliver v1: %v", deliverytest.Redacted(err, v1))
		}
	}
	if n := len(f.reqs()); n != 3 {
		t.Fatalf("two Delivers of one revision sent %d requests, want 3 (GET, PUT, GET once)", n)
	}

	// Resync while APISIX still holds the object: read, nothing written.
	s.Resync()
	if err := s.Deliver(ctx, v1); err != nil {
		t.Fatal(deliverytest.Redacted(err, v1))
	}
	if got := methods(3); !reflect.DeepEqual(got, []string{http.MethodGet}) {
		t.Fatalf("Resync with the object in place sent %v, want a single GET", got)
	}

	// APISIX restarts with an empty configuration: Resync puts it back.
	f.restart()
	s.Resync()
	if err := s.Deliver(ctx, v1); err != nil {
		t.Fatal(deliverytest.Redacted(err, v1))
	}
	if got := methods(4); !reflect.DeepEqual(got, []string{http.MethodGet, http.MethodPut, http.MethodGet}) {
		t.Fatalf("Resync after an APISIX restart sent %v, want GET, PUT, GET", got)
	}
	if got := standaloneSSLByID(f.config(), "keyward_ns_a"); got == nil || got["key"] != string(v1.Key) {
		t.Fatalf("APISIX does not hold the object after the re-delivery")
	}
	// Without Resync a lost object is not noticed (that is Resync's job).
	f.restart()
	if err := s.Deliver(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if n := len(f.reqs()); n != 7 {
		t.Fatalf("%d requests in all, want 7", n)
	}

	// A new version is delivered.
	v2 := deliverytest.Bundle(t, "ns", "a", 2, "a.example.com")
	if err := s.Deliver(ctx, v2); err != nil {
		t.Fatal(deliverytest.Redacted(err, v2))
	}
	if got := standaloneSSLByID(f.config(), "keyward_ns_a"); got == nil || got["key"] != string(v2.Key) {
		t.Fatalf("APISIX does not hold version 2")
	}
	// A failed PUT is not remembered: the retry sends it.
	v3 := deliverytest.Bundle(t, "ns", "a", 3, "a.example.com")
	f.failAfter(1, deliverytest.Failure{Status: http.StatusServiceUnavailable, Msg: "busy"})
	if err := s.Deliver(ctx, v3); err == nil || errors.Is(err, delivery.ErrPermanent) {
		t.Fatalf("got %v, want a transient error", err)
	}
	if err := s.Deliver(ctx, v3); err != nil {
		t.Fatalf("retry: %v", deliverytest.Redacted(err, v3))
	}
	if got := standaloneSSLByID(f.config(), "keyward_ns_a"); got == nil || got["key"] != string(v3.Key) {
		t.Fatalf("APISIX does not hold version 3 after the retry")
	}
}

func TestStandaloneConcurrentWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("another kind changed between GET and PUT", func(t *testing.T) {
		t.Parallel()
		f := newStandaloneAPISIX(t, "admin-secret")
		f.seed(otherTeams(t, nil))
		s := newStandaloneSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "admin-secret"))
		b := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")
		newRoute := map[string]any{"id": "r2", "uri": "/new", "upstream_id": "u1"}
		f.beforePut = func(f *fakeAPISIX) {
			f.conf["routes"] = append(f.conf["routes"].([]any), newRoute)
			f.conf["routes_conf_version"] = float64(4)
		}
		err := s.Deliver(ctx, b)
		if err == nil || errors.Is(err, delivery.ErrPermanent) {
			t.Fatalf("got %v, want a transient error (a conflict is retried)", err)
		}
		if !strings.Contains(err.Error(), "another writer") || !strings.Contains(err.Error(), "routes_conf_version") {
			t.Errorf("error %q does not explain the conflict", deliverytest.Redacted(err, b))
		}
		deliverytest.AssertNoSecrets(t, err, string(b.Key), "admin-secret")
		// The retry reads the new configuration and keeps the other writer's route.
		if err := s.Deliver(ctx, b); err != nil {
			t.Fatalf("retry: %v", deliverytest.Redacted(err, b))
		}
		conf := f.config()
		routes, _ := conf["routes"].([]any)
		if len(routes) != 2 || standaloneSSLByID(conf, "keyward_ns_a") == nil {
			t.Fatalf("after the retry APISIX has %d routes and our object: %v; want both routes and our object",
				len(routes), standaloneSSLByID(conf, "keyward_ns_a") != nil)
		}
	})

	t.Run("ssls changed to the very version the sink sends", func(t *testing.T) {
		t.Parallel()
		f := newStandaloneAPISIX(t, "k")
		f.seed(otherTeams(t, nil))
		s := newStandaloneSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "k"))
		b := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")
		theirs := deliverytest.Bundle(t, "team-c", "c-tls", 1, "c.example.net")
		f.beforePut = func(f *fakeAPISIX) {
			f.conf["ssls"] = append(f.conf["ssls"].([]any), sslItem("team-c-ssl", theirs))
			f.conf["ssls_conf_version"] = float64(6)
		}
		// APISIX keeps its ssls (same version) and answers 202: the check
		// after the PUT must notice.
		err := s.Deliver(ctx, b)
		if err == nil || errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), "another writer") {
			t.Fatalf("got %v, want a transient error naming the concurrent writer", err)
		}
		deliverytest.AssertNoSecrets(t, err, string(b.Key), string(theirs.Key))
		if err := s.Deliver(ctx, b); err != nil {
			t.Fatalf("retry: %v", deliverytest.Redacted(err, b))
		}
		conf := f.config()
		for _, id := range []string{"team-b-ssl", "team-c-ssl", "keyward_ns_a"} {
			if standaloneSSLByID(conf, id) == nil {
				t.Errorf("after the retry APISIX lacks SSL object %s", id)
			}
		}
	})
}

func TestStandaloneErrors(t *testing.T) {
	t.Parallel()
	b := deliverytest.Bundle(t, "shop", "web-tls", 7, "web.example.com")
	cases := []struct {
		name      string
		get, put  *deliverytest.Failure
		permanent bool
		contains  []string
	}{
		{"GET 500 is transient", &deliverytest.Failure{Status: 500, Msg: "failed to get config from shared dict"}, nil, false,
			[]string{b.String(), "GET /apisix/admin/configs", "500", "shared dict"}},
		{"GET 404 is permanent and explained", &deliverytest.Failure{Status: 404, Msg: "404 Route Not Found"}, nil, true,
			[]string{b.String(), "404", "API-driven standalone mode"}},
		{"PUT 400 schema error is permanent", nil, &deliverytest.Failure{Status: 400, Msg: "invalid ssls at index 1, err: invalid configuration"}, true,
			[]string{b.String(), "PUT /apisix/admin/configs", "400", "invalid ssls at index 1"}},
		{"PUT 503 is transient", nil, &deliverytest.Failure{Status: 503, Msg: ""}, false, []string{b.String(), "PUT /apisix/admin/configs", "503"}},
		{"PUT error_msg quoting the key is withheld", nil, &deliverytest.Failure{Status: 400, Msg: "invalid ssls at index 0: " + string(b.Key)}, true,
			[]string{b.String(), "withheld"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newStandaloneAPISIX(t, "admin-secret")
			s := newStandaloneSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "admin-secret"))
			if tc.get != nil {
				f.failNext(*tc.get)
			}
			if tc.put != nil {
				// The GET succeeds; the PUT fails.
				f.failAfter(1, *tc.put)
			}
			err := s.Deliver(context.Background(), b)
			deliverytest.AssertDeliverError(t, err, b, tc.permanent, tc.contains, "admin-secret")
		})
	}

	t.Run("GET answer that is not JSON is not quoted", func(t *testing.T) {
		t.Parallel()
		f := newStandaloneAPISIX(t, "k")
		other := deliverytest.Bundle(t, "x", "y", 1, "y.example.com")
		f.garbage = append([]byte(`{"ssls": [`), other.Key...)
		s := newStandaloneSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "k"))
		err := s.Deliver(context.Background(), b)
		if err == nil || !strings.Contains(err.Error(), "not a JSON object") {
			t.Fatalf("got %v, want an error saying the answer is not a JSON object", err)
		}
		deliverytest.AssertNoSecrets(t, err, string(b.Key), string(other.Key))
	})

	t.Run("inline mode against a standalone APISIX is explained", func(t *testing.T) {
		t.Parallel()
		f := newStandaloneAPISIX(t, "k")
		s := newInlineSink(t, f, deliverytest.WriteSecretFile(t, "admin-key", "k"))
		err := s.Deliver(context.Background(), b)
		if !errors.Is(err, delivery.ErrPermanent) || !strings.Contains(err.Error(), "--apisix-mode standalone") {
			t.Fatalf("got %v, want a permanent error pointing to --apisix-mode standalone", err)
		}
	})
}

func TestStandaloneAdminKeyReReadOn401(t *testing.T) {
	t.Parallel()
	f := newStandaloneAPISIX(t, "old-key")
	keyFile := deliverytest.WriteSecretFile(t, "admin-key", "old-key")
	s := newStandaloneSink(t, f, keyFile)
	f.setKey("new-key")
	if err := os.WriteFile(keyFile, []byte("new-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := deliverytest.Bundle(t, "ns", "a", 1, "a.example.com")
	if err := s.Deliver(context.Background(), b); err != nil {
		t.Fatalf("Deliver after key rotation: %v", deliverytest.Redacted(err, b))
	}
	reqs := f.reqs()
	if len(reqs) != 4 || reqs[0].APIKey != "old-key" || reqs[1].APIKey != "new-key" || reqs[2].APIKey != "new-key" ||
		reqs[0].Method != http.MethodGet || reqs[1].Method != http.MethodGet || reqs[2].Method != http.MethodPut {
		t.Fatalf("want GET refused with the old key, then GET, PUT, GET with the new one (%d requests)", len(reqs))
	}
}
