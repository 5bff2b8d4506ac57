// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package kms

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/kms/pkg/service"

	"github.com/keyward-io/keyward/e2e/framework"
)

// tokenVault is a kms.Vault over a fixed client; Relogin mints a new token
// with the same policies (as a re-login with AppRole would) and counts.
type tokenVault struct {
	v        *framework.Vault
	policies []string
	c        *vaultapi.Client
	relogins atomic.Int32
}

func (t *tokenVault) API() (*vaultapi.Client, error) { return t.c, nil }

func (t *tokenVault) Relogin(ctx context.Context) error {
	t.relogins.Add(1)
	tok, err := t.v.TokenForPolicies(ctx, t.policies...)
	if err != nil {
		return err
	}
	t.c.SetToken(tok)
	return nil
}

func newTokenVault(t *testing.T, v *framework.Vault, policies ...string) *tokenVault {
	t.Helper()
	c, err := v.ClientForPolicies(context.Background(), policies...)
	if err != nil {
		t.Fatal(err)
	}
	return &tokenVault{v: v, policies: policies, c: c}
}

func rootClient(t *testing.T, v *framework.Vault) *vaultapi.Client {
	t.Helper()
	c, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPluginAgainstVault: the envelope service on a real Vault dev server,
// with a token holding only the shipped keyward-kms policy.
func TestPluginAgainstVault(t *testing.T) {
	v := framework.VaultForTest(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	tv := newTokenVault(t, v, framework.PolicyKMS)
	p, err := New(tv, Options{Key: framework.VaultTransitKey, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	seed := []byte("a 32-byte DEK seed, not random!!")

	st, err := p.Status(ctx)
	if err != nil || st.Healthz != Healthy || st.Version != APIVersion || st.KeyID != "transit/kubernetes-secrets:v1" {
		t.Fatalf("Status = %+v, %v; want healthy v2 with key ID transit/kubernetes-secrets:v1", st, err)
	}
	enc, err := p.Encrypt(ctx, "uid-1", seed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(enc.Ciphertext), "vault:v1:") || bytes.Contains(enc.Ciphertext, seed) || enc.KeyID != st.KeyID {
		t.Fatalf("Encrypt = %q (key ID %s): want a vault:v1: ciphertext under %s", enc.Ciphertext, enc.KeyID, st.KeyID)
	}
	pt, err := p.Decrypt(ctx, "uid-2", &service.DecryptRequest{Ciphertext: enc.Ciphertext, KeyID: enc.KeyID})
	if err != nil || !bytes.Equal(pt, seed) {
		t.Fatalf("Decrypt = %q, %v; want the seed back", pt, err)
	}

	t.Run("rotation changes the key ID; old ciphertexts still decrypt", func(t *testing.T) {
		if _, err := rootClient(t, v).Logical().Write("transit/keys/"+framework.VaultTransitKey+"/rotate", nil); err != nil {
			t.Fatal(err)
		}
		st2, err := p.Status(ctx)
		if err != nil || st2.Healthz != Healthy || st2.KeyID != "transit/kubernetes-secrets:v2" {
			t.Fatalf("Status after rotation = %+v, %v; want key ID transit/kubernetes-secrets:v2", st2, err)
		}
		enc2, err := p.Encrypt(ctx, "uid-3", seed)
		if err != nil || !strings.HasPrefix(string(enc2.Ciphertext), "vault:v2:") || enc2.KeyID != st2.KeyID {
			t.Fatalf("Encrypt after rotation = %q (%s), %v; want vault:v2:", enc2.Ciphertext, enc2.KeyID, err)
		}
		if pt, err := p.Decrypt(ctx, "uid-4", &service.DecryptRequest{Ciphertext: enc.Ciphertext, KeyID: enc.KeyID}); err != nil || !bytes.Equal(pt, seed) {
			t.Fatalf("Decrypt of a v1 ciphertext after rotation = %q, %v", pt, err)
		}
		if got := testutil.ToFloat64(metrics.KeyVersion); got != 2 {
			t.Errorf("keyward_kms_key_version = %v, want 2", got)
		}
	})

	t.Run("a revoked token is replaced by one re-login", func(t *testing.T) {
		if err := tv.c.Auth().Token().RevokeSelf(""); err != nil {
			t.Fatal(err)
		}
		before := tv.relogins.Load()
		if _, err := p.Encrypt(ctx, "uid-5", seed); err != nil {
			t.Fatalf("Encrypt after the token was revoked: %v", err)
		}
		if n := tv.relogins.Load() - before; n != 1 {
			t.Errorf("%d re-logins, want exactly 1", n)
		}
	})

	t.Run("a ciphertext that is not Transit's is refused before any Vault call", func(t *testing.T) {
		before := testutil.ToFloat64(metrics.Requests.WithLabelValues("decrypt", ResultInvalid))
		if _, err := p.Decrypt(ctx, "uid-6", &service.DecryptRequest{Ciphertext: []byte("k8s:enc:aescbc:v1:key1:xyz")}); !errors.Is(err, ErrNotTransitCiphertext) {
			t.Fatalf("Decrypt of a non-Transit ciphertext: %v, want ErrNotTransitCiphertext", err)
		}
		if after := testutil.ToFloat64(metrics.Requests.WithLabelValues("decrypt", ResultInvalid)); after != before+1 {
			t.Errorf("keyward_kms_requests_total{op=decrypt,result=invalid} went %v -> %v, want +1", before, after)
		}
	})

	if n := testutil.ToFloat64(metrics.Requests.WithLabelValues("encrypt", ResultOK)); n < 3 {
		t.Errorf("keyward_kms_requests_total{op=encrypt,result=ok} = %v, want >= 3", n)
	}
}

// TestPluginBadConfiguration: a wrong key name or a policy without decrypt
// is a clear unhealthy Status naming the cause, never a silent success.
func TestPluginBadConfiguration(t *testing.T) {
	v := framework.VaultForTest(t)
	ctx := context.Background()
	root := rootClient(t, v)
	if err := root.Sys().PutPolicy("kms-encrypt-only", `path "transit/encrypt/kubernetes-secrets" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		key      string
		policies []string
		want     string
	}{
		{"wrong key name", "no-such-key", []string{framework.PolicyKMS}, "transit encrypt with key transit/no-such-key"},
		{"policy without decrypt", framework.VaultTransitKey, []string{"kms-encrypt-only"}, "transit decrypt with key transit/kubernetes-secrets"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(newTokenVault(t, v, tc.policies...), Options{Key: tc.key})
			if err != nil {
				t.Fatal(err)
			}
			st, err := p.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Healthz == Healthy || !strings.Contains(st.Healthz, tc.want) || !strings.Contains(st.Healthz, "403") {
				t.Errorf("Status healthz = %q, want unhealthy naming %q and Vault's 403", st.Healthz, tc.want)
			}
		})
	}
}

func TestCiphertextVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"vault:v1:abc", 1, true},
		{"vault:v12:abc:def", 12, true},
		{"vault:v0:abc", 0, false},
		{"vault:vx:abc", 0, false},
		{"vault:1:abc", 0, false},
		{"k8s:enc:kms:v2:x", 0, false},
		{"", 0, false},
	} {
		got, err := ciphertextVersion(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ciphertextVersion(%q) = %d, %v; want %d (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestNewRejectsBadKeyNames(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "a/b"} {
		if _, err := New(nil, Options{Key: key}); err == nil {
			t.Errorf("New accepted key name %q", key)
		}
	}
}
