// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Real APISIX cannot run on this machine (no Docker; APISIX is not in
// Debian's packages), so these tests run the sink against fakeAPISIX, an
// httptest server that implements the part of APISIX's documented Admin API
// the sink uses, with APISIX's own validation rules for it
// (apisix/schema_def.lua: ids, ssl; apisix/secret/vault.lua: the secret
// manager schema and how $secret:// references are resolved). The tests
// check the exact requests against that documented API.

package apisix

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// request is one request the fake received.
type request struct {
	Method, Path, APIKey, ContentType string
	Body                              map[string]any
}

// fakeAPISIX keeps ssls and secrets like APISIX's Admin API does.
type fakeAPISIX struct {
	srv *httptest.Server

	mu       sync.Mutex
	key      string
	requests []request
	ssls     map[string]map[string]any
	secrets  map[string]map[string]any
	// fail, when set, answers the next requests (one per element) with
	// that status and error_msg instead of handling them.
	fail []failure
	// block, when set, holds every request until it is closed.
	block chan struct{}
}

type failure struct {
	status int
	msg    string
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
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, request{
		Method: r.Method, Path: r.URL.Path, APIKey: r.Header.Get("X-API-KEY"),
		ContentType: r.Header.Get("Content-Type"), Body: body,
	})
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(status int, msg string) { answer(status, map[string]string{"error_msg": msg}) }
	if len(f.fail) > 0 {
		next := f.fail[0]
		f.fail = f.fail[1:]
		fail(next.status, next.msg)
		return
	}
	if r.Header.Get("X-API-KEY") != f.key {
		fail(http.StatusUnauthorized, "failed to check token")
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

func (f *fakeAPISIX) failNext(fs ...failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = append(f.fail, fs...)
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
