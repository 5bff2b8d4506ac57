// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Real Kong cannot run on this machine (no Docker; Kong OSS is not packaged
// for Debian), so these tests run the sink against fakeKong, an httptest
// server that implements the part of Kong 3.x's documented Admin API the
// sink uses: PUT /certificates/{id} with a database (SNI names unique across
// certificates, 405 when DB-less), and GET /config (YAML in a "config"
// string, as Kong's export writes it) and POST /config?check_hash=1 (304
// when unchanged; 400 on uniqueness violations) when DB-less. The tests
// check the exact requests against that documented API.

package kong

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/keyward-io/keyward/delivery/internal/deliverytest"
)

type request struct {
	Method, Path, Query, Token, ContentType string
	Body                                    map[string]any
}

type fakeKong struct {
	srv    *httptest.Server
	dbless bool

	mu       sync.Mutex
	token    string // required Kong-Admin-Token; "" for none (Kong OSS)
	requests []request
	// certs is the DB-mode store, id → body.
	certs map[string]map[string]any
	// config is the DB-less declarative configuration; hash its digest.
	config map[string]any
	hash   string
	fail   deliverytest.Failures
	// postFail is answered, instead of handling, to the next POSTs.
	postFail deliverytest.Failures
	gate     deliverytest.Gate
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func newFakeKong(t *testing.T, dbless bool, config map[string]any) *fakeKong {
	t.Helper()
	f := &fakeKong{dbless: dbless, certs: map[string]map[string]any{}, config: config}
	if f.config == nil {
		f.config = map[string]any{"_format_version": "3.0", "_transform": false}
	}
	f.hash = digest(f.config)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func digest(v any) string {
	js, _ := json.Marshal(v) // map keys sorted: a canonical form
	sum := sha256.Sum256(js)
	return fmt.Sprintf("%x", sum)
}

func (f *fakeKong) serve(w http.ResponseWriter, r *http.Request) {
	if !f.gate.Wait(r) {
		return
	}
	_, body := deliverytest.ReadJSON(r)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Token: r.Header.Get("Kong-Admin-Token"),
		ContentType: r.Header.Get("Content-Type"), Body: body,
	})
	answer := func(status int, v any) { deliverytest.WriteJSON(w, status, v) }
	fail := func(status int, msg string) { answer(status, map[string]string{"message": msg}) }
	if next, ok := f.fail.Next(); ok {
		fail(next.Status, next.Msg)
		return
	}
	if r.Method == http.MethodPost {
		if next, ok := f.postFail.Next(); ok {
			fail(next.Status, next.Msg)
			return
		}
	}
	if f.token != "" && r.Header.Get("Kong-Admin-Token") != f.token {
		fail(http.StatusUnauthorized, "Invalid credentials. Token or User credentials required")
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/certificates/") && r.Method == http.MethodPut:
		if f.dbless {
			fail(http.StatusMethodNotAllowed, "Method not allowed")
			return
		}
		f.putCertificate(strings.TrimPrefix(r.URL.Path, "/certificates/"), body, answer, fail)
	case r.URL.Path == "/config" && r.Method == http.MethodGet:
		if !f.dbless {
			fail(http.StatusBadRequest, "this endpoint is only available when Kong is configured to not use a database")
			return
		}
		y, err := yaml.Marshal(f.config)
		if err != nil {
			fail(http.StatusInternalServerError, "An unexpected error occurred")
			return
		}
		answer(http.StatusOK, map[string]string{"config": string(y)})
	case r.URL.Path == "/config" && r.Method == http.MethodPost:
		if !f.dbless {
			fail(http.StatusBadRequest, "this endpoint is only available when Kong is configured to not use a database")
			return
		}
		f.postConfig(r, body, answer, fail)
	default:
		fail(http.StatusNotFound, "Not found")
	}
}

func (f *fakeKong) putCertificate(id string, body map[string]any, answer func(int, any), fail func(int, string)) {
	if !uuidPattern.MatchString(id) {
		fail(http.StatusBadRequest, "schema violation (id: expected a valid UUID)")
		return
	}
	for _, k := range []string{"cert", "key"} {
		if _, ok := body[k].(string); !ok {
			fail(http.StatusBadRequest, fmt.Sprintf("schema violation (%s: required field missing)", k))
			return
		}
	}
	for k := range body {
		switch k {
		case "cert", "key", "snis", "tags":
		default:
			fail(http.StatusBadRequest, fmt.Sprintf("schema violation (%s: unknown field)", k))
			return
		}
	}
	for _, s := range asList(body["snis"]) {
		for other, c := range f.certs {
			if other == id {
				continue
			}
			for _, o := range asList(c["snis"]) {
				if o == s {
					fail(http.StatusBadRequest, fmt.Sprintf("schema violation (snis: %s already associated with existing certificate '%s')", s, other))
					return
				}
			}
		}
	}
	f.certs[id] = body
	answer(http.StatusOK, map[string]any{"id": id, "snis": body["snis"], "tags": body["tags"]})
}

func (f *fakeKong) postConfig(r *http.Request, body map[string]any, answer func(int, any), fail func(int, string)) {
	text, ok := body["config"].(string)
	if !ok {
		fail(http.StatusBadRequest, "expected a declarative configuration")
		return
	}
	js, err := yaml.YAMLToJSON([]byte(text)) // Kong accepts JSON or YAML
	var config map[string]any
	if err == nil {
		err = json.Unmarshal(js, &config)
	}
	if err != nil || config == nil || config["_format_version"] == nil {
		fail(http.StatusBadRequest, "declarative config is invalid: {_format_version=\"required field missing\"}")
		return
	}
	certIDs := map[string]bool{}
	for _, c := range asList(config["certificates"]) {
		m, _ := c.(map[string]any)
		if _, ok := m["cert"].(string); !ok {
			fail(http.StatusBadRequest, "declarative config is invalid: {certificates={cert=\"required field missing\"}}")
			return
		}
		certIDs[entityID(m)] = true
	}
	names := map[string]bool{}
	for _, s := range asList(config["snis"]) {
		m, _ := s.(map[string]any)
		name, _ := m["name"].(string)
		if names[name] {
			fail(http.StatusBadRequest, fmt.Sprintf("declarative config is invalid: {snis={\"uniqueness violation: 'snis' entity with name set to '%s' already declared\"}}", name))
			return
		}
		names[name] = true
		if !certIDs[foreignID(m["certificate"])] {
			fail(http.StatusBadRequest, "declarative config is invalid: {snis={certificate=\"invalid reference\"}}")
			return
		}
	}
	h := digest(config)
	if r.URL.Query().Get("check_hash") == "1" && h == f.hash {
		answer(http.StatusNotModified, nil)
		return
	}
	f.config, f.hash = config, h
	answer(http.StatusCreated, map[string]any{})
}

func (f *fakeKong) reqs() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func (f *fakeKong) failNext(fs ...deliverytest.Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail.Add(fs...)
}

func (f *fakeKong) failPOST(fs ...deliverytest.Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.postFail.Add(fs...)
}

func (f *fakeKong) setToken(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = tok
}

func (f *fakeKong) currentConfig() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return deliverytest.JSONCopy(f.config)
}
