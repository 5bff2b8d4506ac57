// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Real APISIX cannot run on this machine (no Docker; APISIX is not in
// Debian's packages), so these tests run the sink against fakeAPISIX, an
// httptest server that implements the part of APISIX's documented Admin API
// the sink uses, with APISIX's own validation rules for it
// (apisix/schema_def.lua: ids, ssl; apisix/secret/vault.lua: the secret
// manager schema and how $secret:// references are resolved). The tests
// check the exact requests against that documented API.
//
// In standalone mode (newStandaloneAPISIX) the fake is instead an APISIX in
// API-driven standalone mode: it serves only /apisix/admin/configs, with the
// semantics documented in standalone.go (from APISIX's documentation, and
// its apisix/admin/standalone.lua and t/admin/standalone.spec.ts): GET
// returns the configuration with every <kind>_conf_version, PUT needs
// X-Digest, answers 204 to a known digest, applies the per-kind version
// rules, checks ssls with the ssl schema and duplicate ids, answers 202.

package apisix

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward-io/keyward/delivery/internal/deliverytest"
)

// request is one request the fake received.
type request struct {
	Method, Path, APIKey, ContentType string
	// Accept and Digest (X-Digest) are the headers of standalone mode.
	Accept, Digest string
	Body           map[string]any
	// Raw is the body as sent.
	Raw []byte
}

// fakeAPISIX keeps ssls and secrets like APISIX's Admin API does.
type fakeAPISIX struct {
	srv *httptest.Server

	mu       sync.Mutex
	key      string
	requests []request
	ssls     map[string]map[string]any
	secrets  map[string]map[string]any
	// fail answers the next requests (one Failure each, see failNext and
	// failAfter) with that status and error_msg instead of handling them.
	fail deliverytest.Failures
	// gate holds requests when a test asks it to.
	gate deliverytest.Gate

	// standalone makes the fake an APISIX in API-driven standalone mode.
	standalone bool
	// conf is its configuration as a PUT stored it (nil: never written),
	// with the X-Digest and X-Last-Modified metadata.
	conf map[string]any
	// beforePut, when set, runs (under mu, once) when the next PUT
	// arrives, before it is handled: a concurrent writer.
	beforePut func(f *fakeAPISIX)
	// garbage, when set, is the body of the next 200 answer to a GET.
	garbage []byte
}

// standaloneKinds are the resource kinds of APISIX's standalone
// configuration, each with a <kind>_conf_version.
var standaloneKinds = []string{
	"consumer_groups", "consumers", "global_rules", "plugin_configs", "plugin_metadata", "protos",
	"routes", "secrets", "services", "ssls", "stream_routes", "upstreams",
}

// newStandaloneAPISIX returns a fake APISIX in API-driven standalone mode.
func newStandaloneAPISIX(t *testing.T, key string) *fakeAPISIX {
	t.Helper()
	f := newFakeAPISIX(t, key)
	f.standalone = true
	return f
}

func newFakeAPISIX(t *testing.T, key string) *fakeAPISIX {
	t.Helper()
	f := &fakeAPISIX{key: key, ssls: map[string]map[string]any{}, secrets: map[string]map[string]any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

var (
	fakeIDPattern  = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,64}$`)
	fakeSNIPattern = regexp.MustCompile(`^\*?[0-9a-zA-Z-.]+$`)
)

func (f *fakeAPISIX) serve(w http.ResponseWriter, r *http.Request) {
	if !f.gate.Wait(r) {
		return
	}
	raw, body := deliverytest.ReadJSON(r)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, request{
		Method: r.Method, Path: r.URL.Path, APIKey: r.Header.Get("X-API-KEY"),
		ContentType: r.Header.Get("Content-Type"), Accept: r.Header.Get("Accept"),
		Digest: r.Header.Get("X-Digest"), Body: body, Raw: raw,
	})
	answer := func(status int, v any) { deliverytest.WriteJSON(w, status, v) }
	fail := func(status int, msg string) { answer(status, map[string]string{"error_msg": msg}) }
	if next, ok := f.fail.Next(); ok {
		fail(next.Status, next.Msg)
		return
	}
	if r.Header.Get("X-API-KEY") != f.key {
		fail(http.StatusUnauthorized, "failed to check token")
		return
	}
	if f.standalone || r.URL.Path == "/apisix/admin/configs" {
		f.serveStandalone(w, r, raw, answer, fail)
		return
	}
	if r.Method != http.MethodPut {
		fail(http.StatusMethodNotAllowed, "not supported by the fake")
		return
	}
	if body == nil {
		fail(http.StatusBadRequest, "invalid request body")
		return
	}
	var store map[string]map[string]any
	var id, kind string
	switch {
	case strings.HasPrefix(r.URL.Path, "/apisix/admin/ssls/"):
		id, kind, store = strings.TrimPrefix(r.URL.Path, "/apisix/admin/ssls/"), "ssls", f.ssls
		if msg := checkSSL(body); msg != "" {
			fail(http.StatusBadRequest, msg)
			return
		}
	case strings.HasPrefix(r.URL.Path, "/apisix/admin/secrets/vault/"):
		id, kind, store = strings.TrimPrefix(r.URL.Path, "/apisix/admin/secrets/vault/"), "secrets", f.secrets
		if msg := checkVaultSecret(body); msg != "" {
			fail(http.StatusBadRequest, msg)
			return
		}
		id = "vault/" + id
	default:
		fail(http.StatusNotFound, "404 Route Not Found")
		return
	}
	if !fakeIDPattern.MatchString(strings.TrimPrefix(id, "vault/")) {
		fail(http.StatusBadRequest, "invalid configuration: property \"id\" validation failed")
		return
	}
	status := http.StatusCreated
	if _, ok := store[id]; ok {
		status = http.StatusOK
	}
	store[id] = body
	answer(status, map[string]any{"key": "/apisix/" + kind + "/" + id, "value": body})
}

// checkSSL applies APISIX's ssl schema to the fields the sink sends.
func checkSSL(b map[string]any) string {
	for k := range b {
		switch k {
		case "cert", "key", "snis", "type":
		default:
			return fmt.Sprintf("invalid configuration: additional properties forbidden, found %s", k)
		}
	}
	for _, k := range []string{"cert", "key"} {
		v, ok := b[k].(string)
		if !ok {
			return fmt.Sprintf("invalid configuration: property %q is required", k)
		}
		if !strings.HasPrefix(v, "$secret://") && len(v) < 128 {
			return fmt.Sprintf("invalid configuration: property %q validation failed: string too short, expected at least 128, got %d", k, len(v))
		}
	}
	snis, ok := b["snis"].([]any)
	if !ok || len(snis) == 0 {
		return "invalid configuration: property \"snis\" validation failed: expect array to have at least 1 items"
	}
	for _, s := range snis {
		if str, ok := s.(string); !ok || !fakeSNIPattern.MatchString(str) {
			return fmt.Sprintf("invalid configuration: property \"snis\" validation failed: failed to match pattern with %v", s)
		}
	}
	if t, ok := b["type"]; ok && t != "server" && t != "client" {
		return "invalid configuration: property \"type\" validation failed: matches none of the enum values"
	}
	return ""
}

// checkVaultSecret applies apisix/secret/vault.lua's schema.
func checkVaultSecret(b map[string]any) string {
	for _, k := range []string{"uri", "prefix", "token"} {
		if _, ok := b[k].(string); !ok {
			return fmt.Sprintf("invalid configuration: property %q is required", k)
		}
	}
	if !regexp.MustCompile(`^[^/]+://([\da-zA-Z.-]+|\[[\da-fA-F:]+\])(:\d+)?`).MatchString(b["uri"].(string)) {
		return "invalid configuration: property \"uri\" validation failed"
	}
	return ""
}

// resolve fetches a $secret://vault/<id>/<path>/<field> reference the way
// APISIX's Vault secret manager does: split at the last "/", GET
// <uri>/v1/<prefix>/<path> with X-Vault-Token, return .data[<field>].
func (f *fakeAPISIX) resolve(t *testing.T, ref string) (string, error) {
	t.Helper()
	rest, ok := strings.CutPrefix(ref, "$secret://vault/")
	if !ok {
		return "", fmt.Errorf("not a vault secret reference")
	}
	confID, key, ok := strings.Cut(rest, "/")
	if !ok {
		return "", fmt.Errorf("no secret conf id")
	}
	i := strings.LastIndexByte(key, '/')
	if i <= 0 || i == len(key)-1 {
		return "", fmt.Errorf("error key format")
	}
	main, sub := key[:i], key[i+1:]
	f.mu.Lock()
	conf, ok := f.secrets["vault/"+confID]
	f.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("no secret conf")
	}
	req, err := http.NewRequest(http.MethodGet, conf["uri"].(string)+"/v1/"+conf["prefix"].(string)+"/"+main, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Vault-Token", conf["token"].(string))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("vault answered %d", resp.StatusCode)
	}
	var out struct {
		Data map[string]any `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	v, _ := out.Data[sub].(string)
	return v, nil
}

func (f *fakeAPISIX) setKey(k string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key = k
}

func (f *fakeAPISIX) failNext(fs ...deliverytest.Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail.Add(fs...)
}

// failAfter lets n requests through, then fails the next ones with fs.
func (f *fakeAPISIX) failAfter(n int, fs ...deliverytest.Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail.AddAfter(n, fs...)
}

func (f *fakeAPISIX) reqs() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func (f *fakeAPISIX) ssl(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ssls[id]
}

func (f *fakeAPISIX) secret(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.secrets["vault/"+id]
}

// serveStandalone is /apisix/admin/configs of an APISIX in API-driven
// standalone mode. Called with mu held.
func (f *fakeAPISIX) serveStandalone(w http.ResponseWriter, r *http.Request, raw []byte, answer func(int, any), fail func(int, string)) {
	if !f.standalone || r.URL.Path != "/apisix/admin/configs" {
		fail(http.StatusNotFound, "404 Route Not Found")
		return
	}
	switch r.Method {
	case http.MethodGet:
		if f.garbage != nil {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(f.garbage)
			f.garbage = nil
			return
		}
		out := f.conf
		if out == nil {
			out = map[string]any{}
			for _, k := range standaloneKinds {
				out[k+"_conf_version"] = 0
			}
		} else {
			w.Header().Set("X-Digest", out["X-Digest"].(string))
			w.Header().Set("X-Last-Modified", fmt.Sprint(out["X-Last-Modified"]))
		}
		answer(http.StatusOK, out)
	case http.MethodPut:
		if hook := f.beforePut; hook != nil {
			f.beforePut = nil
			hook(f)
		}
		digest := r.Header.Get("X-Digest")
		if digest == "" {
			fail(http.StatusBadRequest, "missing digest header")
			return
		}
		if len(raw) == 0 {
			fail(http.StatusBadRequest, "invalid request body: empty request body")
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
			fail(http.StatusBadRequest, "the fake only takes JSON")
			return
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil || body == nil {
			fail(http.StatusBadRequest, "invalid request body: Expected object")
			return
		}
		if f.conf != nil && f.conf["X-Digest"] == digest {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next := map[string]any{}
		for _, k := range standaloneKinds {
			vk := k + "_conf_version"
			var stored float64
			if f.conf != nil {
				stored, _ = f.conf[vk].(float64)
			}
			version := stored + 1
			if v, ok := body[vk]; ok {
				n, ok := v.(float64)
				if !ok {
					fail(http.StatusBadRequest, vk+" must be a number")
					return
				}
				if n < stored {
					fail(http.StatusBadRequest, fmt.Sprintf("%s must be greater than or equal to (%v)", vk, stored))
					return
				}
				version = n
			}
			next[vk] = version
			if version == stored {
				if f.conf != nil && f.conf[k] != nil {
					next[k] = f.conf[k]
				}
				continue
			}
			items, _ := body[k].([]any)
			if len(items) == 0 {
				continue
			}
			ids := map[string]bool{}
			for i, it := range items {
				item, ok := it.(map[string]any)
				if !ok {
					fail(http.StatusBadRequest, fmt.Sprintf("invalid %s at index %d, err: not an object", k, i))
					return
				}
				if k == "ssls" {
					if msg := checkStandaloneSSL(item); msg != "" {
						fail(http.StatusBadRequest, fmt.Sprintf("invalid ssls at index %d, err: %s", i, msg))
						return
					}
				}
				id := fmt.Sprint(item["id"])
				if ids[id] {
					fail(http.StatusBadRequest, fmt.Sprintf("found duplicate id %s in %s", id, k))
					return
				}
				ids[id] = true
			}
			next[k] = items
		}
		next["X-Digest"] = digest
		next["X-Last-Modified"] = float64(time.Now().Unix())
		// What a GET returns is JSON-decoded, as APISIX's shared dict is.
		f.conf = deliverytest.JSONCopy(next)
		w.Header().Set("X-Digest", digest)
		w.WriteHeader(http.StatusAccepted)
	default:
		fail(http.StatusMethodNotAllowed, "not supported by the fake")
	}
}

// checkStandaloneSSL is checkSSL for an item of the ssls array, which
// carries its id (and may carry modifiedIndex, which standalone mode adds
// to the schema).
func checkStandaloneSSL(item map[string]any) string {
	rest := map[string]any{}
	for k, v := range item {
		switch k {
		case "id":
			if s, ok := v.(string); ok && !fakeIDPattern.MatchString(s) {
				return "invalid configuration: property \"id\" validation failed"
			}
		case "modifiedIndex":
		default:
			rest[k] = v
		}
	}
	return checkSSL(rest)
}

// seed sets the standalone configuration as if a PUT had stored it.
func (f *fakeAPISIX) seed(conf map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	conf["X-Digest"] = "seeded"
	conf["X-Last-Modified"] = 1
	f.conf = deliverytest.JSONCopy(conf)
}

// restart empties the standalone configuration, as an APISIX restart does.
func (f *fakeAPISIX) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conf = nil
}

// config returns a copy of the standalone configuration.
func (f *fakeAPISIX) config() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return deliverytest.JSONCopy(f.conf)
}

// standaloneSSLByID finds an object of the ssls array of conf.
func standaloneSSLByID(conf map[string]any, id string) map[string]any {
	items, _ := conf["ssls"].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok && m["id"] == id {
			return m
		}
	}
	return nil
}
