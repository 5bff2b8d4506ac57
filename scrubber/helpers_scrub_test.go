// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scrubTestKeyPair is a freshly generated key and a self-signed certificate.
type scrubTestKeyPair struct {
	Key     crypto.Signer
	KeyPEM  []byte // PKCS#8
	Cert    *x509.Certificate
	CertPEM []byte
}

func scrubTestNewPair(t testing.TB, alg string) scrubTestKeyPair {
	t.Helper()
	var key crypto.Signer
	var err error
	switch alg {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Now().Add(-time.Hour).Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "test.example.com"},
		DNSNames:     []string{"test.example.com"},
		NotBefore:    nb,
		NotAfter:     nb.Add(48 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return scrubTestKeyPair{
		Key:     key,
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}

// scrubTestSecret is an in-scope Secret as cert-manager writes it.
func scrubTestSecret(p scrubTestKeyPair) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "team-a",
			Name:      "web-tls",
			Annotations: map[string]string{
				AnnotationCertificateName: "web",
				annotationIssuerName:      "vault",
				annotationIssuerKind:      "VaultClusterIssuer",
				annotationIssuerGroup:     "keyward.io",
			},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			custody.DataKey:         p.KeyPEM,
			custody.DataCertificate: p.CertPEM,
			custody.DataCA:          p.CertPEM,
		},
	}
}

// ScrubTestSecret is a key-bearing cert-manager Secret (team-a/web-tls) with a
// fresh ECDSA key, for the external-package integration tests.
func ScrubTestSecret(t testing.TB) *corev1.Secret {
	return scrubTestSecret(scrubTestNewPair(t, "ecdsa"))
}

// isPlaceholder is custody.ParsePlaceholder's verdict alone.
func isPlaceholder(s *corev1.Secret) bool {
	_, ok := custody.ParsePlaceholder(s)
	return ok
}
