// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package revocation

import (
	"math/big"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// IssuerOf returns the Keyward issuer that issued the certificate in s, from
// the annotations cert-manager sets on a Certificate's Secret. ok is false
// for any other issuer (cert-manager's own, ACME, another external issuer).
func IssuerOf(s *corev1.Secret) (IssuerRef, bool) {
	a := s.GetAnnotations()
	name, kind, group := a[cmapi.IssuerNameAnnotationKey], a[cmapi.IssuerKindAnnotationKey], a[cmapi.IssuerGroupAnnotationKey]
	if name == "" || group != v1alpha1.GroupName {
		return IssuerRef{}, false
	}
	switch kind {
	case v1alpha1.VaultClusterIssuerKind:
		return IssuerRef{Kind: kind, Name: name}, true
	case v1alpha1.VaultIssuerKind:
		return IssuerRef{Kind: kind, Namespace: s.Namespace, Name: name}, true
	}
	return IssuerRef{}, false
}

// serialOf is the serial of the certificate a custody placeholder's record
// holds, or "" when s is not a placeholder or the serial is not hex.
func serialOf(s *corev1.Secret) string {
	p, ok := custody.ParsePlaceholder(s)
	if !ok || p.Serial == "" {
		return ""
	}
	if _, ok := new(big.Int).SetString(strings.ReplaceAll(p.Serial, ":", ""), 16); !ok {
		return ""
	}
	return strings.ToLower(strings.ReplaceAll(p.Serial, ":", ""))
}

// Superseded returns the entry for the certificate oldS held when newS, the
// same Secret after an update, holds another one: a renewal or re-key
// completed and the scrub webhook wrote a new custody version. The issuer is
// the one that issued the old certificate. ok is false when nothing was
// superseded or the old certificate is not a Keyward issuer's.
func Superseded(oldS, newS *corev1.Secret) (Entry, bool) {
	was, now := serialOf(oldS), serialOf(newS)
	if was == "" || now == "" || custody.SerialEqual(was, now) {
		return Entry{}, false
	}
	iss, ok := IssuerOf(oldS)
	if !ok {
		return Entry{}, false
	}
	return Entry{
		Serial: was, Issuer: iss, Namespace: oldS.Namespace, Secret: oldS.Name,
		Certificate: oldS.Annotations[cmapi.CertificateNameKey], Reason: ReasonSuperseded, SupersededBy: now,
	}, true
}

// Orphaned returns the entry for the certificate s holds when it goes out of
// use with s itself (reason ReasonCertificateDeleted or ReasonSecretDeleted).
func Orphaned(s *corev1.Secret, reason string) (Entry, bool) {
	serial := serialOf(s)
	if serial == "" {
		return Entry{}, false
	}
	iss, ok := IssuerOf(s)
	if !ok {
		return Entry{}, false
	}
	return Entry{
		Serial: serial, Issuer: iss, Namespace: s.Namespace, Secret: s.Name,
		Certificate: s.Annotations[cmapi.CertificateNameKey], Reason: reason,
	}, true
}

// Schedule completes an entry for an issuer's revocation settings: it is
// due one grace period after now. ok is false when the issuer does not
// revoke (no spec.revocation) or does not revoke for this reason
// (onCertificateDeletion false for a deletion).
func Schedule(e Entry, rev *v1alpha1.Revocation, now time.Time) (Entry, bool) {
	if rev == nil {
		return Entry{}, false
	}
	if e.Reason != ReasonSuperseded && !rev.RevokeOnDeletion() {
		return Entry{}, false
	}
	e.Detected = now
	e.Due = now.Add(rev.RevocationGracePeriod())
	return e, true
}

// ColonSerial formats a hex serial as Vault does ("0a:1b:..."): lower case,
// whole bytes separated by colons. Vault's revoke endpoint accepts it, and it
// is how the serial appears in Vault's own listings.
func ColonSerial(hex string) string {
	h := strings.ToLower(strings.TrimPrefix(strings.ReplaceAll(strings.TrimSpace(hex), ":", ""), "0x"))
	if len(h)%2 == 1 {
		h = "0" + h
	}
	parts := make([]string, 0, len(h)/2)
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// Backoff is the wait before attempt n+1 after n failed attempts (n >= 1):
// base doubled per failure, capped at limit, then jittered down by up to half
// (jitter in [0,1)), so retries of many serials after one outage spread out.
func Backoff(n int, base, limit time.Duration, jitter float64) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d - time.Duration(float64(d)/2*jitter)
}
