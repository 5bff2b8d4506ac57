// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/issuer/pki"
)

// fakeVaults is a Vaults whose answers the test sets.
type fakeVaults struct {
	mu        sync.Mutex
	checkErr  error
	signErr   error
	bundle    *pki.Bundle
	requests  []pki.Request
	forgotten []string
}

func (f *fakeVaults) Check(context.Context, v1alpha1.GenericIssuer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkErr
}

func (f *fakeVaults) Signer(context.Context, v1alpha1.GenericIssuer) (pki.Signer, error) {
	return f, nil
}

func (f *fakeVaults) Sign(_ context.Context, r pki.Request) (*pki.Bundle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
	if f.signErr != nil {
		return nil, f.signErr
	}
	return f.bundle, nil
}

func (f *fakeVaults) Forget(iss v1alpha1.GenericIssuer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, metricLabel(iss))
}

func (f *fakeVaults) signCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// randomTime is a fake clock base: tests must not depend on the wall clock.
func randomTime(t *testing.T) time.Time {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(10*365*24*3600))
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n.Int64()) * time.Second)
}

func csrPEM(t *testing.T, key crypto.Signer, cn string, dns ...string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func p256(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t *testing.T, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
