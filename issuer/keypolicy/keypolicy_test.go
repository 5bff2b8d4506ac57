// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package keypolicy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

type keySet struct {
	rsa1024, rsa2048 crypto.Signer
	p256, p384, p521 crypto.Signer
	ed               crypto.Signer
}

func newKeys(t *testing.T) *keySet {
	t.Helper()
	must := func(k crypto.Signer, err error) crypto.Signer {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	return &keySet{
		rsa1024: must(rsa.GenerateKey(rand.Reader, 1024)),
		rsa2048: must(rsa.GenerateKey(rand.Reader, 2048)),
		p256:    must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)),
		p384:    must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)),
		p521:    must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader)),
		ed:      must(ed, err),
	}
}

func csrFor(t *testing.T, key crypto.Signer, cn string, dns ...string) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestCheck(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	hour := metav1.Duration{Duration: time.Hour}
	tests := []struct {
		name     string
		policy   *v1alpha1.KeyPolicy
		key      crypto.Signer
		cn       string
		dns      []string
		duration time.Duration
		wantRule string // empty: allowed
		wantText string
	}{
		{name: "rsa 1024 rejected by default", key: k.rsa1024, wantRule: RuleRSAMinBits, wantText: `policy rule "rsa-min-bits": RSA key is 1024 bits, minimum 2048`},
		{name: "rsa 2048 allowed by default", key: k.rsa2048},
		{name: "p256 allowed by default", key: k.p256},
		{name: "p384 allowed by default", key: k.p384},
		{name: "p521 rejected by default", key: k.p521, wantRule: RuleECDSACurve, wantText: `policy rule "ecdsa-curve": ECDSA curve P-521 is not allowed, allowed: P-256, P-384`},
		{name: "ed25519 rejected by default", key: k.ed, wantRule: RuleKeyAlgorithm},
		{name: "ed25519 allowed when listed", key: k.ed, policy: &v1alpha1.KeyPolicy{AllowedKeyAlgorithms: []v1alpha1.KeyAlgorithm{"Ed25519"}}},
		{name: "rsa not listed", key: k.rsa2048, policy: &v1alpha1.KeyPolicy{AllowedKeyAlgorithms: []v1alpha1.KeyAlgorithm{"ECDSA"}}, wantRule: RuleKeyAlgorithm, wantText: "RSA keys are not allowed"},
		{name: "raised rsa floor", key: k.rsa2048, policy: &v1alpha1.KeyPolicy{RSAMinBits: 3072}, wantRule: RuleRSAMinBits, wantText: "RSA key is 2048 bits, minimum 3072"},
		{name: "p521 allowed when listed", key: k.p521, policy: &v1alpha1.KeyPolicy{ECDSACurves: []v1alpha1.ECDSACurve{"P-521"}}},
		{name: "p256 not in custom curves", key: k.p256, policy: &v1alpha1.KeyPolicy{ECDSACurves: []v1alpha1.ECDSACurve{"P-384"}}, wantRule: RuleECDSACurve},
		{name: "duration within max", key: k.p256, policy: &v1alpha1.KeyPolicy{MaxDuration: &hour}, duration: time.Hour},
		{name: "duration over max", key: k.p256, policy: &v1alpha1.KeyPolicy{MaxDuration: &hour}, duration: 2 * time.Hour, wantRule: RuleMaxDuration, wantText: "requested duration 2h0m0s exceeds the maximum 1h0m0s"},
		{name: "dns names match", key: k.p256, policy: &v1alpha1.KeyPolicy{AllowedDNSNames: []string{"*.example.com", "example.com"}}, cn: "example.com", dns: []string{"a.example.com", "example.com"}},
		{name: "dns name too deep", key: k.p256, policy: &v1alpha1.KeyPolicy{AllowedDNSNames: []string{"*.example.com"}}, dns: []string{"a.b.example.com"}, wantRule: RuleDNSNames, wantText: `"a.b.example.com"`},
		{name: "common name checked", key: k.p256, policy: &v1alpha1.KeyPolicy{AllowedDNSNames: []string{"*.example.com"}}, cn: "evil.org", dns: []string{"a.example.com"}, wantRule: RuleDNSNames, wantText: `"evil.org"`},
		{name: "ip common name not a dns name", key: k.p256, policy: &v1alpha1.KeyPolicy{AllowedDNSNames: []string{"*.example.com"}}, cn: "10.0.0.1"},
		{name: "key checked before names", key: k.rsa1024, policy: &v1alpha1.KeyPolicy{AllowedDNSNames: []string{"x.org"}}, dns: []string{"a.example.com"}, wantRule: RuleRSAMinBits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := FromAPI(tc.policy).Check(csrFor(t, tc.key, tc.cn, tc.dns...), tc.duration)
			if tc.wantRule == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want allowed", err)
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) {
				t.Fatalf("Check() = %v, want a *Violation of rule %q", err, tc.wantRule)
			}
			if v.Rule != tc.wantRule {
				t.Errorf("rule = %q, want %q (%v)", v.Rule, tc.wantRule, err)
			}
			if !strings.Contains(err.Error(), `policy rule "`+tc.wantRule+`"`) {
				t.Errorf("message %q does not name rule %q", err, tc.wantRule)
			}
			if tc.wantText != "" && !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("message %q does not contain %q", err, tc.wantText)
			}
		})
	}
}

func TestMatchDNS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "A.Example.COM", true},
		{"*.example.com", "*.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", "a.example.org", false},
		{"web-*.example.com", "web-1.example.com", true},
		{"web-*.example.com", "db-1.example.com", false},
		{"example.com", "example.com.", true},
		{"*.*.example.com", "a.b.example.com", true},
		{"*.example.com", ".example.com", false},
		{"[", "[", false},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+"~"+tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MatchDNS(tc.pattern, tc.name); got != tc.want {
				t.Errorf("MatchDNS(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
			}
		})
	}
}
