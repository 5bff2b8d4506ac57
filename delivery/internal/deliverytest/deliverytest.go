// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package deliverytest holds what the tests of the gateway sinks
// (delivery/apisix, delivery/kong) share: bundles with a real key and
// certificate, credential files, checks that a Deliver error is classified
// right and leaks no secret, and the plumbing of the httptest fakes that
// stand in for the gateways' Admin APIs (fake.go). Only tests import it.
package deliverytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward-io/keyward/delivery"
)

// Bundle returns version of ns/name with a new P-256 key and a self-signed
// leaf for dnsNames (at least one; the first is also the common name),
// valid from an hour ago to an hour from now, with a random serial.
// KeySHA256 is left empty.
func Bundle(t testing.TB, ns, name string, version int, dnsNames ...string) *delivery.Bundle {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: dnsNames[0]}, DNSNames: dnsNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &delivery.Bundle{
		Namespace: ns, Name: name, Version: version, Serial: serial.Text(16),
		Key:         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		DNSNames:    dnsNames,
	}
}

// WriteSecretFile writes content and a newline, as a mounted Secret holds
// it, to a file called name (mode 0600) in a new temporary directory, and
// returns its path.
func WriteSecretFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// AssertNoSecrets fails t if err's message holds any of the non-empty
// secrets or a PEM private key. It never prints the message.
func AssertNoSecrets(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error message contains secret material")
		}
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("error message contains key material")
	}
}

// Redacted is err's message with b's key replaced by "[KEY]": safe to
// print even if the sink leaked the key.
func Redacted(err error, b *delivery.Bundle) string {
	return strings.ReplaceAll(err.Error(), string(b.Key), "[KEY]")
}

// AssertDeliverError checks err, what delivering b returned: it is set,
// permanent (errors.Is delivery.ErrPermanent) exactly when permanent says,
// contains every string of contains, and holds neither b's key nor any of
// secrets.
func AssertDeliverError(t testing.TB, err error, b *delivery.Bundle, permanent bool, contains []string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Deliver succeeded")
	}
	if got := errors.Is(err, delivery.ErrPermanent); got != permanent {
		t.Errorf("errors.Is(err, ErrPermanent) = %v, want %v (%v)", got, permanent, Redacted(err, b))
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", Redacted(err, b), c)
		}
	}
	AssertNoSecrets(t, err, append([]string{string(b.Key)}, secrets...)...)
}

// AssertDeliverTimesOut delivers b through s, whose gateway never answers
// (see Gate.Hold) and whose timeout is well under a second, and checks that
// Deliver returns within 3 s a transient error that wraps
// context.DeadlineExceeded and names b.
func AssertDeliverTimesOut(t testing.TB, s delivery.Sink, b *delivery.Bundle) {
	t.Helper()
	start := time.Now()
	err := s.Deliver(context.Background(), b)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Deliver took %s, more than its timeout allows", took)
	}
	if err == nil || errors.Is(err, delivery.ErrPermanent) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), b.String()) {
		t.Fatalf("got %v, want a transient deadline error naming the Secret", err)
	}
}

// Keys returns m's keys, sorted: what a test may print of a body that
// holds a key.
func Keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
