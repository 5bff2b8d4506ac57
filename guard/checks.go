// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
	"strconv"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	"github.com/keyward-io/keyward/custody"
)

// checkChain re-runs, in cert-manager's order, the trigger/readiness
// checks that come after the private-key checks and do not need the key:
// issuer annotations, certificate-name annotation, key type and size, the
// current request's public key, and the spec. It returns the first genuine
// finding, or a non-empty reason why the checks cannot be run on public data.
func checkChain(in Input, view certView) (*finding, string) {
	crt, s := in.New, in.Secret
	if !apiutil.SecretIssuerAnnotationsMatch(s, crt.Spec.IssuerRef) {
		return &finding{
			reason: cmReasonIncorrectIssuer,
			message: fmt.Sprintf("Issuing certificate as Secret was previously issued by %s/%s (group %q), not by the Certificate's issuer",
				s.Annotations[cmapi.IssuerKindAnnotationKey], s.Annotations[cmapi.IssuerNameAnnotationKey], s.Annotations[cmapi.IssuerGroupAnnotationKey]),
		}, ""
	}
	if name, ok := s.Annotations[cmapi.CertificateNameKey]; ok && name != crt.Name {
		return &finding{
			reason:  cmReasonIncorrectCertificate,
			message: fmt.Sprintf("Secret was issued for Certificate %q", name),
		}, ""
	}

	// The public key of the pair held in Vault: from tls.crt, or in strict
	// mode from the current request's CSR once its fingerprint proves it is
	// the same key.
	var pub crypto.PublicKey
	var csr *x509.CertificateRequest
	current := in.CurrentRequest
	if current == nil && view.strict {
		current, csr = requestForKey(in.Requests, view.keySHA256)
	}
	if current != nil && csr == nil {
		var err error
		csr, err = pki.DecodeX509CertificateRequestBytes(current.Spec.Request)
		if err != nil {
			return &finding{
				reason:  cmReasonInvalidCertificateRequest,
				message: fmt.Sprintf("Current CertificateRequest %q does not decode: %v", current.Name, err),
			}, ""
		}
	}
	switch {
	case view.cert != nil:
		pub = view.cert.PublicKey
	case csr != nil && custody.Fingerprint(csr.RawSubjectPublicKeyInfo) == view.keySHA256:
		pub = csr.PublicKey
	case csr == nil:
		return nil, "strict mode without a CertificateRequest for the key in custody: the key type and the spec cannot be checked on public data"
	}

	if pub != nil {
		if violations := publicKeyMatchesSpec(pub, crt.Spec); len(violations) > 0 {
			return &finding{
				reason:  ReasonSecretMismatch,
				message: fmt.Sprintf("Key pair held in Vault is not up to date for spec: %v", violations),
			}, ""
		}
	}
	if csr != nil {
		if custody.Fingerprint(csr.RawSubjectPublicKeyInfo) != view.keySHA256 {
			return &finding{
				reason:  ReasonSecretMismatch,
				message: fmt.Sprintf("Key pair held in Vault does not match the current CertificateRequest %q", current.Name),
			}, ""
		}
		// As cert-manager does, a request that cannot be compared does not
		// trigger a re-issuance on its own.
		if violations, err := pki.RequestMatchesSpec(current, crt.Spec); err == nil && len(violations) > 0 {
			return &finding{
				reason:  cmReasonRequestChanged,
				message: fmt.Sprintf("Fields on existing CertificateRequest resource not up to date: %v", violations),
			}, ""
		}
		return nil, ""
	}
	//nolint:staticcheck // cert-manager's own fallback when the current request is gone.
	if violations := pki.FuzzyX509AltNamesMatchSpec(view.cert, crt.Spec); len(violations) > 0 {
		return &finding{
			reason:  ReasonSecretMismatch,
			message: fmt.Sprintf("Issuing certificate as the issued certificate is not up to date for spec: %v", violations),
		}, ""
	}
	return nil, ""
}

// requestForKey returns the request with the highest revision among
// those whose CSR carries the key with the given fingerprint, and its CSR.
func requestForKey(reqs []*cmapi.CertificateRequest, keySHA256 string) (*cmapi.CertificateRequest, *x509.CertificateRequest) {
	var (
		best     *cmapi.CertificateRequest
		bestCSR  *x509.CertificateRequest
		bestRevN = -1
	)
	for _, r := range reqs {
		if r == nil {
			continue
		}
		csr, err := pki.DecodeX509CertificateRequestBytes(r.Spec.Request)
		if err != nil || custody.Fingerprint(csr.RawSubjectPublicKeyInfo) != keySHA256 {
			continue
		}
		rev, err := strconv.Atoi(r.Annotations[cmapi.CertificateRequestRevisionAnnotationKey])
		if err != nil {
			rev = 0
		}
		if rev > bestRevN {
			best, bestCSR, bestRevN = r, csr, rev
		}
	}
	return best, bestCSR
}

// publicKeyMatchesSpec lists the spec.privateKey fields the public key
// does not satisfy, with cert-manager's defaults (RSA 2048, ECDSA P-256).
// Unlike pki.PrivateKeyMatchesSpec it needs only the public half and never
// panics on an unknown algorithm.
func publicKeyMatchesSpec(pub crypto.PublicKey, spec cmapi.CertificateSpec) []string {
	var alg cmapi.PrivateKeyAlgorithm
	size := 0
	if spec.PrivateKey != nil {
		alg, size = spec.PrivateKey.Algorithm, spec.PrivateKey.Size
	}
	switch alg {
	case "", cmapi.RSAKeyAlgorithm:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k.N == nil {
			return []string{"spec.privateKey.algorithm"}
		}
		if size <= 0 {
			size = pki.MinRSAKeySize
		}
		if k.N.BitLen() != size {
			return []string{"spec.privateKey.size"}
		}
	case cmapi.ECDSAKeyAlgorithm:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve == nil {
			return []string{"spec.privateKey.algorithm"}
		}
		if size <= 0 {
			size = pki.ECCurve256
		}
		if k.Curve.Params().BitSize != size {
			return []string{"spec.privateKey.size"}
		}
	case cmapi.Ed25519KeyAlgorithm:
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return []string{"spec.privateKey.algorithm"}
		}
	default:
		return []string{"spec.privateKey.algorithm"}
	}
	return nil
}

// renewalDue reports a genuine Renewing reason when the certificate's
// renewal time has come. The renewal time is the one cert-manager's readiness
// controller stored (it may come from ACME ARI) when it belongs to this very
// certificate, else it is computed from the validity with pki.RenewalTime,
// as cert-manager's trigger does.
func renewalDue(in Input, view certView) *finding {
	spec := in.New.Spec
	if spec.Renewal != nil && spec.Renewal.Policy == cmapi.CertificateRenewalPolicyDisabled {
		return nil
	}
	var due []time.Time
	if in.Old != nil && in.Old.Status.RenewalTime != nil && in.Old.Status.NotAfter != nil &&
		sameSecond(in.Old.Status.NotAfter.Time, view.notAfter) {
		due = append(due, in.Old.Status.RenewalTime.Time)
	}
	// On error pki.RenewalTime still returns its best estimate; cert-manager
	// renews on that estimate too (WindowError becomes Renewing).
	if rt, _ := pki.RenewalTime(view.notBefore, view.notAfter, spec.RenewBefore, spec.RenewBeforePercentage, spec.Renewal); rt != nil {
		due = append(due, rt.Time)
	}
	if len(due) == 0 {
		return nil
	}
	at := slices.MinFunc(due, func(a, b time.Time) int { return a.Compare(b) })
	if in.Now.Before(at) {
		return nil
	}
	return &finding{
		reason:  cmReasonRenewing,
		message: fmt.Sprintf("Renewing certificate as renewal was scheduled at %s (its private key is held in Vault)", at.UTC().Format(time.RFC3339)),
	}
}
