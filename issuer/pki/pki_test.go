// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"reflect"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

func key(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRequestParams(t *testing.T) {
	t.Parallel()
	spiffe, _ := url.Parse("spiffe://example.com/ns/app/sa/web")
	tests := []struct {
		name string
		tmpl x509.CertificateRequest
		ttl  time.Duration
		want map[string]any
	}{
		{
			name: "all SAN kinds and ttl",
			tmpl: x509.CertificateRequest{
				Subject:        pkix.Name{CommonName: "web.example.com"},
				DNSNames:       []string{"web.example.com", "www.example.com"},
				EmailAddresses: []string{"ops@example.com"},
				IPAddresses:    []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("::1")},
				URIs:           []*url.URL{spiffe},
			},
			ttl: 90 * time.Minute,
			want: map[string]any{
				"common_name": "web.example.com",
				"alt_names":   "web.example.com,www.example.com,ops@example.com",
				"ip_sans":     "10.0.0.1,::1",
				"uri_sans":    "spiffe://example.com/ns/app/sa/web",
				"ttl":         "5400s",
			},
		},
		{
			name: "no CN, no ttl: role defaults apply",
			tmpl: x509.CertificateRequest{DNSNames: []string{"a.example.com"}},
			want: map[string]any{"alt_names": "a.example.com"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			der, err := x509.CreateCertificateRequest(rand.Reader, &tc.tmpl, key(t))
			if err != nil {
				t.Fatal(err)
			}
			csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
			csr, err := ParseCSR(csrPEM)
			if err != nil {
				t.Fatal(err)
			}
			got := RequestFromCSR(csrPEM, csr, tc.ttl).Params()
			tc.want["csr"] = string(csrPEM)
			tc.want["format"] = "pem"
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Params() =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

func TestParseCSRRejectsGarbage(t *testing.T) {
	t.Parallel()
	for _, in := range [][]byte{nil, []byte("not pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2, 3}}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})} {
		if _, err := ParseCSR(in); err == nil {
			t.Errorf("ParseCSR(%q) succeeded", in)
		}
	}
}

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  string
}

func issue(t *testing.T, parent *testCA, cn string, isCA bool) *testCA {
	t.Helper()
	k := key(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	signer, parentCert := k, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, k.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: k, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func TestBundleFromResponse(t *testing.T) {
	t.Parallel()
	root := issue(t, nil, "root", true)
	inter := issue(t, root, "intermediate", true)
	leaf := issue(t, inter, "leaf", false)
	tests := []struct {
		name      string
		data      map[string]any
		wantChain string
		wantCA    string
		wantErr   bool
	}{
		{
			name:      "ca_chain with root: root goes to ca",
			data:      map[string]any{"certificate": leaf.pem, "issuing_ca": inter.pem, "ca_chain": []any{inter.pem, root.pem}, "serial_number": "aa:bb"},
			wantChain: leaf.pem + inter.pem, wantCA: root.pem,
		},
		{
			name:      "ca_chain without root: issuing CA goes to ca",
			data:      map[string]any{"certificate": leaf.pem, "issuing_ca": inter.pem, "ca_chain": []any{inter.pem}},
			wantChain: leaf.pem + inter.pem, wantCA: inter.pem,
		},
		{
			name:      "no ca_chain: issuing_ca used",
			data:      map[string]any{"certificate": leaf.pem, "issuing_ca": inter.pem},
			wantChain: leaf.pem + inter.pem, wantCA: inter.pem,
		},
		{
			name:      "signed directly by the root",
			data:      map[string]any{"certificate": inter.pem, "issuing_ca": root.pem, "ca_chain": []any{root.pem}},
			wantChain: inter.pem, wantCA: root.pem,
		},
		{name: "no certificate", data: map[string]any{"issuing_ca": inter.pem}, wantErr: true},
		{name: "garbage ca_chain", data: map[string]any{"certificate": leaf.pem, "ca_chain": []any{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := BundleFromResponse(tc.data)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if string(b.Chain) != tc.wantChain {
				t.Errorf("Chain =\n%s\nwant\n%s", b.Chain, tc.wantChain)
			}
			if string(b.CA) != tc.wantCA {
				t.Errorf("CA =\n%s\nwant\n%s", b.CA, tc.wantCA)
			}
		})
	}
}

type fakeWriter struct {
	path string
	data map[string]any
	resp *vaultapi.Secret
	err  error
}

func (f *fakeWriter) WriteWithContext(_ context.Context, path string, data map[string]any) (*vaultapi.Secret, error) {
	f.path, f.data = path, data
	return f.resp, f.err
}

func TestVaultSigner(t *testing.T) {
	t.Parallel()
	root := issue(t, nil, "root", true)
	leaf := issue(t, root, "leaf", false)
	w := &fakeWriter{resp: &vaultapi.Secret{Data: map[string]any{"certificate": leaf.pem, "issuing_ca": root.pem}}}
	s := &VaultSigner{Logical: w, Path: "pki/sign/web"}
	b, err := s.Sign(context.Background(), Request{CSRPEM: []byte("CSR"), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if w.path != "pki/sign/web" || w.data["ttl"] != "3600s" || w.data["csr"] != "CSR" {
		t.Errorf("wrote %s %v", w.path, w.data)
	}
	if !bytes.Equal(b.CA, []byte(root.pem)) {
		t.Errorf("CA = %s", b.CA)
	}
	rerr := &vaultapi.ResponseError{StatusCode: 400, Errors: []string{"denied"}}
	w.err = rerr
	if _, err := s.Sign(context.Background(), Request{}); !errors.Is(err, rerr) {
		t.Errorf("Sign error = %v, want it to wrap the Vault response error", err)
	}
}
