// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// listSecrets serves GET /secrets: the live secrets sorted by name, each as
// a SecretItem of its newest version (no value), a page at a time; the
// $skiptoken is the last name returned, so secrets set or deleted between
// pages neither shift nor repeat the others.
func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := s.pageSize
	if m := q.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > 25 {
			writeErr(w, http.StatusBadRequest, "BadParameter", "maxresults must be between 1 and 25.")
			return
		}
		size = min(size, n)
	}
	after := ""
	if tok := q.Get("$skiptoken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) == 0 {
			writeErr(w, http.StatusBadRequest, "BadParameter", "The $skiptoken is invalid.")
			return
		}
		after = string(raw)
	}
	keys := make([]string, 0, len(s.secrets))
	for k, sec := range s.secrets {
		if k > after && len(sec.versions) > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	items := []bundle{}
	for _, k := range keys[:min(size, len(keys))] {
		sec := s.secrets[k]
		b := s.bundleOf(sec.name, sec.versions[len(sec.versions)-1], false)
		b.ID = fmt.Sprintf("https://%s/secrets/%s", s.vaultHost, sec.name)
		items = append(items, b)
	}
	resp := map[string]any{"value": items, "nextLink": nil}
	if len(keys) > size {
		resp["nextLink"] = fmt.Sprintf("https://%s/secrets?api-version=%s&$skiptoken=%s&maxresults=%d",
			s.vaultHost, url.QueryEscape(q.Get("api-version")), base64.RawURLEncoding.EncodeToString([]byte(keys[size-1])), size)
	}
	writeJSON(w, http.StatusOK, resp)
}

// list serves GET /secrets/{name}/versions: oldest first (the service
// promises no order), maxresults (at most 25) per page, nextLink with
// $skiptoken.
func (s *Server) list(w http.ResponseWriter, r *http.Request, key string) {
	sec := s.secrets[key]
	if sec == nil {
		s.notFound(w, key)
		return
	}
	size := 25
	if m, err := strconv.Atoi(r.URL.Query().Get("maxresults")); err == nil && m > 0 && m < 25 {
		size = m
	}
	off, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	var items []bundle
	for i := off; i < len(sec.versions) && i < off+size; i++ {
		items = append(items, s.bundleOf(sec.name, sec.versions[i], false))
	}
	resp := map[string]any{"value": items, "nextLink": nil}
	if off+size < len(sec.versions) {
		resp["nextLink"] = fmt.Sprintf("https://%s/secrets/%s/versions?api-version=%s&$skiptoken=%d&maxresults=%d",
			s.vaultHost, sec.name, r.URL.Query().Get("api-version"), off+size, size)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) del(w http.ResponseWriter, key string) {
	sec := s.secrets[key]
	if sec == nil {
		s.notFound(w, key)
		return
	}
	delete(s.secrets, key)
	s.deleted[key] = sec
	b := bundle{ID: fmt.Sprintf("https://%s/secrets/%s", s.vaultHost, sec.name), RecoveryID: fmt.Sprintf("https://%s/deletedsecrets/%s", s.vaultHost, sec.name), DeletedDate: time.Now().Unix()}
	if n := len(sec.versions); n > 0 {
		b = s.bundleOf(sec.name, sec.versions[n-1], false)
		b.RecoveryID, b.DeletedDate = fmt.Sprintf("https://%s/deletedsecrets/%s", s.vaultHost, sec.name), time.Now().Unix()
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) purge(w http.ResponseWriter, key string) {
	if s.deleted[key] == nil {
		writeErr(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("Deleted Secret not found: %s", key))
		return
	}
	if s.purgeProtection {
		writeErr(w, http.StatusForbidden, "Forbidden", "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.")
		return
	}
	delete(s.deleted, key)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) recoverSecret(w http.ResponseWriter, key string) {
	sec := s.deleted[key]
	if sec == nil {
		writeErr(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("Deleted Secret not found: %s", key))
		return
	}
	delete(s.deleted, key)
	s.secrets[key] = sec
	writeJSON(w, http.StatusOK, s.bundleOf(sec.name, sec.versions[len(sec.versions)-1], false))
}
