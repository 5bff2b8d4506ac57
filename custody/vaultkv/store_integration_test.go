// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vaultkv_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/e2e/framework"
)

// writerStore returns a Store authenticated with a token that carries only
// the keyward-custody-writer policy, as in production.
func writerStore(t *testing.T, v *framework.Vault, timeout time.Duration) (*vaultkv.Store, *vaultapi.Client) {
	t.Helper()
	s, c, err := v.CustodyStore(context.Background(), timeout, framework.PolicyCustodyWriter)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// planRecord is a custody record for a fresh ECDSA key and a self-signed
// certificate, described as the scrubber would describe it.
func planRecord(t *testing.T) custody.Record {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Now().Add(-time.Hour).Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "web.example.com"},
		DNSNames: []string{"web.example.com"}, NotBefore: nb, NotAfter: nb.Add(48 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return custody.Record{
		Namespace:   "team-a",
		Name:        "web-tls",
		Key:         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		CA:          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Meta: custody.Metadata{
			CertificateName: "web", IssuerName: "vault", IssuerKind: "VaultClusterIssuer", IssuerGroup: "vault.keyward.io",
			Serial: custody.SerialHex(cert), NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(),
			KeySHA256: custody.Fingerprint(cert.RawSubjectPublicKeyInfo),
		},
	}
}

// TestStoreIntegration runs the custody store against the real Vault dev
// server with the production mount layout and policies.
func TestStoreIntegration(t *testing.T) {
	v := framework.VaultForTest(t)
	root, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	store, writer := writerStore(t, v, 5*time.Second)
	ctx := context.Background()
	rec := planRecord(t)
	const dataPath = "custody/data/tls/team-a/web-tls"

	if got := store.Path("team-a", "web-tls"); got != "custody/tls/team-a/web-tls" {
		t.Errorf("Path = %q", got)
	}
	if _, err := store.Metadata(ctx, "team-a", "web-tls"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("Metadata before Put: %v, want ErrNotFound", err)
	}

	v1, err := store.Put(ctx, rec, 0)
	if err != nil || v1 != 1 {
		t.Fatalf("Put = %d, %v", v1, err)
	}
	md, err := store.Metadata(ctx, "team-a", "web-tls")
	if err != nil {
		t.Fatal(err)
	}
	want := rec.Meta
	want.Version = 1
	if !md.NotBefore.Equal(want.NotBefore) || !md.NotAfter.Equal(want.NotAfter) {
		t.Errorf("validity %v..%v, want %v..%v", md.NotBefore, md.NotAfter, want.NotBefore, want.NotAfter)
	}
	md.NotBefore, md.NotAfter, want.NotBefore, want.NotAfter = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if md != want {
		t.Errorf("Metadata = %+v\nwant %+v", md, want)
	}

	// The data is in Vault as written (read with root: the writer cannot).
	sec, err := root.KVv2("custody").Get(ctx, "tls/team-a/web-tls")
	if err != nil {
		t.Fatal(err)
	}
	if sec.Data["tls.key"] != string(rec.Key) || sec.Data["tls.crt"] != string(rec.Certificate) || sec.Data["ca.crt"] != string(rec.CA) {
		t.Errorf("custody data differs from the record")
	}
	if sec.VersionMetadata.Version != 1 {
		t.Errorf("version %d", sec.VersionMetadata.Version)
	}
	// One write: the version carries its description, and the key's
	// metadata was not written (no custom metadata, no per-key max_versions).
	if _, ok := sec.Data[vaultkv.DataDescription].(map[string]any); !ok {
		t.Errorf("version 1 carries no %s: %v", vaultkv.DataDescription, sec.Data[vaultkv.DataDescription])
	}
	meta, err := root.KVv2("custody").GetMetadata(ctx, "tls/team-a/web-tls")
	if err != nil {
		t.Fatal(err)
	}
	if meta.MaxVersions != 0 || len(meta.CustomMetadata) != 0 {
		t.Errorf("key metadata written: max_versions %d, custom metadata %v", meta.MaxVersions, meta.CustomMetadata)
	}

	t.Run("guard policy reads the description, not the key", func(t *testing.T) {
		guard, gc, err := v.CustodyStore(ctx, 5*time.Second, framework.PolicyGuard)
		if err != nil {
			t.Fatal(err)
		}
		gmd, err := guard.Metadata(ctx, "team-a", "web-tls")
		if err != nil || !gmd.NotAfter.Equal(rec.Meta.NotAfter) || gmd.KeySHA256 != rec.Meta.KeySHA256 || gmd.Version != 1 {
			t.Fatalf("guard Metadata = %+v, %v", gmd, err)
		}
		_, err = gc.Logical().ReadWithContext(ctx, dataPath)
		var re *vaultapi.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Fatalf("reading %s with the guard token: %v, want 403", dataPath, err)
		}
	})

	t.Run("writer cannot read key data", func(t *testing.T) {
		_, err := writer.Logical().ReadWithContext(ctx, dataPath)
		var re *vaultapi.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Fatalf("reading %s with the writer token: %v, want 403", dataPath, err)
		}
	})

	t.Run("check-and-set", func(t *testing.T) {
		for _, cas := range []int{0, 7} {
			if _, err := store.Put(ctx, rec, cas); !errors.Is(err, custody.ErrConflict) {
				t.Errorf("Put cas=%d: %v, want ErrConflict", cas, err)
			}
		}
		v2, err := store.Put(ctx, rec, 1)
		if err != nil || v2 != 2 {
			t.Fatalf("Put cas=1 = %d, %v", v2, err)
		}
	})

	t.Run("metadata not describing the current version", func(t *testing.T) {
		// A version Keyward did not write (no description) on a key
		// without custom metadata for it.
		if _, err := root.Logical().WriteWithContext(ctx, dataPath, map[string]any{"data": map[string]any{"tls.key": "x"}}); err != nil {
			t.Fatal(err)
		}
		md, err := store.Metadata(ctx, "team-a", "web-tls")
		if err != nil {
			t.Fatal(err)
		}
		if md != (custody.Metadata{Version: 3, Torn: true}) {
			t.Errorf("Metadata = %+v, want only Version 3, Torn", md)
		}
	})

	t.Run("deleted current version", func(t *testing.T) {
		if err := root.KVv2("custody").Delete(ctx, "tls/team-a/web-tls"); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Metadata(ctx, "team-a", "web-tls"); !errors.Is(err, custody.ErrNotFound) {
			t.Fatalf("Metadata after soft delete: %v, want ErrNotFound", err)
		}
		// "Must not exist yet" treats a deleted record as absent, so a re-issue can write.
		v4, err := store.Put(ctx, rec, 0)
		if err != nil || v4 != 4 {
			t.Fatalf("Put cas=0 over deleted version = %d, %v", v4, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := store.Delete(ctx, "team-a", "web-tls"); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Metadata(ctx, "team-a", "web-tls"); !errors.Is(err, custody.ErrNotFound) {
			t.Fatalf("Metadata after Delete: %v, want ErrNotFound", err)
		}
		if v, err := store.Put(ctx, rec, 0); err != nil || v != 1 {
			t.Fatalf("Put after Delete = %d, %v", v, err)
		}
	})

	t.Run("record written before descriptions", func(t *testing.T) {
		// Data, then custom metadata naming the version: what Put wrote
		// before versions carried their description.
		const p = "tls/team-a/legacy"
		kv := root.KVv2("custody")
		if _, err := kv.Put(ctx, p, map[string]any{"tls.key": "k", "tls.crt": "c", "ca.crt": ""}); err != nil {
			t.Fatal(err)
		}
		custom := map[string]any{"version": "1", "certificate": "legacy", "key_sha256": "ab12", "serial": "0c", "not_after": "2027-01-01T00:00:00Z"}
		if _, err := root.Logical().WriteWithContext(ctx, "custody/metadata/"+p, map[string]any{"custom_metadata": custom}); err != nil {
			t.Fatal(err)
		}
		md, err := store.Metadata(ctx, "team-a", "legacy")
		if err != nil || md.Version != 1 || md.Torn || md.CertificateName != "legacy" || md.KeySHA256 != "ab12" || md.Serial != "0c" ||
			!md.NotAfter.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("Metadata of a legacy record = %+v, %v", md, err)
		}
		// Keyward's next write describes its version itself; the stale
		// custom metadata no longer counts.
		r := planRecord(t)
		r.Name = "legacy"
		if v, err := store.Put(ctx, r, 1); err != nil || v != 2 {
			t.Fatalf("Put over a legacy record = %d, %v", v, err)
		}
		if md, err := store.Metadata(ctx, "team-a", "legacy"); err != nil || md.Version != 2 || md.KeySHA256 != r.Meta.KeySHA256 {
			t.Fatalf("Metadata after the write = %+v, %v", md, err)
		}
	})

	t.Run("mount max_versions", func(t *testing.T) {
		s, c := writerStore(t, v, 5*time.Second)
		if _, err := root.Logical().WriteWithContext(ctx, "custody/config", map[string]any{"max_versions": 7}); err != nil {
			t.Fatal(err)
		}
		wrote, err := s.EnsureMaxVersions(ctx)
		if err != nil || !wrote {
			t.Fatalf("EnsureMaxVersions over 7 = %v, %v; want a write", wrote, err)
		}
		cfg, err := root.Logical().ReadWithContext(ctx, "custody/config")
		if err != nil || fmt.Sprint(cfg.Data["max_versions"]) != fmt.Sprint(vaultkv.DefaultMaxVersions) {
			t.Fatalf("custody/config after EnsureMaxVersions = %v, %v", cfg, err)
		}
		if wrote, err := s.EnsureMaxVersions(ctx); err != nil || wrote {
			t.Fatalf("EnsureMaxVersions when already set = %v, %v; want no write", wrote, err)
		}
		// The writer may set max_versions and nothing else of the mount.
		_, err = c.Logical().WriteWithContext(ctx, "custody/config", map[string]any{"cas_required": true})
		var re *vaultapi.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Fatalf("writer setting cas_required: %v, want 403", err)
		}
	})

	t.Run("empty issuer annotations", func(t *testing.T) {
		r := planRecord(t)
		r.Name = "no-issuer"
		r.Meta.IssuerName, r.Meta.IssuerKind, r.Meta.IssuerGroup = "", "", ""
		if _, err := store.Put(ctx, r, 0); err != nil {
			t.Fatal(err)
		}
		md, err := store.Metadata(ctx, "team-a", "no-issuer")
		if err != nil || md.KeySHA256 != r.Meta.KeySHA256 || md.IssuerName != "" {
			t.Fatalf("Metadata = %+v, %v", md, err)
		}
	})

	t.Run("bounded timeout", func(t *testing.T) {
		short, _ := writerStore(t, v, 500*time.Millisecond)
		if err := v.Pause(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := v.Resume(); err != nil {
				t.Fatal(err)
			}
		}()
		start := time.Now()
		_, err := short.Put(ctx, rec, -1)
		if err == nil || errors.Is(err, custody.ErrConflict) {
			t.Fatalf("Put against a stopped Vault: %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Put took %v with a 500ms timeout", d)
		}
	})
}
