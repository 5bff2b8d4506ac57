// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package kong is a delivery sink that makes Kong Gateway serve the
// certificates whose keys are in Keyward custody, through Kong's Admin API.
// Kong OSS resolves vault references only from environment variables (its
// "env" vault), so the certificate and key go to Kong inline; where Kong
// then keeps the key depends on how it stores its configuration:
//
//   - DB-less (--kong-mode=dbless, recommended): Kong holds its whole
//     configuration in memory and in an LMDB file under its prefix
//     directory (so that a restart finds the last configuration). Put the
//     prefix on tmpfs (an emptyDir with medium Memory) and the key never
//     reaches a disk outside Vault; after a restart of Kong, the agent must
//     deliver again (Sink.Resync). The Admin API of a DB-less Kong only
//     replaces the configuration whole (POST /config), so the sink reads it
//     (GET /config), replaces or adds its own certificate and SNIs, leaves
//     every other entity as it was, and posts it back with check_hash=1 (a
//     no-op for Kong when nothing changed). Another writer of the
//     declarative configuration (decK, the Kong Ingress Controller) would
//     drop the sink's certificates on its next sync: this mode assumes the
//     agent's certificates survive such writers or that there are none.
//   - DB (--kong-mode=db): PUT /certificates/{id}, an upsert. Kong's
//     PostgreSQL database then stores the private key in clear, with its
//     backups and replicas: that defeats "the key is only in Vault". It is
//     here for clusters that cannot run Kong DB-less.
//
// Real Kong cannot run where these tests run (no Docker; Kong OSS is not
// packaged for Debian): the tests check every request against Kong's
// documented Admin API with an httptest fake.
package kong

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/internal/gateway"
)

// Deps are the sink's connections.
type Deps struct {
	// HTTPClient calls Kong; default: a new client without a global
	// timeout (every call is bounded by Options.Timeout).
	HTTPClient *http.Client
}

// Sink delivers bundles to Kong. It implements delivery.Sink.
type Sink struct {
	o    Options
	http *http.Client

	mu sync.Mutex
	// token is the current Kong-Admin-Token ("" without a token file).
	token string
	// delivered maps a certificate id to what was last delivered.
	delivered map[string]gateway.Revision
}

var _ delivery.Sink = (*Sink)(nil)

// New checks o and returns a sink. It reads the admin token file, if any.
func New(o Options, deps Deps) (*Sink, error) {
	o.complete()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("kong sink: %w", err)
	}
	s := &Sink{o: o, http: deps.HTTPClient, delivered: map[string]gateway.Revision{}}
	if s.http == nil {
		s.http = &http.Client{}
	}
	if o.AdminTokenFile != "" {
		var err error
		if s.token, err = gateway.ReadSecretFile(o.AdminTokenFile, "admin token"); err != nil {
			return nil, fmt.Errorf("kong sink: %w", err)
		}
	}
	return s, nil
}

// Name implements delivery.Sink.
func (s *Sink) Name() string { return "kong" }

// Resync makes the next Deliver of every Secret write to Kong even if this
// sink already delivered that version. Call it when Kong may have lost its
// configuration (a DB-less Kong restarted with an empty prefix).
func (s *Sink) Resync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered = map[string]gateway.Revision{}
}

// namespaceUUID is the UUID namespace of the ids the sink gives Kong
// entities (a random UUID, fixed forever: changing it would orphan every
// certificate written before).
var namespaceUUID = [16]byte{0x4a, 0x0e, 0x3c, 0x3d, 0x2b, 0x07, 0x44, 0xd9, 0xb9, 0x3b, 0x8e, 0x5d, 0x54, 0x5c, 0x0d, 0x1f}

// uuidV5 is RFC 9562's name-based UUID with SHA-1 (version 5).
func uuidV5(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// CertificateID is the id of the Kong certificate that serves
// namespace/name: a UUIDv5 of it, the same on every run and every agent.
func CertificateID(namespace, name string) string {
	return uuidV5(namespaceUUID, "certificate/"+namespace+"/"+name)
}

// sniID is the id of the SNI entity name of namespace/name's certificate
// (DB-less only; in DB mode Kong makes SNIs from the certificate's snis).
func sniID(namespace, name, sni string) string {
	return uuidV5(namespaceUUID, "sni/"+namespace+"/"+name+"/"+sni)
}

// Deliver implements delivery.Sink: it makes Kong serve b for b.DNSNames,
// unless this sink already delivered b.Version (see Resync).
func (s *Sink) Deliver(ctx context.Context, b *delivery.Bundle) error {
	if len(b.DNSNames) == 0 {
		return fmt.Errorf("delivering %s to kong: the certificate has no DNS names, and Kong picks certificates by SNI: %w", b, delivery.ErrPermanent)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := CertificateID(b.Namespace, b.Name)
	if r, ok := s.delivered[id]; ok && r == gateway.RevisionOf(b) {
		return nil
	}
	var err error
	if s.o.Mode == ModeDB {
		err = s.putCertificate(ctx, id, b)
	} else {
		err = s.replaceInConfig(ctx, id, b)
	}
	if err != nil {
		return fmt.Errorf("delivering %s to kong: %w", b, err)
	}
	s.delivered[id] = gateway.RevisionOf(b)
	return nil
}

// certificate is the body of PUT /certificates/{id}.
type certificate struct {
	Cert string   `json:"cert"`
	Key  string   `json:"key"`
	SNIs []string `json:"snis"`
	Tags []string `json:"tags"`
}

func (s *Sink) putCertificate(ctx context.Context, id string, b *delivery.Bundle) error {
	path := "/certificates/" + id
	body, err := json.Marshal(certificate{Cert: string(b.Certificate), Key: string(b.Key), SNIs: b.DNSNames, Tags: s.o.Tags})
	if err != nil {
		return fmt.Errorf("encoding PUT %s: %w", path, err)
	}
	status, _, msg, err := s.call(ctx, http.MethodPut, path, body, b.Key)
	if err != nil {
		return err
	}
	switch {
	case status == http.StatusMethodNotAllowed:
		return fmt.Errorf("PUT %s: Kong answered 405 (%s): it runs DB-less; use --kong-mode=dbless: %w", path, msg, delivery.ErrPermanent)
	case status == http.StatusConflict || (status == http.StatusBadRequest && isSNIConflict(msg)):
		return sniConflict(http.MethodPut, path, status, msg, b.DNSNames)
	}
	return classify(http.MethodPut, path, status, msg)
}

// isSNIConflict recognises Kong's answer when another certificate already
// has one of the SNIs (Kong keeps SNI names unique across certificates).
func isSNIConflict(msg string) bool {
	return strings.Contains(msg, "already associated with existing certificate") || // DB: PUT
		(strings.Contains(msg, "UNIQUE violation") && strings.Contains(msg, "name")) || // DB: race on insert
		strings.Contains(msg, "'snis' entity with name") // DB-less: declarative uniqueness check
}

func sniConflict(method, path string, status int, msg string, snis []string) error {
	return fmt.Errorf("%s %s: Kong answered %d: another Kong certificate already serves one of %v (%s); remove that SNI from it or from this Certificate: %w",
		method, path, status, snis, msg, delivery.ErrPermanent)
}

// replaceInConfig reads DB-less Kong's configuration, puts b's certificate
// and SNIs in it (mergeCertificate) and posts it back.
func (s *Sink) replaceInConfig(ctx context.Context, id string, b *delivery.Bundle) error {
	status, raw, msg, err := s.call(ctx, http.MethodGet, "/config", nil, b.Key)
	if err != nil {
		return err
	}
	if status == http.StatusBadRequest && strings.Contains(msg, "not use a database") {
		return fmt.Errorf("GET /config: Kong answered 400 (%s): it uses a database; use --kong-mode=db: %w", msg, delivery.ErrPermanent)
	}
	if err := classify(http.MethodGet, "/config", status, msg); err != nil {
		return err
	}
	var got struct {
		Config *string `json:"config"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || got.Config == nil {
		return fmt.Errorf("GET /config: Kong's answer has no \"config\" string (Kong before 3.0?): %w", delivery.ErrPermanent)
	}
	config, err := parseConfig(*got.Config)
	if err != nil {
		// The configuration holds other keys: never quote it.
		return fmt.Errorf("GET /config: parsing Kong's declarative configuration: %w", err)
	}
	mergeCertificate(config, b, id, s.o.Tags)
	merged, err := json.Marshal(config)
	if err != nil {
		return fmt.Errorf("encoding Kong's declarative configuration: %w", err)
	}
	body, err := json.Marshal(map[string]string{"config": string(merged)})
	if err != nil {
		return fmt.Errorf("encoding POST /config: %w", err)
	}
	const path = "/config?check_hash=1"
	status, _, msg, err = s.call(ctx, http.MethodPost, path, body, b.Key)
	if err != nil {
		return err
	}
	switch {
	case status == http.StatusNotModified: // same hash: Kong already has exactly this
		return nil
	case (status == http.StatusBadRequest || status == http.StatusConflict) && isSNIConflict(msg):
		return sniConflict(http.MethodPost, path, status, msg, b.DNSNames)
	case status == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("POST %s: Kong answered 413 (%s): raise Kong's mem_cache_size: %w", path, msg, delivery.ErrPermanent)
	}
	return classify(http.MethodPost, path, status, msg)
}

// parseConfig parses the YAML (or JSON) Kong's GET /config returns into
// generic JSON values, keeping numbers exact.
func parseConfig(text string) (map[string]any, error) {
	js, err := yaml.YAMLToJSON([]byte(text))
	if err != nil {
		return nil, errors.New("not valid YAML or JSON")
	}
	config := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("not valid YAML or JSON")
	}
	switch v := v.(type) {
	case nil:
	case map[string]any:
		config = v
	default:
		return nil, errors.New("not a mapping")
	}
	return config, nil
}

// mergeCertificate makes config hold b's certificate under id, with one
// top-level SNI entity per DNS name (the shape Kong's own export uses),
// replacing what config had for id and leaving every other entity as it was.
func mergeCertificate(config map[string]any, b *delivery.Bundle, id string, tags []string) {
	if _, ok := config["_format_version"]; !ok {
		config["_format_version"] = "3.0"
	}
	tagList := make([]any, len(tags))
	for i, t := range tags {
		tagList[i] = t
	}

	var certs []any
	for _, c := range asList(config["certificates"]) {
		if entityID(c) != id {
			certs = append(certs, c)
		}
	}
	config["certificates"] = append(certs, map[string]any{
		"id": id, "cert": string(b.Certificate), "key": string(b.Key), "tags": tagList,
	})

	var snis []any
	for _, sni := range asList(config["snis"]) {
		m, _ := sni.(map[string]any)
		if m != nil && (foreignID(m["certificate"]) == id || isOurSNI(m, b)) {
			continue
		}
		snis = append(snis, sni)
	}
	for _, name := range b.DNSNames {
		snis = append(snis, map[string]any{
			"id": sniID(b.Namespace, b.Name, name), "name": name, "certificate": id, "tags": tagList,
		})
	}
	config["snis"] = snis
}

// isOurSNI says whether an SNI entity has an id the sink gave it for b's
// Secret (left over from an earlier version with other DNS names).
func isOurSNI(m map[string]any, b *delivery.Bundle) bool {
	name, _ := m["name"].(string)
	return name != "" && m["id"] == sniID(b.Namespace, b.Name, name)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func entityID(v any) string {
	m, _ := v.(map[string]any)
	id, _ := m["id"].(string)
	return id
}

// foreignID reads a foreign key, which Kong's export writes as the id and
// hand-written configurations may write as {id: ...}.
func foreignID(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		id, _ := v["id"].(string)
		return id
	}
	return ""
}

// call sends one request, bounded by Options.Timeout, with the admin token
// if any; after a 401 or 403 it reads the token file again and, if the
// token changed, retries once. It returns the status, the body of a 2xx
// answer, and Kong's message for others (redacted). err is set only when
// no answer came.
func (s *Sink) call(ctx context.Context, method, path string, body []byte, secret []byte) (int, []byte, string, error) {
	status, raw, msg, err := s.do(ctx, method, path, body, secret)
	if err != nil {
		return 0, nil, "", err
	}
	if (status == http.StatusUnauthorized || status == http.StatusForbidden) && s.o.AdminTokenFile != "" {
		token, rerr := gateway.ReadSecretFile(s.o.AdminTokenFile, "admin token")
		if rerr != nil {
			return 0, nil, "", fmt.Errorf("%s %s: Kong answered %d and re-reading the admin token failed: %w", method, path, status, rerr)
		}
		if token != s.token {
			s.token = token
			return s.do(ctx, method, path, body, secret)
		}
	}
	return status, raw, msg, nil
}

func (s *Sink) do(ctx context.Context, method, path string, body []byte, secret []byte) (int, []byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.o.AdminURL+path, rd)
	if err != nil {
		return 0, nil, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if s.token != "" {
		req.Header.Set("Kong-Admin-Token", s.token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, "", fmt.Errorf("%s %s: no answer from Kong: %w", method, path, err)
	}
	defer resp.Body.Close()
	// GET /config returns every certificate and key Kong has: read it all,
	// keep it in memory only.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return 0, nil, "", fmt.Errorf("%s %s: reading Kong's answer: %w", method, path, err)
	}
	if resp.StatusCode < 300 {
		return resp.StatusCode, raw, "", nil
	}
	var e struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, nil, gateway.Redact(e.Message, secret, []byte(s.token)), nil
}

// classify turns an Admin API answer into nil, a permanent error (4xx: Kong
// rejected the request, sending it again cannot help) or a transient one
// (5xx and anything else).
func classify(method, path string, status int, msg string) error {
	if status >= 200 && status < 300 {
		return nil
	}
	detail := fmt.Sprintf("%s %s: Kong answered %d %s", method, path, status, http.StatusText(status))
	if msg != "" {
		detail += ": " + msg
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("%s (set or fix --kong-admin-token-file): %w", detail, delivery.ErrPermanent)
	case status >= 400 && status < 500:
		return fmt.Errorf("%s: %w", detail, delivery.ErrPermanent)
	}
	return errors.New(detail)
}
