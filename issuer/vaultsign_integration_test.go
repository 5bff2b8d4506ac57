// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/internal/vault/tokenrequest"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/issuer/pki"
)

// TestVaultSignIntegration runs the Vault adapter against the real Vault dev
// server, configured like production, with Kubernetes auth checking tokens
// against a real apiserver. Each subtest logs in a different way and signs.
func TestVaultSignIntegration(t *testing.T) {
	env := framework.StartForTest(t, framework.Options{WithoutCertManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := vault.Config{Server: env.Vault.Addr, Timeout: 30 * time.Second}
	signPath := framework.VaultIntPKIMount + "/sign/" + framework.VaultKeywardRole
	tokens := tokenrequest.New(env.Client)
	k8sAuth := func(role string) *vault.KubernetesAuth {
		return &vault.KubernetesAuth{
			MountPath: "/v1/auth/" + framework.VaultKubernetesMount, Role: role,
			Namespace: framework.KeywardNamespace, ServiceAccount: framework.KeywardServiceAccount,
			Audiences: []string{framework.VaultAudience}, Tokens: tokens,
		}
	}
	login := func(t *testing.T, auth vault.AuthMethod) *vault.Client {
		t.Helper()
		c, err := vault.Login(ctx, cfg, auth, vault.LoginOptions{})
		if err != nil {
			t.Fatalf("logging in with %s: %v", auth, err)
		}
		t.Cleanup(c.Close)
		return c
	}
	signAndVerify := func(t *testing.T, c *vault.Client, ttl time.Duration, wantTTL time.Duration) {
		t.Helper()
		csrBytes := csrPEM(t, p256(t), "web.example.com", "web.example.com", "api.example.com")
		csr, err := pki.ParseCSR(csrBytes)
		if err != nil {
			t.Fatal(err)
		}
		signer := &pki.VaultSigner{Logical: c.API().Logical(), Path: signPath}
		b, err := signer.Sign(ctx, pki.RequestFromCSR(csrBytes, csr, ttl))
		if err != nil {
			t.Fatalf("signing: %v", err)
		}
		leaf := verifyBundle(t, b, env.Vault.RootCAPEM, "api.example.com")
		if got := strings.Join(leaf.DNSNames, ","); !strings.Contains(got, "web.example.com") || !strings.Contains(got, "api.example.com") {
			t.Errorf("leaf DNS names = %s, want the CSR's", got)
		}
		if got := leaf.NotAfter.Sub(leaf.NotBefore); got < wantTTL-2*time.Minute || got > wantTTL+2*time.Minute {
			t.Errorf("leaf lifetime = %s, want about %s", got, wantTTL)
		}
	}

	t.Run("kubernetes auth login and sign", func(t *testing.T) {
		c := login(t, k8sAuth("keyward-issuer"))
		signAndVerify(t, c, 2*time.Hour, 2*time.Hour)
	})

	t.Run("ttl is capped by the role's max_ttl", func(t *testing.T) {
		c := login(t, k8sAuth("keyward-issuer"))
		signAndVerify(t, c, 100*time.Hour, 72*time.Hour)
	})

	t.Run("approle login and sign", func(t *testing.T) {
		roleID, secretID, err := env.Vault.AppRoleCredentials(ctx, "keyward-issuer")
		if err != nil {
			t.Fatal(err)
		}
		c := login(t, &vault.AppRoleAuth{RoleID: roleID, SecretID: func(context.Context) (string, error) { return secretID, nil }})
		signAndVerify(t, c, time.Hour, time.Hour)
	})

	t.Run("token auth and sign", func(t *testing.T) {
		tok, err := env.Vault.TokenForPolicies(ctx, framework.PolicyIssuer)
		if err != nil {
			t.Fatal(err)
		}
		c := login(t, &vault.TokenAuth{Token: func(context.Context) (string, error) { return tok, nil }})
		signAndVerify(t, c, time.Hour, time.Hour)
	})

	t.Run("name the role forbids is a permanent error with vault's message", func(t *testing.T) {
		c := login(t, k8sAuth("keyward-issuer"))
		csrBytes := csrPEM(t, p256(t), "evil.org", "evil.org")
		csr, _ := pki.ParseCSR(csrBytes)
		_, err := (&pki.VaultSigner{Logical: c.API().Logical(), Path: signPath}).Sign(ctx, pki.RequestFromCSR(csrBytes, csr, time.Hour))
		var perm *PermanentError
		if !errors.As(classify(err), &perm) {
			t.Fatalf("sign error %v classified as %T, want *PermanentError", err, classify(err))
		}
		if !strings.Contains(perm.Error(), "evil.org") || !strings.Contains(perm.Error(), "not allowed") {
			t.Errorf("permanent error %q does not carry Vault's reason", perm.Error())
		}
	})

	t.Run("wrong kubernetes role is an auth failure", func(t *testing.T) {
		_, err := vault.Login(ctx, cfg, k8sAuth("no-such-role"), vault.LoginOptions{})
		var ie *IssuerError
		if !errors.As(classify(err), &ie) || ie.Reason != ReasonAuthFailed {
			t.Fatalf("login error %v classified as %v, want IssuerError/%s", err, classify(err), ReasonAuthFailed)
		}
	})

	connector := &vaultConnector{
		secrets: env.Client, tokens: tokens, clusterResourceNS: framework.KeywardNamespace,
		timeout: 30 * time.Second, clock: clock.RealClock{}, log: logr.Discard(), cache: &vault.Cache{},
	}
	t.Cleanup(connector.cache.Close)
	clusterIssuer := func(path string) *v1alpha1.VaultClusterIssuer {
		return &v1alpha1.VaultClusterIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: "vault-" + strings.ReplaceAll(path, "/", "-"), UID: "uid", Generation: 1},
			Spec: v1alpha1.VaultIssuerSpec{Server: env.Vault.Addr, Path: path, Auth: v1alpha1.VaultAuth{Kubernetes: &v1alpha1.KubernetesAuth{
				Role: "keyward-issuer", MountPath: framework.VaultKubernetesMount,
				ServiceAccountRef: v1alpha1.ServiceAccountRef{Name: framework.KeywardServiceAccount, Audiences: []string{framework.VaultAudience}},
			}}},
		}
	}

	t.Run("health check passes for the issuer's own role", func(t *testing.T) {
		if err := connector.Check(ctx, clusterIssuer(signPath)); err != nil {
			t.Fatalf("Check() = %v, want nil", err)
		}
	})

	t.Run("health check reports a path the policy does not allow", func(t *testing.T) {
		err := connector.Check(ctx, clusterIssuer(framework.VaultIntPKIMount+"/sign/"+framework.VaultBaselineRole))
		var ie *IssuerError
		if !errors.As(err, &ie) || ie.Reason != ReasonPermissionDenied {
			t.Fatalf("Check() = %v, want IssuerError/%s", err, ReasonPermissionDenied)
		}
	})

	t.Run("signer logs in again after its token is revoked", func(t *testing.T) {
		iss := clusterIssuer(signPath)
		s, err := connector.Signer(ctx, iss)
		if err != nil {
			t.Fatal(err)
		}
		c, err := connector.client(ctx, iss)
		if err != nil {
			t.Fatal(err)
		}
		root, err := env.Vault.RootClient()
		if err != nil {
			t.Fatal(err)
		}
		if err := root.Auth().Token().RevokeTreeWithContext(ctx, c.API().Token()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // Relogin collapses calls within a second of the last login
		csrBytes := csrPEM(t, p256(t), "", "relogin.example.com")
		csr, _ := pki.ParseCSR(csrBytes)
		b, err := s.Sign(ctx, pki.RequestFromCSR(csrBytes, csr, time.Hour))
		if err != nil {
			t.Fatalf("sign after revocation: %v", err)
		}
		verifyBundle(t, b, env.Vault.RootCAPEM, "relogin.example.com")
	})
}

// verifyBundle checks that a Bundle's chain verifies to root through its
// intermediates, that CA is the root, and returns the leaf.
func verifyBundle(t *testing.T, b *pki.Bundle, rootPEM []byte, dnsName string) *x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for rest := b.Chain; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		t.Fatalf("chain has %d certificates, want leaf + intermediate", len(certs))
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: dnsName}); err != nil {
		t.Fatalf("chain does not verify to the Vault root: %v", err)
	}
	if strings.TrimSpace(string(b.CA)) != strings.TrimSpace(string(rootPEM)) {
		t.Errorf("CA is not the Vault root")
	}
	return certs[0]
}
