// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
)

// baselineVaultClusterIssuer is cert-manager's built-in Vault issuer using
// Kubernetes auth through the stack's Vault: the reference Keyward is compared to.
func baselineVaultClusterIssuer(env *framework.Env, name string) *cmapi.ClusterIssuer {
	return &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{Vault: &cmapi.VaultIssuer{
			Server: env.Vault.Addr,
			Path:   framework.VaultIntPKIMount + "/sign/" + framework.VaultBaselineRole,
			Auth: cmapi.VaultAuth{Kubernetes: &cmapi.VaultKubernetesAuth{
				Path: "/v1/auth/" + framework.VaultKubernetesMount,
				Role: "cert-manager",
				ServiceAccountRef: &cmapi.ServiceAccountRef{
					Name:           framework.CertManagerServiceAccount,
					TokenAudiences: []string{framework.VaultAudience},
				},
			}},
		}}},
	}
}

// waitFor polls cond every 100 ms until it is true or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := framework.Poll(context.Background(), timeout, what, cond); err != nil {
		t.Fatal(err)
	}
}

// waitCertificateReady waits for Ready=True on a Certificate and returns it.
func waitCertificateReady(t *testing.T, c client.Client, key client.ObjectKey, timeout time.Duration) *cmapi.Certificate {
	t.Helper()
	crt := &cmapi.Certificate{}
	defer func() {
		if t.Failed() {
			t.Logf("Certificate %s conditions: %+v", key, crt.Status.Conditions)
		}
	}()
	waitFor(t, timeout, fmt.Sprintf("Certificate %s Ready", key), func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, crt); err != nil {
			return false, err
		}
		return apiutil.CertificateHasCondition(crt, cmapi.CertificateCondition{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue}), nil
	})
	return crt
}

// waitIssuerReady waits for a ClusterIssuer's Ready=True.
func waitClusterIssuerReady(t *testing.T, c client.Client, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "ClusterIssuer "+name+" Ready", func(ctx context.Context) (bool, error) {
		iss := &cmapi.ClusterIssuer{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, iss); err != nil {
			return false, err
		}
		return apiutil.IssuerHasCondition(iss, cmapi.IssuerCondition{Type: cmapi.IssuerConditionReady, Status: cmmeta.ConditionTrue}), nil
	})
}

// verifyChain parses tls.crt (leaf + intermediates) and verifies it to root.
func verifyChain(t *testing.T, tlsCrt, rootPEM []byte, dnsName string) *x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for rest := tlsCrt; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("parsing tls.crt: %v", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.Fatalf("tls.crt holds no certificate")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("vault root CA does not parse")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: dnsName}); err != nil {
		t.Fatalf("chain does not verify to the Vault root for %s: %v", dnsName, err)
	}
	return certs[0]
}

// getSecret reads a Secret.
func getSecret(t *testing.T, c client.Client, key client.ObjectKey) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), key, s); err != nil {
		t.Fatalf("reading secret %s: %v", key, err)
	}
	return s
}

// isPlaceholder is custody.ParsePlaceholder's verdict alone.
func isPlaceholder(s *corev1.Secret) bool {
	_, ok := custody.ParsePlaceholder(s)
	return ok
}
