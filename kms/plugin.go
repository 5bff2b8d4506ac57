// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package kms is a Kubernetes KMS v2 envelope service on Vault's Transit
// engine: the kube-apiserver's data-encryption-key seeds are wrapped and
// unwrapped with one Transit key, which never leaves Vault. It implements
// k8s.io/kms/pkg/service.Service; `keyward kms` serves it on a unix socket.
//
// The apiserver calls Encrypt once per DEK seed (at start and when Status
// reports a new key ID), not once per write, and Decrypt once per seed it
// has not cached; Status every minute while healthy.
package kms

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"
	"k8s.io/kms/pkg/service"

	"github.com/keyward-io/keyward/internal/vault"
)

// APIVersion is the KMS API version the plugin speaks.
const APIVersion = "v2"

// Healthy is the Status healthz value the apiserver expects when all is well.
const Healthy = "ok"

// DefaultMount is the Transit engine's default mount.
const DefaultMount = "transit"

// DefaultTimeout bounds each Transit call. The apiserver's own KMS timeout
// (EncryptionConfiguration `timeout`) defaults to 3 s; one call must fit.
const DefaultTimeout = 2 * time.Second

// statusProbe is what Status encrypts and decrypts to prove both work.
var statusProbe = []byte("keyward-kms-status-probe")

// Vault is what the plugin needs of its Vault session: the authenticated
// API client (an error while no login has succeeded yet, saying why) and a
// re-login after a 403.
type Vault interface {
	API() (*vaultapi.Client, error)
	Relogin(ctx context.Context) error
}

// Options configure New.
type Options struct {
	// Mount is the Transit mount (default DefaultMount).
	Mount string
	// Key is the Transit key's name. Required.
	Key string
	// Timeout bounds each Transit call (default DefaultTimeout).
	Timeout time.Duration
	// Logger receives errors and key rotations; never data or tokens.
	Logger logr.Logger
	// Metrics records calls; nil records nothing.
	Metrics *Metrics
}

// Plugin is the envelope service. It is safe for concurrent use.
type Plugin struct {
	vault   Vault
	mount   string
	key     string
	timeout time.Duration
	log     logr.Logger
	metrics *Metrics

	mu    sync.Mutex
	keyID string // the last key ID Transit encrypted with
}

var _ service.Service = (*Plugin)(nil)

// New returns a Plugin using the Transit key opts.Key through v.
func New(v Vault, opts Options) (*Plugin, error) {
	if opts.Key == "" || strings.Contains(opts.Key, "/") {
		return nil, fmt.Errorf("kms: transit key name %q is empty or not a single path segment", opts.Key)
	}
	if opts.Mount == "" {
		opts.Mount = DefaultMount
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &Plugin{vault: v, mount: vault.NormalizeMountPath(opts.Mount, DefaultMount), key: opts.Key,
		timeout: opts.Timeout, log: opts.Logger, metrics: opts.Metrics}, nil
}

// KeyID names a Transit key version: "<mount>/<key>:v<N>". It changes
// when the key is rotated, which makes the apiserver start a new DEK seed.
func (p *Plugin) KeyID(version int) string {
	return p.mount + "/" + p.key + ":v" + strconv.Itoa(version)
}

// Encrypt wraps a DEK seed with the Transit key's latest version.
func (p *Plugin) Encrypt(ctx context.Context, uid string, data []byte) (*service.EncryptResponse, error) {
	start := time.Now()
	ct, err := p.encrypt(ctx, data)
	p.metrics.observe("encrypt", start, err)
	if err != nil {
		p.log.Error(err, "encrypt failed", "uid", uid, "key", p.key)
		return nil, err
	}
	version, err := ciphertextVersion(ct)
	if err != nil {
		return nil, err
	}
	return &service.EncryptResponse{Ciphertext: []byte(ct), KeyID: p.noteKeyID(version)}, nil
}

// Decrypt unwraps a DEK seed. Transit picks the key version from the
// ciphertext itself ("vault:vN:..."), so seeds wrapped before a rotation
// still decrypt (unless min_decryption_version was raised past them).
func (p *Plugin) Decrypt(ctx context.Context, uid string, req *service.DecryptRequest) ([]byte, error) {
	start := time.Now()
	pt, err := p.decrypt(ctx, string(req.Ciphertext))
	p.metrics.observe("decrypt", start, err)
	if err != nil {
		p.log.Error(err, "decrypt failed", "uid", uid, "key", p.key, "keyID", req.KeyID)
		return nil, err
	}
	return pt, nil
}

// Status proves the key works both ways (encrypt, then decrypt, a fixed
// probe) and reports the key ID of the latest key version. A failure is
// reported as an unhealthy healthz naming the cause, not as a gRPC error,
// so the apiserver's health check shows it.
func (p *Plugin) Status(ctx context.Context) (*service.StatusResponse, error) {
	start := time.Now()
	keyID, err := p.probe(ctx)
	p.metrics.observe("status", start, err)
	if err != nil {
		p.log.Error(err, "status check failed", "key", p.key)
		p.metrics.setHealthy(false)
		// One line: the apiserver shows it in its /readyz and logs.
		msg := strings.Join(strings.Fields(err.Error()), " ")
		return &service.StatusResponse{Version: APIVersion, Healthz: "unhealthy: " + msg, KeyID: p.lastKeyID()}, nil
	}
	p.metrics.setHealthy(true)
	return &service.StatusResponse{Version: APIVersion, Healthz: Healthy, KeyID: keyID}, nil
}

func (p *Plugin) probe(ctx context.Context) (string, error) {
	ct, err := p.encrypt(ctx, statusProbe)
	if err != nil {
		return "", err
	}
	version, err := ciphertextVersion(ct)
	if err != nil {
		return "", err
	}
	pt, err := p.decrypt(ctx, ct)
	if err != nil {
		return "", err
	}
	if string(pt) != string(statusProbe) {
		return "", fmt.Errorf("transit key %s/%s: the probe did not decrypt to what was encrypted", p.mount, p.key)
	}
	return p.noteKeyID(version), nil
}

func (p *Plugin) encrypt(ctx context.Context, data []byte) (string, error) {
	sec, err := p.call(ctx, "encrypt", map[string]any{"plaintext": base64.StdEncoding.EncodeToString(data)})
	if err != nil {
		return "", err
	}
	ct, _ := sec.Data["ciphertext"].(string)
	if ct == "" {
		return "", fmt.Errorf("transit encrypt with key %s/%s: the answer has no ciphertext", p.mount, p.key)
	}
	return ct, nil
}

func (p *Plugin) decrypt(ctx context.Context, ct string) ([]byte, error) {
	if _, err := ciphertextVersion(ct); err != nil {
		return nil, err
	}
	sec, err := p.call(ctx, "decrypt", map[string]any{"ciphertext": ct})
	if err != nil {
		return nil, err
	}
	b64, _ := sec.Data["plaintext"].(string)
	pt, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("transit decrypt with key %s/%s: the answer is not base64", p.mount, p.key)
	}
	return pt, nil
}

// call POSTs to transit/<op>/<key> with a bounded timeout, logging in again
// once if Vault answers 403 (a revoked or expired token).
func (p *Plugin) call(ctx context.Context, op string, body map[string]any) (*vaultapi.Secret, error) {
	path := p.mount + "/" + op + "/" + p.key
	sec, err := p.write(ctx, path, body)
	if errors.Is(err, vault.ErrForbidden) {
		if rerr := p.vault.Relogin(ctx); rerr == nil {
			sec, err = p.write(ctx, path, body)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("transit %s with key %s/%s: %w", op, p.mount, p.key, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("transit %s with key %s/%s: empty answer", op, p.mount, p.key)
	}
	return sec, nil
}

func (p *Plugin) write(ctx context.Context, path string, body map[string]any) (*vaultapi.Secret, error) {
	api, err := p.vault.API()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	sec, err := api.Logical().WriteWithContext(ctx, path, body)
	return sec, vault.MapError(err)
}

// noteKeyID records the key version Transit last used and logs a rotation.
func (p *Plugin) noteKeyID(version int) string {
	id := p.KeyID(version)
	p.mu.Lock()
	prev := p.keyID
	p.keyID = id
	p.mu.Unlock()
	if prev != id {
		if prev != "" {
			p.log.Info("transit key rotated: new DEK seeds are wrapped with the new version", "previous", prev, "keyID", id)
		}
		p.metrics.setKeyVersion(version)
	}
	return id
}

func (p *Plugin) lastKeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keyID
}

// ErrNotTransitCiphertext: a ciphertext to decrypt (or one Vault returned)
// is not Transit's "vault:v<N>:..." form; nothing was sent to Vault.
var ErrNotTransitCiphertext = errors.New("not a Vault Transit ciphertext (vault:v<N>:...)")

// ciphertextVersion parses Transit's "vault:v<N>:<base64>" ciphertext.
func ciphertextVersion(ct string) (int, error) {
	parts := strings.SplitN(ct, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" || !strings.HasPrefix(parts[1], "v") {
		return 0, ErrNotTransitCiphertext
	}
	v, err := strconv.Atoi(parts[1][1:])
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%w: key version %q is not a positive number", ErrNotTransitCiphertext, parts[1])
	}
	return v, nil
}
