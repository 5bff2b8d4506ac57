// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
)

func TestPlanErrors(t *testing.T) {
	t.Parallel()
	pair := scrubTestNewPair(t, "ecdsa")
	other := scrubTestNewPair(t, "ecdsa")
	ecKey := pair.Key.(*ecdsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "planning custody for secret team-a/web-tls: "
	tests := []struct {
		name    string
		mutate  func(s *corev1.Secret)
		wantErr error
		wantMsg string
	}{
		{
			name:    "not PEM",
			mutate:  func(s *corev1.Secret) { s.Data[custody.DataKey] = []byte("not a key") },
			wantErr: ErrMalformedKey,
			wantMsg: prefix + "tls.key: malformed private key: no PEM block",
		},
		{
			name: "garbage in PEM",
			mutate: func(s *corev1.Secret) {
				s.Data[custody.DataKey] = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}})
			},
			wantErr: ErrMalformedKey,
			wantMsg: prefix + "tls.key: malformed private key: EC PRIVATE KEY block: x509: failed to parse EC private key: asn1: structure error: tags don't match (16 vs {class:0 tag:1 length:2 isCompound:false}) {optional:false explicit:false application:false private:false defaultValue:<nil> tag:<nil> stringType:0 timeType:0 set:false omitEmpty:false} ecPrivateKey @2",
		},
		{
			name: "two keys",
			mutate: func(s *corev1.Secret) {
				s.Data[custody.DataKey] = append(bytes.Clone(pair.KeyPEM), other.KeyPEM...)
			},
			wantErr: ErrMalformedKey,
			wantMsg: prefix + "tls.key: malformed private key: more than one PEM block or trailing data",
		},
		{
			name: "certificate in tls.key",
			mutate: func(s *corev1.Secret) {
				s.Data[custody.DataKey] = pair.CertPEM
			},
			wantErr: ErrMalformedKey,
			wantMsg: prefix + `tls.key: malformed private key: unexpected PEM block type "CERTIFICATE"`,
		},
		{
			name: "PKCS#8 encrypted",
			mutate: func(s *corev1.Secret) {
				s.Data[custody.DataKey] = pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0}})
			},
			wantErr: ErrEncryptedKey,
			wantMsg: prefix + "tls.key: encrypted private key is not supported",
		},
		{
			name: "legacy encrypted PEM",
			mutate: func(s *corev1.Secret) {
				s.Data[custody.DataKey] = pem.EncodeToMemory(&pem.Block{
					Type:    "EC PRIVATE KEY",
					Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"},
					Bytes:   make([]byte, 32),
				})
			},
			wantErr: ErrEncryptedKey,
			wantMsg: prefix + "tls.key: encrypted private key is not supported",
		},
		{
			name:    "key without certificate",
			mutate:  func(s *corev1.Secret) { delete(s.Data, custody.DataCertificate) },
			wantErr: ErrMissingCertificate,
			wantMsg: prefix + "tls.crt: private key without certificate",
		},
		{
			name:    "key with blank certificate",
			mutate:  func(s *corev1.Secret) { s.Data[custody.DataCertificate] = []byte("\n ") },
			wantErr: ErrMissingCertificate,
			wantMsg: prefix + "tls.crt: private key without certificate",
		},
		{
			name:    "malformed certificate",
			mutate:  func(s *corev1.Secret) { s.Data[custody.DataCertificate] = []byte("junk") },
			wantErr: ErrMalformedCert,
			wantMsg: prefix + "tls.crt: malformed certificate: trailing data that is not PEM",
		},
		{
			name:    "key in tls.crt",
			mutate:  func(s *corev1.Secret) { s.Data[custody.DataCertificate] = pair.KeyPEM },
			wantErr: ErrMalformedCert,
			wantMsg: prefix + `tls.crt: malformed certificate: unexpected PEM block type "PRIVATE KEY"`,
		},
		{
			name:    "mismatched pair",
			mutate:  func(s *corev1.Secret) { s.Data[custody.DataCertificate] = other.CertPEM },
			wantErr: ErrKeyCertMismatch,
			wantMsg: prefix + "tls.key: private key does not match the certificate's public key: serial " + other.Cert.SerialNumber.Text(16),
		},
		{
			name: "extras without tls.key",
			mutate: func(s *corev1.Secret) {
				s.Data[custody.DataKey] = nil
				s.Data[DataKeyDER] = sec1
			},
			wantErr: ErrKeyBearingExtras,
			wantMsg: prefix + "key.der: key-bearing output formats are not supported under key custody: remove additionalOutputFormats and keystores from Certificate web and build them from the custody record",
		},
		{
			name: "additional output formats and keystores",
			mutate: func(s *corev1.Secret) {
				s.Data[DataKeyDER] = sec1
				s.Data[DataCombinedPEM] = append(bytes.Clone(pair.KeyPEM), pair.CertPEM...)
				s.Data[DataKeystoreP12] = []byte("p12")
				s.Data["truststore.p12"] = []byte("trust")
			},
			wantErr: ErrKeyBearingExtras,
			wantMsg: prefix + "key.der, tls-combined.pem, keystore.p12: key-bearing output formats are not supported under key custody: remove additionalOutputFormats and keystores from Certificate web and build them from the custody record",
		},
		{
			name: "keystore on a placeholder",
			mutate: func(s *corev1.Secret) {
				s.Data[custody.DataKey] = []byte{}
				s.Data[DataKeystoreJKS] = []byte("jks")
				s.Labels = map[string]string{custody.LabelCustody: custody.LabelCustodyVault}
				s.Annotations[custody.AnnotationPath] = "p"
				s.Annotations[custody.AnnotationVersion] = "1"
				s.Annotations[custody.AnnotationKeySHA256] = "x"
			},
			wantErr: ErrKeyBearingExtras,
			wantMsg: prefix + "keystore.jks: key-bearing output formats are not supported under key custody: remove additionalOutputFormats and keystores from Certificate web and build them from the custody record",
		},
		{
			name:    "over the apiserver's size limit",
			mutate:  func(s *corev1.Secret) { s.Data["padding"] = make([]byte, MaxSecretSize) },
			wantErr: ErrSecretTooLarge,
			wantMsg: prefix + fmt.Sprintf("secret data exceeds the Kubernetes limit of 1 MiB: data is %d bytes", MaxSecretSize+len(pair.KeyPEM)+2*len(pair.CertPEM)),
		},
		{
			name:    "Certificate's Secret pre-created as Opaque",
			mutate:  func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque },
			wantErr: ErrOpaqueTarget,
			wantMsg: prefix + "a Secret of type Opaque cannot be a custody placeholder: delete it so that cert-manager creates it again as kubernetes.io/tls for Certificate web",
		},
		{
			name:    "no name",
			mutate:  func(s *corev1.Secret) { s.Name = ""; s.GenerateName = "web-" },
			wantErr: ErrNoName,
			wantMsg: "planning custody for secret team-a/: secret has no name (generateName is not supported)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := scrubTestSecret(pair)
			tc.mutate(s)
			p, err := Plan(s, PlanOptions{Now: time.Now(), By: ByWebhook, Path: "custody/tls/team-a/web-tls"})
			if err == nil {
				t.Fatalf("Plan() = %v, want error", p.Action)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q does not wrap %q", err, tc.wantErr)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("error\n got %q\nwant %q", err, tc.wantMsg)
			}
			// Whatever goes wrong, the message must not leak the key.
			if strings.Contains(err.Error(), string(pair.KeyPEM[30:60])) {
				t.Errorf("error leaks key material")
			}
		})
	}
}

func TestPlanDecisions(t *testing.T) {
	t.Parallel()
	pair := scrubTestNewPair(t, "ecdsa")
	placeholder := func() *corev1.Secret {
		s := scrubTestSecret(pair)
		s.Data[custody.DataKey] = []byte{}
		s.Annotations[custody.AnnotationPath] = "custody/tls/team-a/web-tls"
		s.Annotations[custody.AnnotationVersion] = "3"
		s.Annotations[custody.AnnotationKeySHA256] = "abc"
		s.Labels = map[string]string{custody.LabelCustody: custody.LabelCustodyVault}
		return s
	}
	tests := []struct {
		name   string
		secret func() *corev1.Secret
		want   Action
	}{
		// An Opaque Secret holding a key is refused (TestPlanErrors); one without is left alone.
		{"opaque without a key", func() *corev1.Secret {
			s := scrubTestSecret(pair)
			s.Type, s.Data[custody.DataKey] = corev1.SecretTypeOpaque, nil
			return s
		}, ActionIgnore},
		{"opaque, not cert-manager's", func() *corev1.Secret {
			s := scrubTestSecret(pair)
			s.Type = corev1.SecretTypeOpaque
			delete(s.Annotations, AnnotationCertificateName)
			return s
		}, ActionIgnore},
		{"no certificate-name", func() *corev1.Secret {
			s := scrubTestSecret(pair)
			delete(s.Annotations, AnnotationCertificateName)
			return s
		}, ActionIgnore},
		{"next private key", func() *corev1.Secret {
			s := scrubTestSecret(pair)
			s.Labels = map[string]string{LabelNextPrivateKey: "true"}
			return s
		}, ActionIgnore},
		{"empty key, no custody (awaiting re-issue)", func() *corev1.Secret {
			s := scrubTestSecret(pair)
			s.Data[custody.DataKey] = nil
			return s
		}, ActionIgnore},
		{"placeholder", placeholder, ActionAlreadyScrubbed},
		{"placeholder with cert-only combined PEM", func() *corev1.Secret {
			s := placeholder()
			s.Data[DataCombinedPEM] = append([]byte("\n"), pair.CertPEM...)
			s.Data[DataKeyDER] = []byte{}
			return s
		}, ActionAlreadyScrubbed},
		{"key-bearing", func() *corev1.Secret { return scrubTestSecret(pair) }, ActionScrub},
		{"placeholder with a new key", func() *corev1.Secret {
			s := placeholder()
			s.Data[custody.DataKey] = pair.KeyPEM
			return s
		}, ActionScrub},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Plan(tc.secret(), PlanOptions{Now: time.Now(), By: ByWatcher, Path: "p"})
			if err != nil {
				t.Fatal(err)
			}
			if p.Action != tc.want {
				t.Errorf("Action = %v, want %v (%s)", p.Action, tc.want, p.Reason)
			}
		})
	}
}

func TestPlanScrub(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000+int64(time.Now().Nanosecond()%1000), 123456789)
	for _, alg := range []string{"ecdsa", "rsa", "ed25519"} {
		for _, strict := range []bool{false, true} {
			t.Run(alg+map[bool]string{true: "/strict", false: "/default"}[strict], func(t *testing.T) {
				t.Parallel()
				pair := scrubTestNewPair(t, alg)
				s := scrubTestSecret(pair)
				s.Data[DataCombinedPEM] = append([]byte("\n"), pair.CertPEM...) // no key: kept
				s.Data["truststore.p12"] = []byte("trust")
				orig := s.DeepCopy()

				p, err := Plan(s, PlanOptions{Strict: strict, Now: now, By: ByWebhook, Path: "custody/tls/team-a/web-tls"})
				if err != nil {
					t.Fatal(err)
				}
				if p.Action != ActionScrub {
					t.Fatalf("Action = %v", p.Action)
				}
				sum := sha256.Sum256(pair.Cert.RawSubjectPublicKeyInfo)
				fp := hex.EncodeToString(sum[:])
				wantMeta := custody.Metadata{
					CertificateName: "web", IssuerName: "vault", IssuerKind: "VaultClusterIssuer", IssuerGroup: "keyward.io",
					Serial: pair.Cert.SerialNumber.Text(16), NotBefore: pair.Cert.NotBefore.UTC(), NotAfter: pair.Cert.NotAfter.UTC(),
					KeySHA256: fp,
				}
				if p.Record.Meta != wantMeta {
					t.Errorf("Meta = %+v\nwant %+v", p.Record.Meta, wantMeta)
				}
				if p.Record.Namespace != "team-a" || p.Record.Name != "web-tls" ||
					!bytes.Equal(p.Record.Key, pair.KeyPEM) || !bytes.Equal(p.Record.Certificate, pair.CertPEM) || !bytes.Equal(p.Record.CA, pair.CertPEM) {
					t.Errorf("Record content differs from the Secret's")
				}

				got := p.Apply(s, 7)
				if !maps.EqualFunc(s.Data, orig.Data, bytes.Equal) || !maps.Equal(s.Annotations, orig.Annotations) {
					t.Errorf("Apply modified its input")
				}
				wantKeys := []string{custody.DataCA, custody.DataCertificate, custody.DataKey, DataCombinedPEM, "truststore.p12"}
				if k := slices.Sorted(maps.Keys(got.Data)); !slices.Equal(k, slices.Sorted(slices.Values(wantKeys))) {
					t.Errorf("data keys = %v, want %v", k, wantKeys)
				}
				if v, ok := got.Data[custody.DataKey]; !ok || len(v) != 0 {
					t.Errorf("tls.key = %d bytes (present %v), want present and empty", len(v), ok)
				}
				if strict {
					if len(got.Data[custody.DataCertificate]) != 0 || len(got.Data[custody.DataCA]) != 0 {
						t.Errorf("strict mode kept certificates")
					}
				} else if !bytes.Equal(got.Data[custody.DataCertificate], pair.CertPEM) || !bytes.Equal(got.Data[custody.DataCA], pair.CertPEM) {
					t.Errorf("certificates not kept")
				}
				wantAnn := map[string]string{
					AnnotationCertificateName: "web", annotationIssuerName: "vault", annotationIssuerKind: "VaultClusterIssuer", annotationIssuerGroup: "keyward.io",
					custody.AnnotationPath:       "custody/tls/team-a/web-tls",
					custody.AnnotationVersion:    "7",
					custody.AnnotationKeySHA256:  fp,
					custody.AnnotationScrubbedAt: now.UTC().Format(time.RFC3339Nano),
					custody.AnnotationScrubbedBy: "webhook",
					custody.AnnotationSerial:     pair.Cert.SerialNumber.Text(16),
				}
				if strict {
					wantAnn[custody.AnnotationNotBefore] = pair.Cert.NotBefore.UTC().Format(time.RFC3339)
					wantAnn[custody.AnnotationNotAfter] = pair.Cert.NotAfter.UTC().Format(time.RFC3339)
				}
				if !maps.Equal(got.Annotations, wantAnn) {
					t.Errorf("annotations = %v\nwant %v", got.Annotations, wantAnn)
				}
				if !maps.Equal(got.Labels, map[string]string{custody.LabelCustody: custody.LabelCustodyVault}) {
					t.Errorf("labels = %v", got.Labels)
				}
				// The result is a placeholder: planning it again is a no-op.
				again, err := Plan(got, PlanOptions{Now: now, By: ByWatcher, Path: "x"})
				if err != nil || again.Action != ActionAlreadyScrubbed {
					t.Errorf("re-plan = %v, %v; want already scrubbed", again, err)
				}
			})
		}
	}
}

func TestPlanLegacyKeyEncodings(t *testing.T) {
	t.Parallel()
	rsaPair := scrubTestNewPair(t, "rsa")
	ecPair := scrubTestNewPair(t, "ecdsa")
	sec1, err := x509.MarshalECPrivateKey(ecPair.Key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pair scrubTestKeyPair
		key  []byte
	}{
		{"PKCS#1 RSA", rsaPair, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaPair.Key.(*rsa.PrivateKey))})},
		{"SEC 1 EC", ecPair, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := scrubTestSecret(tc.pair)
			s.Data[custody.DataKey] = tc.key
			p, err := Plan(s, PlanOptions{Now: time.Now(), By: ByWatcher, Path: "p"})
			if err != nil {
				t.Fatal(err)
			}
			if p.Action != ActionScrub || !bytes.Equal(p.Record.Key, tc.key) {
				t.Errorf("Action = %v; key kept verbatim: %v", p.Action, bytes.Equal(p.Record.Key, tc.key))
			}
		})
	}
}
