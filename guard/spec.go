// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"crypto/x509"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// CertificateMatchesSpec lists what of spec an issued certificate does not
// satisfy, on public data only: its key algorithm and size
// (spec.privateKey, cert-manager's defaults applied) and its names (common
// name, DNS names, IP addresses, URIs, e-mail addresses, compared the way
// cert-manager compares a certificate whose request is gone). Empty means
// cert-manager would accept cert for spec without a new request; package
// adopt uses it before taking over another cluster's record.
func CertificateMatchesSpec(cert *x509.Certificate, spec cmapi.CertificateSpec) []string {
	if v := publicKeyMatchesSpec(cert.PublicKey, spec); len(v) > 0 {
		return v
	}
	//nolint:staticcheck // the same fallback checkChain uses without a request.
	return pki.FuzzyX509AltNamesMatchSpec(cert, spec)
}
