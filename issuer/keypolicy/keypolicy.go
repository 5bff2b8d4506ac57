// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package keypolicy decides whether a CSR may be sent to Vault at all: key
// algorithm and size, requested lifetime and DNS names. It is pure: no I/O.
package keypolicy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// Rule names, as they appear in violation messages.
const (
	RuleKeyAlgorithm = "key-algorithm"
	RuleRSAMinBits   = "rsa-min-bits"
	RuleECDSACurve   = "ecdsa-curve"
	RuleMaxDuration  = "max-duration"
	RuleDNSNames     = "dns-names"
)

// DefaultRSAMinBits is the RSA modulus floor when a policy sets none.
const DefaultRSAMinBits = 2048

// Policy is a KeyPolicy with its defaults filled in. Build it with FromAPI.
type Policy struct {
	// Algorithms accepted.
	Algorithms []v1alpha1.KeyAlgorithm
	// RSAMinBits is the smallest RSA modulus accepted.
	RSAMinBits int
	// Curves are the ECDSA curves accepted.
	Curves []v1alpha1.ECDSACurve
	// MaxDuration is the longest lifetime accepted; zero means no limit.
	MaxDuration time.Duration
	// DNSPatterns every DNS name must match; empty means any name.
	DNSPatterns []string
}

// FromAPI returns the policy p describes, with defaults for what p (which may
// be nil) leaves unset: RSA and ECDSA, RSA ≥ 2048 bits, P-256 and P-384.
func FromAPI(p *v1alpha1.KeyPolicy) Policy {
	out := Policy{
		Algorithms: []v1alpha1.KeyAlgorithm{v1alpha1.KeyAlgorithmRSA, v1alpha1.KeyAlgorithmECDSA},
		RSAMinBits: DefaultRSAMinBits,
		Curves:     []v1alpha1.ECDSACurve{"P-256", "P-384"},
	}
	if p == nil {
		return out
	}
	if len(p.AllowedKeyAlgorithms) > 0 {
		out.Algorithms = p.AllowedKeyAlgorithms
	}
	if p.RSAMinBits > 0 {
		out.RSAMinBits = int(p.RSAMinBits)
	}
	if len(p.ECDSACurves) > 0 {
		out.Curves = p.ECDSACurves
	}
	if p.MaxDuration != nil {
		out.MaxDuration = p.MaxDuration.Duration
	}
	out.DNSPatterns = p.AllowedDNSNames
	return out
}

// Violation is a broken policy rule. Its message names the rule.
type Violation struct {
	// Rule is one of the Rule* constants.
	Rule string
	// Detail says what in the request broke the rule.
	Detail string
}

// Error implements error: `policy rule "<rule>": <detail>`.
func (v *Violation) Error() string { return fmt.Sprintf("policy rule %q: %s", v.Rule, v.Detail) }

// Check returns a *Violation for the first rule csr breaks when requested for
// duration (zero: no duration requested), or nil when the CSR is acceptable.
func (p Policy) Check(csr *x509.CertificateRequest, duration time.Duration) error {
	if v := p.checkKey(csr); v != nil {
		return v
	}
	if p.MaxDuration > 0 && duration > p.MaxDuration {
		return &Violation{RuleMaxDuration, fmt.Sprintf("requested duration %s exceeds the maximum %s", duration, p.MaxDuration)}
	}
	if len(p.DNSPatterns) > 0 {
		names := slices.Clone(csr.DNSNames)
		if cn := csr.Subject.CommonName; cn != "" && net.ParseIP(cn) == nil {
			names = append(names, cn)
		}
		for _, n := range names {
			if !p.dnsAllowed(n) {
				return &Violation{RuleDNSNames, fmt.Sprintf("DNS name %q matches none of the allowed patterns %s", n, strings.Join(p.DNSPatterns, ", "))}
			}
		}
	}
	return nil
}

func (p Policy) checkKey(csr *x509.CertificateRequest) *Violation {
	switch pub := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if !slices.Contains(p.Algorithms, v1alpha1.KeyAlgorithmRSA) {
			return p.algorithmViolation("RSA")
		}
		if bits := pub.N.BitLen(); bits < p.RSAMinBits {
			return &Violation{RuleRSAMinBits, fmt.Sprintf("RSA key is %d bits, minimum %d", bits, p.RSAMinBits)}
		}
	case *ecdsa.PublicKey:
		if !slices.Contains(p.Algorithms, v1alpha1.KeyAlgorithmECDSA) {
			return p.algorithmViolation("ECDSA")
		}
		curve := pub.Curve.Params().Name
		if !slices.Contains(p.Curves, v1alpha1.ECDSACurve(curve)) {
			return &Violation{RuleECDSACurve, fmt.Sprintf("ECDSA curve %s is not allowed, allowed: %s", curve, joinCurves(p.Curves))}
		}
	case ed25519.PublicKey:
		if !slices.Contains(p.Algorithms, v1alpha1.KeyAlgorithmEd25519) {
			return p.algorithmViolation("Ed25519")
		}
	default:
		return &Violation{RuleKeyAlgorithm, fmt.Sprintf("key type %T is not supported", csr.PublicKey)}
	}
	return nil
}

func (p Policy) algorithmViolation(alg string) *Violation {
	allowed := make([]string, len(p.Algorithms))
	for i, a := range p.Algorithms {
		allowed[i] = string(a)
	}
	return &Violation{RuleKeyAlgorithm, fmt.Sprintf("%s keys are not allowed, allowed: %s", alg, strings.Join(allowed, ", "))}
}

func joinCurves(cs []v1alpha1.ECDSACurve) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

func (p Policy) dnsAllowed(name string) bool {
	for _, pat := range p.DNSPatterns {
		if MatchDNS(pat, name) {
			return true
		}
	}
	return false
}

// MatchDNS reports whether name matches the glob pattern label by label,
// case-insensitively: both must have the same number of dot-separated labels
// and each name label must match the pattern label as a path.Match glob. So
// "*.example.com" matches "a.example.com" (and the wildcard name
// "*.example.com" itself) but not "a.b.example.com" or "example.com".
func MatchDNS(pattern, name string) bool {
	pl := strings.Split(strings.ToLower(strings.TrimSuffix(pattern, ".")), ".")
	nl := strings.Split(strings.ToLower(strings.TrimSuffix(name, ".")), ".")
	if len(pl) != len(nl) {
		return false
	}
	for i := range pl {
		if nl[i] == "" {
			return false
		}
		if ok, err := path.Match(pl[i], nl[i]); err != nil || !ok {
			return false
		}
	}
	return true
}
