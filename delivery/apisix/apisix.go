// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package apisix is a delivery sink that makes Apache APISIX serve the
// certificates whose keys are in Keyward custody, through APISIX's Admin API
// (one SSL object per Secret, upserted by id).
//
// Three modes, chosen with --apisix-mode:
//
//   - inline: the SSL object carries the PEM key, PUT one by one to
//     /apisix/admin/ssls/{id}. That endpoint is the Admin API of APISIX's
//     traditional and decoupled deployments, which keep every object in
//     etcd: APISIX then holds a copy of the key in its etcd (encrypted there
//     only if APISIX's data_encryption keyring is configured).
//   - standalone: the SSL object carries the PEM key, in an APISIX in
//     API-driven standalone mode, whose Admin API only replaces the whole
//     configuration (/apisix/admin/configs): the sink reads it, replaces or
//     adds its own SSL object, and writes it back (standalone.go). APISIX
//     keeps that configuration in memory only, so an APISIX restart loses
//     it and the agent must deliver again: it calls Resync every
//     --resync-period, and the next Deliver puts the object back when
//     APISIX no longer holds it (and sends nothing when it still does).
//   - secret-ref: the key never reaches APISIX's configuration store. The
//     sink mirrors each version to a KV v1 mount of Vault (the only KV
//     version APISIX's Vault secret manager reads) at
//     <mount>/<namespace>/<name>/v<version> (plus a key fingerprint when
//     known, see mirrorEntry), and the SSL object only holds
//     $secret://vault/<manager-id>/<namespace>/<name>/v<version>/{cert,key}.
//     APISIX caches what it fetched (LRU, 300 s by default) keyed by that
//     reference; since every version has a new reference, a rotation is
//     never hidden by the cache. The sink also owns APISIX's
//     secrets/vault/<manager-id> object and the read-only Vault token in it,
//     which it replaces at half of its TTL (Deliver and Run).
//
// Real APISIX cannot run where these tests run (no Docker, and APISIX is not
// in Debian's packages): the tests check every request against APISIX's
// documented Admin API with an httptest fake, and the Vault side (mirror,
// tokens) against a real Vault dev server.
package apisix

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	vaultapi "github.com/hashicorp/vault/api"
	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/internal/gateway"
)

// Deps are the sink's connections.
type Deps struct {
	// Vault is a client whose token may write and delete under the mirror
	// mount and create (and self-revoke) APISIX's token. Required in
	// secret-ref mode, unused in inline mode. The sink never changes its token.
	Vault *vaultapi.Client
	// HTTPClient calls APISIX; default: a new client without a global
	// timeout (every call is bounded by Options.Timeout).
	HTTPClient *http.Client
	// Clock decides when APISIX's token is due; default: the real clock.
	Clock clock.WithTicker
}

// Sink delivers bundles to APISIX. It implements delivery.Sink; Deliver
// and Run may be called concurrently (they take turns).
type Sink struct {
	o     Options
	http  *http.Client
	vault *vaultapi.Client
	clock clock.WithTicker

	mu sync.Mutex
	// adminKey is the current X-API-KEY.
	adminKey string
	// delivered maps an SSL id to what was last delivered there.
	delivered map[string]gateway.Revision
	// secret-ref state, see mirror.go.
	token    *vaultToken
	retiring []retiringToken
	// cleanup maps a Secret's mirror dir to the entry now served, for
	// older entries not yet deleted.
	cleanup map[string]string
	// managerStale forces a PUT of the secret manager object.
	managerStale bool
}

var _ delivery.Sink = (*Sink)(nil)

// New checks o and returns a sink. It reads the Admin API key file once.
func New(o Options, deps Deps) (*Sink, error) {
	o.complete()
	if err := o.validate(deps.Vault != nil); err != nil {
		return nil, fmt.Errorf("apisix sink: %w", err)
	}
	s := &Sink{
		o:         o,
		http:      deps.HTTPClient,
		vault:     deps.Vault,
		clock:     deps.Clock,
		delivered: map[string]gateway.Revision{},
		cleanup:   map[string]string{},
	}
	if s.http == nil {
		s.http = &http.Client{}
	}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	var err error
	if s.adminKey, err = gateway.ReadSecretFile(o.AdminKeyFile, "admin key"); err != nil {
		return nil, fmt.Errorf("apisix sink: %w", err)
	}
	return s, nil
}

// Name implements delivery.Sink.
func (s *Sink) Name() string { return "apisix" }

// Resync makes the next Deliver of every Secret send its PUT even if this
// sink already delivered that version (in standalone mode: read APISIX's
// configuration and write it back if APISIX no longer holds the object;
// in secret-ref mode, also PUT the secret manager object again). Call it
// when APISIX may have lost its configuration: after a restart in
// standalone mode (the agent does so every --resync-period), after its etcd
// was restored otherwise.
func (s *Sink) Resync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered = map[string]gateway.Revision{}
	s.managerStale = true
}

// SSLID is the id of the SSL object that serves namespace/name: prefix +
// namespace + "_" + name ("_" never occurs in Kubernetes names, so the id
// is unique), cut and completed with 16 hex digits of a SHA-256 of
// namespace/name when longer than APISIX's 64 characters.
func SSLID(prefix, namespace, name string) string {
	base := sanitize(namespace) + "_" + sanitize(name)
	if len(prefix)+len(base) <= maxIDLength {
		return prefix + base
	}
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	suffix := "-" + hex.EncodeToString(sum[:])[:16]
	return prefix + base[:maxIDLength-len(prefix)-len(suffix)] + suffix
}

// sanitize maps characters APISIX ids do not allow to "-". Kubernetes
// names never contain any, so it is only a guard.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}

// sslObject is the body of PUT /apisix/admin/ssls/{id}.
type sslObject struct {
	Cert string   `json:"cert"`
	Key  string   `json:"key"`
	SNIs []string `json:"snis"`
	Type string   `json:"type"`
}

// Deliver implements delivery.Sink: it PUTs the SSL object for b.ID()
// (in standalone mode, as part of the whole configuration), unless this
// sink already delivered this revision there (see Resync). In
// secret-ref mode it first writes the mirror and, when due, replaces
// APISIX's Vault token; afterwards it deletes mirror versions older than
// the previous one.
func (s *Sink) Deliver(ctx context.Context, b *delivery.Bundle) error {
	if len(b.DNSNames) == 0 {
		return fmt.Errorf("delivering %s to apisix: the certificate has no DNS names, and APISIX picks certificates by SNI: %w", b, delivery.ErrPermanent)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := SSLID(s.o.SSLIDPrefix, b.Namespace, b.Name)
	if s.o.Mode == ModeSecretRef {
		if err := s.maintainLocked(ctx); err != nil {
			if !s.tokenUsable() {
				return fmt.Errorf("delivering %s to apisix: %w", b, err)
			}
			logf.FromContext(ctx).Error(err, "maintaining APISIX's Vault token; the current one is still valid, delivering", "secret", b.ID())
		}
	}
	if r, ok := s.delivered[id]; ok && r == gateway.RevisionOf(b) {
		return nil
	}
	obj := sslObject{Cert: string(b.Certificate), Key: string(b.Key), SNIs: b.DNSNames, Type: "server"}
	if s.o.Mode == ModeSecretRef {
		if err := s.writeMirror(ctx, b); err != nil {
			return fmt.Errorf("delivering %s to apisix: %w", b, err)
		}
		ref := s.secretRef(b)
		obj.Cert, obj.Key = ref+"/cert", ref+"/key"
	}
	var err error
	if s.o.Mode == ModeStandalone {
		err = s.deliverStandalone(ctx, id, obj, b.Key)
	} else {
		err = s.put(ctx, "/apisix/admin/ssls/"+id, obj, b.Key)
	}
	if err != nil {
		return fmt.Errorf("delivering %s to apisix: %w", b, err)
	}
	s.delivered[id] = gateway.RevisionOf(b)
	if s.o.Mode == ModeSecretRef {
		s.cleanup[mirrorDir(b)] = mirrorEntry(b)
		s.cleanMirrorLocked(ctx)
	}
	return nil
}

// put sends one JSON PUT to the Admin API and classifies the answer.
// secret is material that must never appear in an error (the key PEM),
// for redaction.
func (s *Sink) put(ctx context.Context, path string, body any, secret ...[]byte) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding PUT %s: %w", path, err)
	}
	a, err := s.call(ctx, http.MethodPut, path, payload, nil, secret)
	if err != nil {
		return err
	}
	return classify(http.MethodPut, path, a.status, a.msg)
}

// answer is what the Admin API answered: the status, the body of a 2xx
// answer (which may hold key material: never log it), and APISIX's
// error_msg (redacted) otherwise.
type answer struct {
	status int
	body   []byte
	msg    string
}

// call sends one request. After a 401 or 403 it reads the key file again
// and, if the key changed, retries once. err is set only when no answer came.
func (s *Sink) call(ctx context.Context, method, path string, payload []byte, header http.Header, secret [][]byte) (answer, error) {
	a, err := s.do(ctx, method, path, payload, header, secret)
	if err != nil {
		return a, err
	}
	if a.status == http.StatusUnauthorized || a.status == http.StatusForbidden {
		key, rerr := gateway.ReadSecretFile(s.o.AdminKeyFile, "admin key")
		if rerr != nil {
			return a, fmt.Errorf("%s %s: APISIX answered %d and re-reading the admin key failed: %w", method, path, a.status, rerr)
		}
		if key != s.adminKey {
			s.adminKey = key
			return s.do(ctx, method, path, payload, header, secret)
		}
	}
	return a, nil
}

// maxConfigSize bounds the body of a 2xx answer the sink reads: in
// standalone mode, APISIX's whole configuration.
const maxConfigSize = 64 << 20

// do sends the request, bounded by Options.Timeout.
func (s *Sink) do(ctx context.Context, method, path string, payload []byte, header http.Header, secret [][]byte) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.o.AdminURL+path, body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-KEY", s.adminKey)
	resp, err := s.http.Do(req)
	if err != nil {
		// Transient. *url.Error names the URL, never the body or headers.
		return answer{}, fmt.Errorf("%s %s: no answer from APISIX: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigSize+1))
		if err != nil {
			return answer{}, fmt.Errorf("%s %s: reading APISIX's answer: %w", method, path, err)
		}
		if len(raw) > maxConfigSize {
			return answer{}, fmt.Errorf("%s %s: APISIX's answer is larger than %d bytes: %w", method, path, maxConfigSize, delivery.ErrPermanent)
		}
		return answer{status: resp.StatusCode, body: raw}, nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		ErrorMsg string `json:"error_msg"`
		Message  string `json:"message"`
	}
	_ = json.Unmarshal(raw, &e)
	return answer{status: resp.StatusCode, msg: gateway.Redact(gateway.Or(e.ErrorMsg, e.Message), append(secret, []byte(s.adminKey))...)}, nil
}

// classify turns an Admin API answer into nil, a permanent error (4xx:
// APISIX rejected the request, sending it again cannot help) or a
// transient one (5xx and anything else).
func classify(method, path string, status int, msg string) error {
	if status >= 200 && status < 300 {
		return nil
	}
	detail := fmt.Sprintf("%s %s: APISIX answered %d %s", method, path, status, http.StatusText(status))
	if msg != "" {
		detail += ": " + msg
	}
	switch {
	case status == http.StatusNotFound && strings.HasPrefix(path, "/apisix/admin/secrets/"):
		return fmt.Errorf("%s (this APISIX has no secrets Admin API: secret-ref mode needs APISIX 3.x): %w", detail, delivery.ErrPermanent)
	case status == http.StatusNotFound && path == configsPath:
		return fmt.Errorf("%s (is --apisix-admin-url the Admin API of an APISIX in API-driven standalone mode? With etcd, use --apisix-mode inline or secret-ref): %w", detail, delivery.ErrPermanent)
	case status == http.StatusNotFound:
		return fmt.Errorf("%s (is --apisix-admin-url the Admin API of an APISIX that keeps its configuration in etcd? For API-driven standalone mode, use --apisix-mode standalone): %w", detail, delivery.ErrPermanent)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("%s (the key in --apisix-admin-key-file was refused, also after reading the file again): %w", detail, delivery.ErrPermanent)
	case status == http.StatusBadRequest && isConfVersionConflict(msg):
		// Not permanent: another writer changed the configuration between
		// the sink's GET and PUT; the retry reads it again.
		return fmt.Errorf("%s (another writer changed APISIX's configuration between the sink's read and write; will retry)", detail)
	case status >= 400 && status < 500:
		return fmt.Errorf("%s: %w", detail, delivery.ErrPermanent)
	}
	return errors.New(detail)
}
