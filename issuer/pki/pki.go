// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package pki is the issuer's narrow view of Vault's PKI secrets engine: turn
// a CSR into the parameters of `<mount>/sign/<role>` and the response into a
// chain and a CA, nothing else.
package pki

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// Request is what the issuer asks Vault to sign. Build it with RequestFromCSR.
type Request struct {
	// CSRPEM is the PEM-encoded CSR, sent as is.
	CSRPEM []byte
	// CommonName is the CSR's subject common name (may be empty).
	CommonName string
	// AltNames are the CSR's DNS names and email addresses.
	AltNames []string
	// IPSANs are the CSR's IP addresses.
	IPSANs []string
	// URISANs are the CSR's URIs.
	URISANs []string
	// TTL is the requested lifetime; zero leaves it to the role's default.
	// Vault caps it at the role's max_ttl.
	TTL time.Duration
}

// ParseCSR decodes a PEM CSR and checks its signature.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, errors.New("parsing CSR: no PEM CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("checking CSR signature: %w", err)
	}
	return csr, nil
}

// RequestFromCSR maps a parsed CSR (and its PEM) and a lifetime to a Request.
func RequestFromCSR(csrPEM []byte, csr *x509.CertificateRequest, ttl time.Duration) Request {
	r := Request{CSRPEM: csrPEM, CommonName: csr.Subject.CommonName, TTL: ttl}
	r.AltNames = append(r.AltNames, csr.DNSNames...)
	r.AltNames = append(r.AltNames, csr.EmailAddresses...)
	for _, ip := range csr.IPAddresses {
		r.IPSANs = append(r.IPSANs, ip.String())
	}
	for _, u := range csr.URIs {
		r.URISANs = append(r.URISANs, u.String())
	}
	return r
}

// Params returns the body of the Vault sign call. Empty lists are left out
// so the role's defaults apply.
func (r Request) Params() map[string]any {
	p := map[string]any{
		"csr":    string(r.CSRPEM),
		"format": "pem",
	}
	if r.CommonName != "" {
		p["common_name"] = r.CommonName
	}
	if len(r.AltNames) > 0 {
		p["alt_names"] = strings.Join(r.AltNames, ",")
	}
	if len(r.IPSANs) > 0 {
		p["ip_sans"] = strings.Join(r.IPSANs, ",")
	}
	if len(r.URISANs) > 0 {
		p["uri_sans"] = strings.Join(r.URISANs, ",")
	}
	if r.TTL > 0 {
		p["ttl"] = fmt.Sprintf("%ds", int64(r.TTL/time.Second))
	}
	return p
}

// Bundle is a signed certificate as cert-manager stores it.
type Bundle struct {
	// Chain is the leaf followed by the intermediates, PEM (status.certificate).
	Chain []byte
	// CA is the top of the chain Vault knows: the root when Vault returned it,
	// otherwise the issuing CA, PEM (status.ca).
	CA []byte
	// Serial is the leaf's serial number as Vault formats it.
	Serial string
}

// Signer signs requests. Implementations return errors whose Vault status
// code the issuer can read (see internal/vault.StatusCode).
type Signer interface {
	// Sign asks the CA to sign r.
	Sign(ctx context.Context, r Request) (*Bundle, error)
}

// Writer is the part of *vaultapi.Logical a VaultSigner uses.
type Writer interface {
	WriteWithContext(ctx context.Context, path string, data map[string]any) (*vaultapi.Secret, error)
}

// VaultSigner signs with one Vault PKI sign path.
type VaultSigner struct {
	// Logical performs the write, e.g. client.Logical().
	Logical Writer
	// Path is `<mount>/sign/<role>` or `<mount>/issuer/<ref>/sign/<role>`.
	Path string
}

// Sign implements Signer.
func (s *VaultSigner) Sign(ctx context.Context, r Request) (*Bundle, error) {
	sec, err := s.Logical.WriteWithContext(ctx, s.Path, r.Params())
	if err != nil {
		return nil, fmt.Errorf("signing with vault %s: %w", s.Path, err)
	}
	if sec == nil {
		return nil, fmt.Errorf("signing with vault %s: empty response", s.Path)
	}
	b, err := BundleFromResponse(sec.Data)
	if err != nil {
		return nil, fmt.Errorf("signing with vault %s: %w", s.Path, err)
	}
	return b, nil
}

// BundleFromResponse builds a Bundle from the data of a sign response
// (certificate, issuing_ca, ca_chain, serial_number). Self-signed
// certificates in ca_chain are roots: they go to CA, never into Chain.
func BundleFromResponse(data map[string]any) (*Bundle, error) {
	leafPEM, _ := data["certificate"].(string)
	leaf, err := parseCerts(leafPEM)
	if err != nil || len(leaf) == 0 {
		return nil, fmt.Errorf("response has no usable certificate: %v", err)
	}
	var cas []*x509.Certificate
	if raw, ok := data["ca_chain"].([]any); ok {
		for _, c := range raw {
			s, _ := c.(string)
			certs, err := parseCerts(s)
			if err != nil {
				return nil, fmt.Errorf("response has an unparsable ca_chain entry: %w", err)
			}
			cas = append(cas, certs...)
		}
	}
	if len(cas) == 0 {
		issuing, _ := data["issuing_ca"].(string)
		if cas, err = parseCerts(issuing); err != nil {
			return nil, fmt.Errorf("response has an unparsable issuing_ca: %w", err)
		}
	}
	b := &Bundle{}
	b.Serial, _ = data["serial_number"].(string)
	var chain bytes.Buffer
	for _, c := range leaf[:1] {
		chain.Write(encode(c))
	}
	var root *x509.Certificate
	for _, c := range cas {
		if c.Equal(leaf[0]) {
			continue
		}
		if isSelfSigned(c) {
			root = c
			continue
		}
		chain.Write(encode(c))
	}
	b.Chain = chain.Bytes()
	switch {
	case root != nil:
		b.CA = encode(root)
	case len(cas) > 0:
		b.CA = encode(cas[len(cas)-1])
	}
	return b, nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func encode(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func parseCerts(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}
