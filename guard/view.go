// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
)

// finding is a genuine reason to (re-)issue or to be not ready.
type finding struct {
	reason, message string
}

// certView is what the guard knows about the certificate in the Secret,
// verified against the custody record.
type certView struct {
	// strict: tls.crt is not in the Secret; the view comes from annotations.
	strict bool
	// cert is the parsed leaf (nil in strict mode).
	cert *x509.Certificate
	// keySHA256 is the lower-case hex SHA-256 of the key's SubjectPublicKeyInfo.
	keySHA256           string
	notBefore, notAfter time.Time
}

// inCustody reports whether Keyward has marked the Secret as holding its
// key in custody (custody.ParsePlaceholder).
func inCustody(s *corev1.Secret) bool {
	_, ok := custody.ParsePlaceholder(s)
	return ok
}

// viewCertificate builds the verified view of the Secret's certificate. A
// non-empty second result says why the custody record does not match.
func viewCertificate(crt *cmapi.Certificate, s *corev1.Secret, meta custody.Metadata) (certView, string) {
	ann := s.Annotations
	annKey := strings.ToLower(ann[custody.AnnotationKeySHA256])
	if !strings.EqualFold(annKey, meta.KeySHA256) {
		return certView{}, "key fingerprint annotation differs from the custody record"
	}
	if meta.CertificateName != "" && meta.CertificateName != crt.Name {
		return certView{}, fmt.Sprintf("custody record belongs to Certificate %q", meta.CertificateName)
	}
	if annSerial, ok := ann[custody.AnnotationSerial]; ok && !custody.SerialEqual(annSerial, meta.Serial) {
		return certView{}, "serial annotation differs from the custody record"
	}

	if pemCrt := s.Data[corev1.TLSCertKey]; len(pemCrt) > 0 {
		cert, err := pki.DecodeX509CertificateBytes(pemCrt)
		if err != nil {
			return certView{}, "tls.crt does not decode"
		}
		certKey := custody.Fingerprint(cert.RawSubjectPublicKeyInfo)
		if certKey != annKey {
			return certView{}, "tls.crt's public key differs from the custody record's key fingerprint"
		}
		if cert.SerialNumber == nil || !custody.SerialEqual(cert.SerialNumber.Text(16), meta.Serial) {
			return certView{}, "tls.crt's serial differs from the custody record"
		}
		if !meta.NotAfter.IsZero() && !sameSecond(meta.NotAfter, cert.NotAfter) {
			return certView{}, "tls.crt's notAfter differs from the custody record"
		}
		return certView{cert: cert, keySHA256: certKey, notBefore: cert.NotBefore, notAfter: cert.NotAfter}, ""
	}

	// Strict mode: tls.crt was removed too; Keyward's annotations stand in for it.
	annSerial, ok := ann[custody.AnnotationSerial]
	if !ok || !custody.SerialEqual(annSerial, meta.Serial) {
		return certView{}, "strict mode: serial annotation missing or different from the custody record"
	}
	notBefore, err1 := time.Parse(time.RFC3339Nano, ann[custody.AnnotationNotBefore])
	notAfter, err2 := time.Parse(time.RFC3339Nano, ann[custody.AnnotationNotAfter])
	if err1 != nil || err2 != nil || !notBefore.Before(notAfter) {
		return certView{}, "strict mode: validity annotations missing or invalid"
	}
	if (!meta.NotBefore.IsZero() && !sameSecond(meta.NotBefore, notBefore)) ||
		(!meta.NotAfter.IsZero() && !sameSecond(meta.NotAfter, notAfter)) {
		return certView{}, "strict mode: validity annotations differ from the custody record"
	}
	return certView{strict: true, keySHA256: annKey, notBefore: notBefore, notAfter: notAfter}, ""
}

// sameSecond compares times at the resolution of X.509 validity and of
// metav1.Time (seconds).
func sameSecond(a, b time.Time) bool {
	return a.Unix() == b.Unix()
}
