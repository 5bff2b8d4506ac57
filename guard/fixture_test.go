// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	mrand "math/rand/v2"
	"strconv"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// fix is one Certificate in custody, consistent in every respect: the
// Secret holds tls.crt (or, strict, Keyward's annotations), the custody
// record matches, the current CertificateRequest was signed by the same key
// and asks for the same names, and the certificate is 10 days into a 90 day
// lifetime (renewal in 50 days).
type fix struct {
	now    time.Time
	key    crypto.Signer
	cert   *x509.Certificate
	crt    *cmapi.Certificate
	secret *corev1.Secret
	meta   custody.Metadata
	cr     *cmapi.CertificateRequest
	// otherCSR asks for the same names with another key.
	otherCSR []byte
}

// testNow is a random base time, logged so a failure can be replayed.
func testNow(t testing.TB) time.Time {
	t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(mrand.Int64N(int64(10 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	t.Logf("base time %s", now.Format(time.RFC3339))
	return now
}

func testECKey(t testing.TB, curve elliptic.Curve) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatalf("generating key: %v", err)
	}
	return k
}

// testCert self-signs a leaf for key with the given names and validity.
func testCert(t testing.TB, key crypto.Signer, dnsNames []string, notBefore, notAfter time.Time) (*x509.Certificate, []byte) {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("serial: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{},
		DNSNames:     dnsNames,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("creating certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing certificate: %v", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func testCSR(t testing.TB, key crypto.Signer, dnsNames []string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: dnsNames}, key)
	if err != nil {
		t.Fatalf("creating CSR: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func testFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// newGuardFix builds the consistent fixture for key (ECDSA P-256 if nil),
// with keyAlg/keySize as the Certificate's spec.privateKey.
func newGuardFix(t testing.TB, now time.Time, key crypto.Signer, keyAlg cmapi.PrivateKeyAlgorithm, keySize int) *fix {
	t.Helper()
	if key == nil {
		key = testECKey(t, elliptic.P256())
		keyAlg, keySize = cmapi.ECDSAKeyAlgorithm, 256
	}
	names := []string{"web.example.com"}
	notBefore := now.Add(-10 * 24 * time.Hour)
	notAfter := notBefore.Add(90 * 24 * time.Hour)
	cert, certPEM := testCert(t, key, names, notBefore, notAfter)
	fp := testFingerprint(cert)
	serial := cert.SerialNumber.Text(16)
	issuerRef := cmmeta.IssuerReference{Name: "ca", Kind: "Issuer", Group: "cert-manager.io"}

	nb, na := metav1.NewTime(notBefore), metav1.NewTime(notAfter)
	rt := metav1.NewTime(notAfter.Add(-30 * 24 * time.Hour))
	readySince := metav1.NewTime(notBefore.Add(time.Minute))
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", UID: types.UID("uid-web"), Generation: 2},
		Spec: cmapi.CertificateSpec{
			SecretName: "web-tls",
			DNSNames:   names,
			IssuerRef:  issuerRef,
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: keyAlg, Size: keySize},
		},
		Status: cmapi.CertificateStatus{
			Revision:    ptr.To(1),
			NotBefore:   &nb,
			NotAfter:    &na,
			RenewalTime: &rt,
			Conditions: []cmapi.CertificateCondition{{
				Type:               cmapi.CertificateConditionReady,
				Status:             cmmeta.ConditionTrue,
				Reason:             "Ready",
				Message:            "Certificate is up to date and has not expired",
				LastTransitionTime: &readySince,
				ObservedGeneration: 2,
			}},
		},
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "web-tls",
			Namespace: "apps",
			Labels:    map[string]string{custody.LabelCustody: custody.LabelCustodyVault},
			Annotations: map[string]string{
				cmapi.CertificateNameKey:       "web",
				cmapi.IssuerNameAnnotationKey:  "ca",
				cmapi.IssuerKindAnnotationKey:  "Issuer",
				cmapi.IssuerGroupAnnotationKey: "cert-manager.io",
				custody.AnnotationPath:         "secret/keyward/apps/web-tls",
				custody.AnnotationVersion:      "3",
				custody.AnnotationKeySHA256:    fp,
				custody.AnnotationSerial:       serial,
				custody.AnnotationScrubbedBy:   "webhook",
			},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSPrivateKeyKey: {},
			corev1.TLSCertKey:       certPEM,
			"ca.crt":                certPEM,
		},
	}
	meta := custody.Metadata{
		CertificateName: "web",
		IssuerName:      "ca",
		IssuerKind:      "Issuer",
		IssuerGroup:     "cert-manager.io",
		Serial:          serial,
		NotBefore:       notBefore.UTC(),
		NotAfter:        notAfter.UTC(),
		KeySHA256:       fp,
		Version:         3,
	}
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{
			Name:            "web-1",
			Namespace:       "apps",
			Annotations:     map[string]string{cmapi.CertificateRequestRevisionAnnotationKey: strconv.Itoa(1)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(crt, cmapi.SchemeGroupVersion.WithKind("Certificate"))},
		},
		Spec: cmapi.CertificateRequestSpec{
			Request:   testCSR(t, key, names),
			IssuerRef: issuerRef,
		},
	}
	otherCSR := testCSR(t, testECKey(t, elliptic.P256()), names)
	return &fix{now: now, key: key, cert: cert, crt: crt, secret: secret, meta: meta, cr: cr, otherCSR: otherCSR}
}

// makeStrict turns the Secret into a strict-mode placeholder: no tls.crt,
// no ca.crt, validity in annotations.
func (f *fix) makeStrict() {
	f.secret.Data[corev1.TLSCertKey] = []byte{}
	f.secret.Data["ca.crt"] = []byte{}
	f.secret.Annotations[custody.AnnotationNotBefore] = f.cert.NotBefore.UTC().Format(time.RFC3339)
	f.secret.Annotations[custody.AnnotationNotAfter] = f.cert.NotAfter.UTC().Format(time.RFC3339)
}

// input is the guard input for an update that applies mutate to a copy of
// the stored Certificate.
func (f *fix) input(mutate func(newCrt *cmapi.Certificate)) Input {
	newCrt := f.crt.DeepCopy()
	if mutate != nil {
		mutate(newCrt)
	}
	meta := f.meta
	return Input{Old: f.crt, New: newCrt, Secret: f.secret, Custody: &meta, CurrentRequest: f.cr, Now: f.now}
}

// setCond sets a condition the way cert-manager's SetCertificateCondition
// does: same status keeps lastTransitionTime, a new status transitions at now.
func setCond(crt *cmapi.Certificate, now time.Time, typ cmapi.CertificateConditionType, status cmmeta.ConditionStatus, reason, message string) {
	t := metav1.NewTime(now)
	c := cmapi.CertificateCondition{Type: typ, Status: status, Reason: reason, Message: message, LastTransitionTime: &t, ObservedGeneration: crt.Generation}
	for i := range crt.Status.Conditions {
		if crt.Status.Conditions[i].Type == typ {
			if crt.Status.Conditions[i].Status == status {
				c.LastTransitionTime = crt.Status.Conditions[i].LastTransitionTime
			}
			crt.Status.Conditions[i] = c
			return
		}
	}
	crt.Status.Conditions = append(crt.Status.Conditions, c)
}

// Messages cert-manager v1.21.2 uses with the redaction-induced reasons.
const (
	msgNoKey        = "Issuing certificate as Secret does not contain a private key"
	msgKeyVsCR      = "Secret contains a private key that does not match the current CertificateRequest"
	msgInvalidKey   = "Issuing certificate as Secret contains invalid private key data: error decoding private key PEM block"
	msgSpecOnSecret = "Issuing certificate as Existing issued Secret is not up to date for spec: [spec.dnsNames]"
)

func issuingRedacted(c *cmapi.Certificate, now time.Time) {
	setCond(c, now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, ReasonMissingData, msgNoKey)
}

func readyRedacted(c *cmapi.Certificate, now time.Time) {
	setCond(c, now, cmapi.CertificateConditionReady, cmmeta.ConditionFalse, ReasonMissingData, msgNoKey)
}
