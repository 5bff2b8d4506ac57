// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

var nameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

type attributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	Created         int64  `json:"created,omitempty"`
	Updated         int64  `json:"updated,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	RecoverableDays int32  `json:"recoverableDays,omitempty"`
}

type bundle struct {
	Value       *string           `json:"value,omitempty"`
	ID          string            `json:"id"`
	ContentType string            `json:"contentType,omitempty"`
	Attributes  attributes        `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
	RecoveryID  string            `json:"recoveryId,omitempty"`
	DeletedDate int64             `json:"deletedDate,omitempty"`
}

type setBody struct {
	Value       *string           `json:"value"`
	ContentType string            `json:"contentType"`
	Attributes  *attributes       `json:"attributes"`
	Tags        map[string]string `json:"tags"`
}

type route struct {
	kind, name, version string
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func parseRoute(p string) (route, bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "secrets":
		return route{kind: "list"}, true
	case len(parts) == 2 && parts[0] == "secrets":
		return route{kind: "secret", name: parts[1]}, true
	case len(parts) == 3 && parts[0] == "secrets" && parts[2] == "versions":
		return route{kind: "versions", name: parts[1]}, true
	case len(parts) == 3 && parts[0] == "secrets":
		return route{kind: "secret", name: parts[1], version: parts[2]}, true
	case len(parts) == 2 && parts[0] == "deletedsecrets":
		return route{kind: "deleted", name: parts[1]}, true
	case len(parts) == 3 && parts[0] == "deletedsecrets" && parts[2] == "recover":
		return route{kind: "recover", name: parts[1]}, true
	}
	return route{}, false
}

// action is the data action a request needs.
func action(method string, rt route) string {
	switch {
	case rt.kind == "secret" && method == http.MethodPut:
		return ActSet
	case rt.kind == "secret" && method == http.MethodGet:
		return ActGet
	case rt.kind == "secret" && method == http.MethodPatch:
		return ActUpdate
	case rt.kind == "secret" && method == http.MethodDelete:
		return ActDelete
	case rt.kind == "deleted" && method == http.MethodDelete:
		return ActPurge
	case rt.kind == "recover":
		return ActRecover
	}
	return ActReadMetadata
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if !strings.EqualFold(host, s.vaultHost) {
		writeErr(w, http.StatusNotFound, "NotFound", "unknown vault host "+host)
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeErr(w, http.StatusBadRequest, "BadParameter", "The api-version query parameter is required.")
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	id, known := s.identities[token]
	s.mu.Unlock()
	if !ok || !known {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://login.microsoftonline.com/%s", resource="https://vault.azure.net"`, s.tenant))
		writeErr(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		writeErr(w, http.StatusNotFound, "NotFound", "no such operation "+r.Method+" "+r.URL.Path)
		return
	}
	if s.admit(w, r, rt, id) {
		s.dispatch(w, r, rt)
	}
}

// admit counts the request, runs the hook, applies throttling and the
// identity's permissions; false means it answered.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, rt route, id Identity) bool {
	s.mu.Lock()
	s.requests[r.Method+" "+rt.kind]++
	hook := s.onRequest
	s.mu.Unlock()
	if hook != nil {
		hook(r)
	}
	s.mu.Lock()
	throttled := s.throttle > 0
	if throttled {
		s.throttle--
		if s.retryAfter != "" {
			w.Header().Set("Retry-After", s.retryAfter)
		}
	}
	s.mu.Unlock()
	if throttled {
		writeErr(w, http.StatusTooManyRequests, "Throttled", "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached")
		return false
	}
	act := action(r.Method, rt)
	// Listing is an action on the vault: a role assigned on single
	// secrets does not cover it.
	inScope := len(id.Secrets) == 0 || (rt.kind != "list" && slices.ContainsFunc(id.Secrets, func(n string) bool { return strings.EqualFold(n, rt.name) }))
	if !slices.Contains(id.Actions, act) || !inScope {
		writeErr(w, http.StatusForbidden, "Forbidden", fmt.Sprintf(
			"Caller is not authorized to perform action on resource.\r\nAction: 'Microsoft.KeyVault/vaults/secrets/%s'\r\nResource: '%s'", act, rt.name))
		return false
	}
	if rt.kind != "list" && !nameRE.MatchString(rt.name) {
		writeErr(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name: "+rt.name)
		return false
	}
	return true
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(rt.name)
	switch {
	case rt.kind == "secret" && r.Method == http.MethodPut:
		s.set(w, r, key, rt.name)
	case rt.kind == "secret" && r.Method == http.MethodGet:
		s.get(w, key, rt.version)
	case rt.kind == "secret" && r.Method == http.MethodPatch:
		s.update(w, r, key, rt.version)
	case rt.kind == "secret" && r.Method == http.MethodDelete:
		s.del(w, key)
	case rt.kind == "versions" && r.Method == http.MethodGet:
		s.list(w, r, key)
	case rt.kind == "list" && r.Method == http.MethodGet:
		s.listSecrets(w, r)
	case rt.kind == "deleted" && r.Method == http.MethodDelete:
		s.purge(w, key)
	case rt.kind == "recover" && r.Method == http.MethodPost:
		s.recoverSecret(w, key)
	default:
		writeErr(w, http.StatusMethodNotAllowed, "BadParameter", "method not allowed")
	}
}

func (s *Server) notFound(w http.ResponseWriter, name string) {
	writeErr(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("A secret with (name/id) %s was not found in this key vault.", name))
}

func (s *Server) bundleOf(name string, v *version, withValue bool) bundle {
	en := v.enabled
	b := bundle{
		ID:          fmt.Sprintf("https://%s/secrets/%s/%s", s.vaultHost, name, v.id),
		ContentType: v.contentType, Tags: v.tags,
		Attributes: attributes{Enabled: &en, Created: v.created, Updated: v.updated, RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: 90},
	}
	if withValue {
		val := v.value
		b.Value = &val
	}
	return b
}

func checkTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("too many tags: %d, at most %d", len(tags), MaxTags)
	}
	for k, v := range tags {
		if len(v) > MaxTagValue || len(k) > 512 {
			return fmt.Errorf("tag %q is too long", k)
		}
	}
	return nil
}

func (s *Server) set(w http.ResponseWriter, r *http.Request, key, name string) {
	var body setBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Value == nil {
		writeErr(w, http.StatusBadRequest, "BadParameter", "Property value is required.")
		return
	}
	if len(*body.Value) > MaxValueBytes {
		writeErr(w, http.StatusBadRequest, "BadParameter", "Secret value is too long: the maximum is 25 KiB.")
		return
	}
	if err := checkTags(body.Tags); err != nil {
		writeErr(w, http.StatusBadRequest, "BadParameter", err.Error())
		return
	}
	if s.deleted[key] != nil {
		writeErr(w, http.StatusConflict, "Conflict", fmt.Sprintf("Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", name))
		return
	}
	sec := s.secrets[key]
	if sec == nil {
		sec = &secret{name: name}
		s.secrets[key] = sec
	}
	now := time.Now().Unix()
	v := &version{id: s.newVersionID(), value: *body.Value, contentType: body.ContentType, enabled: true, created: now, updated: now, tags: body.Tags}
	if body.Attributes != nil && body.Attributes.Enabled != nil {
		v.enabled = *body.Attributes.Enabled
	}
	sec.versions = append(sec.versions, v)
	writeJSON(w, http.StatusOK, s.bundleOf(sec.name, v, true))
}

func (s *Server) find(key, id string) (*secret, *version) {
	sec := s.secrets[key]
	if sec == nil || len(sec.versions) == 0 {
		return sec, nil
	}
	if id == "" {
		return sec, sec.versions[len(sec.versions)-1]
	}
	for _, v := range sec.versions {
		if v.id == id {
			return sec, v
		}
	}
	return sec, nil
}

func (s *Server) get(w http.ResponseWriter, key, id string) {
	sec, v := s.find(key, id)
	if v == nil {
		s.notFound(w, key)
		return
	}
	if !v.enabled {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]any{
			"code": "Forbidden", "message": "Operation get is not allowed on a disabled secret.",
			"innererror": map[string]any{"code": "SecretDisabled"},
		}})
		return
	}
	writeJSON(w, http.StatusOK, s.bundleOf(sec.name, v, true))
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, key, id string) {
	var body setBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeErr(w, http.StatusBadRequest, "BadParameter", "bad body")
		return
	}
	sec, v := s.find(key, id)
	if v == nil {
		s.notFound(w, key)
		return
	}
	if err := checkTags(body.Tags); err != nil {
		writeErr(w, http.StatusBadRequest, "BadParameter", err.Error())
		return
	}
	if body.Tags != nil {
		v.tags = body.Tags
	}
	if body.ContentType != "" {
		v.contentType = body.ContentType
	}
	if body.Attributes != nil && body.Attributes.Enabled != nil {
		v.enabled = *body.Attributes.Enabled
	}
	v.updated = time.Now().Unix()
	writeJSON(w, http.StatusOK, s.bundleOf(sec.name, v, false))
}
