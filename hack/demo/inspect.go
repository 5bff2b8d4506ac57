// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }

// verify parses a PEM chain (leaf first) and verifies it to root.
func verify(chain, root []byte) (*x509.Certificate, bool, error) {
	var certs []*x509.Certificate
	for rest := chain; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, false, fmt.Errorf("parsing custody certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, false, fmt.Errorf("custody record holds no certificate")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM(root)
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return certs[0], err == nil, nil
}

// keyMatches reports whether a PEM private key pairs with the certificate.
func keyMatches(keyPEM []byte, cert *x509.Certificate) bool {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return false
	}
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(b.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
				return false
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(signer.Public())
}

// histogramSummary prints count and mean of a Keyward histogram.
func histogramSummary(st *keyward.Stack, name string) string {
	mfs, err := st.Registry.Gather()
	if err != nil {
		return "unavailable: " + err.Error()
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var parts []string
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h.GetSampleCount() == 0 {
				continue
			}
			label := ""
			for _, l := range m.GetLabel() {
				label += l.GetName() + "=" + l.GetValue() + " "
			}
			parts = append(parts, fmt.Sprintf("%s%d writes, mean %.2f ms", label, h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount())))
		}
		if len(parts) > 0 {
			return fmt.Sprint(parts)
		}
	}
	return "no observations"
}
