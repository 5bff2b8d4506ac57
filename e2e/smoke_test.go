// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/e2e/framework"
)

// TestFrameworkSmoke proves the stack itself: cert-manager's own controllers,
// running against the real apiserver, issue a Certificate through the
// built-in Vault ClusterIssuer, which logs in to Vault with Kubernetes auth
// (Vault checks the ServiceAccount token through this apiserver's
// TokenReview). The chain must verify against the Vault root CA.
func TestFrameworkSmoke(t *testing.T) {
	env := framework.StartForTest(t, framework.Options{})
	ctx := context.Background()
	c := env.Client
	t.Logf("cert-manager controllers running: %v", env.CertManagerControllers)

	iss := baselineVaultClusterIssuer(env, "vault-baseline")
	if err := c.Create(ctx, iss); err != nil {
		t.Fatalf("creating ClusterIssuer: %v", err)
	}
	waitClusterIssuerReady(t, c, iss.Name, 60*time.Second)

	if err := env.CreateNamespace(ctx, "smoke", nil); err != nil {
		t.Fatal(err)
	}
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: "smoke"},
		Spec: cmapi.CertificateSpec{
			SecretName: "smoke-tls",
			DNSNames:   []string{"smoke.example.com"},
			Duration:   &metav1.Duration{Duration: 24 * time.Hour},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: iss.Name, Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"},
		},
	}
	start := time.Now()
	if err := c.Create(ctx, crt); err != nil {
		t.Fatalf("creating Certificate: %v", err)
	}
	ready := waitCertificateReady(t, c, client.ObjectKeyFromObject(crt), 90*time.Second)
	t.Logf("Certificate Ready after %s (revision %d)", time.Since(start).Round(time.Millisecond), *ready.Status.Revision)

	sec := getSecret(t, c, client.ObjectKey{Namespace: "smoke", Name: "smoke-tls"})
	leaf := verifyChain(t, sec.Data["tls.crt"], env.Vault.RootCAPEM, "smoke.example.com")
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < 23*time.Hour || got > 25*time.Hour {
		t.Errorf("certificate lifetime %s, want about the requested 24h", got)
	}
	if len(sec.Data["tls.key"]) == 0 {
		t.Errorf("baseline (no custody) Secret has no tls.key")
	}
	for _, err := range env.CertManagerErrors() {
		t.Errorf("cert-manager: %v", err)
	}
}
