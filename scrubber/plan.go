// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
)

// cert-manager names this planner depends on. They are stable parts of
// cert-manager's API; they are spelled out here so the planner needs nothing
// from cert-manager's internals.
const (
	// AnnotationCertificateName marks a Secret written by cert-manager for a Certificate.
	AnnotationCertificateName = "cert-manager.io/certificate-name"
	annotationIssuerName      = "cert-manager.io/issuer-name"
	annotationIssuerKind      = "cert-manager.io/issuer-kind"
	annotationIssuerGroup     = "cert-manager.io/issuer-group"
	// LabelNextPrivateKey marks cert-manager's temporary key Secret for an issuance in progress.
	LabelNextPrivateKey = "cert-manager.io/next-private-key"
)

// Scrub paths, the values of custody.AnnotationScrubbedBy and of the path metric label.
const (
	ByWebhook = "webhook"
	ByWatcher = "watcher"
	// ByAdoption: the record was copied from another cluster's custody
	// (package adopt), not scrubbed from a Secret; there was never a key
	// in this cluster's API.
	ByAdoption = "adoption"
)

// Data keys of a kubernetes.io/tls Secret written by cert-manager, besides
// custody.DataKey, custody.DataCertificate and custody.DataCA (the custody
// record's fields carry the same names).
//
// Key material can sit in:
//   - tls.key: moved to custody and emptied (the kubernetes.io/tls type
//     requires the entry to exist);
//   - key.der and tls-combined.pem (Certificate.spec.additionalOutputFormats)
//     and keystore.jks / keystore.p12 (spec.keystores, encrypted only with a
//     password that lives in another Secret).
//
// The extras are refused, not removed: cert-manager re-derives them from
// tls.key whenever they differ from what the Certificate asks for
// (post-issuance re-sync), and from an emptied tls.key it cannot: DER output
// fails, keystores fail to encode, and a removed combined PEM comes back on
// every re-sync. A clear denial ("remove additionalOutputFormats/keystores")
// beats an endless repair loop; consumers that need those formats build them
// from the custody record. tls-combined.pem counts as key material only when
// it holds a private key: after redaction cert-manager writes it with the
// empty key, i.e. the certificate alone.
//
// truststore.jks and truststore.p12 hold only CA certificates and stay, as do
// tls.crt and ca.crt outside strict mode.
const (
	DataKeyDER      = "key.der"
	DataCombinedPEM = "tls-combined.pem"
	DataKeystoreJKS = "keystore.jks"
	DataKeystoreP12 = "keystore.p12"
)

// KeyBearingDataKeys lists the Secret data keys that can carry private key
// material, tls.key first. The result is a fresh slice.
func KeyBearingDataKeys() []string {
	return []string{custody.DataKey, DataKeyDER, DataCombinedPEM, DataKeystoreJKS, DataKeystoreP12}
}

// holdsKey reports whether data entry k with value v carries key material.
// For tls-combined.pem any mention of a PEM private key counts, malformed or
// not: when in doubt, treat it as a key.
func holdsKey(k string, v []byte) bool {
	if len(v) == 0 {
		return false
	}
	if k == DataCombinedPEM {
		return bytes.Contains(v, []byte("PRIVATE KEY"))
	}
	return true
}

// Action is what a plan decided to do with a Secret.
type Action int

const (
	// ActionIgnore: the Secret is out of scope or holds no key; leave it alone.
	ActionIgnore Action = iota
	// ActionAlreadyScrubbed: the Secret is a placeholder already; leave it alone.
	ActionAlreadyScrubbed
	// ActionScrub: move the key to custody, then apply the plan's mutation.
	ActionScrub
)

func (a Action) String() string {
	switch a {
	case ActionIgnore:
		return "ignore"
	case ActionAlreadyScrubbed:
		return "already-scrubbed"
	case ActionScrub:
		return "scrub"
	default:
		return "Action(" + strconv.Itoa(int(a)) + ")"
	}
}

// PlanOptions are the inputs of Plan besides the Secret.
type PlanOptions struct {
	// Strict also moves tls.crt and ca.crt to custody and empties them in the
	// Secret (their validity is kept in annotations).
	Strict bool
	// Now is the scrub time recorded in custody.AnnotationScrubbedAt.
	Now time.Time
	// By is ByWebhook, ByWatcher or ByAdoption.
	By string
	// Path is the store's name for the record (custody.Store.Path), recorded in
	// custody.AnnotationPath.
	Path string
}

// ScrubPlan is the outcome of Plan. For ActionScrub, Record is what to write
// to custody and Apply produces the placeholder Secret once the write is
// confirmed.
type ScrubPlan struct {
	// Action is what to do.
	Action Action
	// Reason says why, in words fit for a log (no data).
	Reason string
	// Record is the custody record to write (ActionScrub only).
	Record custody.Record
	// Empty lists the data keys Apply sets to empty bytes (ActionScrub only).
	Empty []string
	// Annotations are set by Apply, except custody.AnnotationVersion, which
	// Apply adds from the store's answer.
	Annotations map[string]string
	// Labels are set by Apply.
	Labels map[string]string
}

// Planning errors. Plan wraps one of them in an error that names the Secret
// and the data key at fault; match them with errors.Is.
// MaxSecretSize is the apiserver's limit on a Secret's data (sum of values).
const MaxSecretSize = 1 << 20

var (
	ErrNoName             = errors.New("secret has no name")
	ErrMalformedKey       = errors.New("malformed private key")
	ErrEncryptedKey       = errors.New("encrypted private key is not supported")
	ErrMissingCertificate = errors.New("private key without certificate")
	ErrMalformedCert      = errors.New("malformed certificate")
	ErrKeyCertMismatch    = errors.New("private key does not match the certificate's public key")
	ErrUnsupportedKeyType = errors.New("unsupported private key type")
	ErrKeyBearingExtras   = errors.New("key-bearing output formats are not supported under key custody")
	ErrOpaqueTarget       = errors.New("a Secret of type Opaque cannot be a custody placeholder")
	ErrSecretTooLarge     = errors.New("secret data exceeds the Kubernetes limit of 1 MiB")
)

// InScope reports whether a Secret is one Keyward takes custody of, ignoring
// its namespace (scoped by the webhook's namespaceSelector and the watcher's
// namespace check): a kubernetes.io/tls Secret (or an Envoy Gateway SDS
// reference Secret, custody.SecretTypeSDS) written by cert-manager for a
// Certificate, not a temporary next-private-key Secret.
func InScope(s *corev1.Secret) bool {
	return custody.IsCustodySecretType(s.Type) &&
		s.Annotations[AnnotationCertificateName] != "" &&
		s.Labels[LabelNextPrivateKey] != "true"
}

// OpaqueTarget reports whether s is a Certificate's target Secret that was
// created as Opaque before cert-manager wrote it: cert-manager keeps an
// existing Secret's type, so it writes the key into an Opaque Secret. Such a
// Secret is refused rather than scrubbed: Keyward caches custody Secrets by
// type (every Opaque Secret of the cluster is not worth holding), so the
// guard, the watcher and the audit would never see its placeholder.
func OpaqueTarget(s *corev1.Secret) bool {
	return (s.Type == corev1.SecretTypeOpaque || s.Type == "") &&
		s.Annotations[AnnotationCertificateName] != "" &&
		s.Labels[LabelNextPrivateKey] != "true"
}

// HoldsKeyMaterial reports whether any data entry carries private key material.
func HoldsKeyMaterial(s *corev1.Secret) bool {
	for _, k := range KeyBearingDataKeys() {
		if holdsKey(k, s.Data[k]) {
			return true
		}
	}
	return false
}

// Plan decides what to do with a Secret. It is pure: no I/O, no clock. It
// never puts key bytes in errors or Reason.
func Plan(s *corev1.Secret, opts PlanOptions) (*ScrubPlan, error) {
	if OpaqueTarget(s) && HoldsKeyMaterial(s) {
		return nil, fmt.Errorf("planning custody for secret %s/%s: %w: delete it so that cert-manager creates it again as kubernetes.io/tls for Certificate %s",
			s.Namespace, s.Name, ErrOpaqueTarget, s.Annotations[AnnotationCertificateName])
	}
	if !InScope(s) {
		return &ScrubPlan{Action: ActionIgnore, Reason: "not a cert-manager TLS secret"}, nil
	}
	if !HoldsKeyMaterial(s) {
		if _, ok := custody.ParsePlaceholder(s); ok {
			return &ScrubPlan{Action: ActionAlreadyScrubbed, Reason: "key already in custody"}, nil
		}
		return &ScrubPlan{Action: ActionIgnore, Reason: "no key material"}, nil
	}
	leaf, err := checkKeyPair(s)
	if err != nil {
		return nil, err
	}
	return newScrubPlan(s, leaf, opts), nil
}

// checkKeyPair refuses what cannot move to custody (no name, too large,
// key-bearing extras, an unusable or mismatched key and certificate) and
// returns the leaf certificate of a Secret that can.
func checkKeyPair(s *corev1.Secret) (*x509.Certificate, error) {
	ref := s.Namespace + "/" + s.Name
	if s.Name == "" {
		return nil, fmt.Errorf("planning custody for secret %s: %w (generateName is not supported)", ref, ErrNoName)
	}
	fail := func(key string, err error, detail string) error {
		if detail != "" {
			return fmt.Errorf("planning custody for secret %s: %s: %w: %s", ref, key, err, detail)
		}
		return fmt.Errorf("planning custody for secret %s: %s: %w", ref, key, err)
	}
	// The apiserver validates the size only after admission: refuse here, so
	// no custody record is written for a Secret that will never be stored.
	if size := dataSize(s); size > MaxSecretSize {
		return nil, fmt.Errorf("planning custody for secret %s: %w: data is %d bytes", ref, ErrSecretTooLarge, size)
	}
	var extras []string
	for _, k := range KeyBearingDataKeys()[1:] {
		if holdsKey(k, s.Data[k]) {
			extras = append(extras, k)
		}
	}
	if len(extras) > 0 {
		return nil, fail(strings.Join(extras, ", "), ErrKeyBearingExtras,
			"remove additionalOutputFormats and keystores from Certificate "+s.Annotations[AnnotationCertificateName]+" and build them from the custody record")
	}
	key, err := parsePrivateKey(s.Data[custody.DataKey])
	if err != nil {
		return nil, fail(custody.DataKey, err, "")
	}
	certPEM := s.Data[custody.DataCertificate]
	if len(bytes.TrimSpace(certPEM)) == 0 {
		return nil, fail(custody.DataCertificate, ErrMissingCertificate, "")
	}
	leaf, err := parseLeaf(certPEM)
	if err != nil {
		return nil, fail(custody.DataCertificate, err, "")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fail(custody.DataKey, ErrKeyCertMismatch, "serial "+custody.SerialHex(leaf))
	}
	return leaf, nil
}

// dataSize is the size the apiserver limits: the sum of data and stringData values.
func dataSize(s *corev1.Secret) int {
	size := 0
	for _, v := range s.Data {
		size += len(v)
	}
	for _, v := range s.StringData {
		size += len(v)
	}
	return size
}

// newScrubPlan is the ActionScrub plan for a Secret checkKeyPair accepted.
func newScrubPlan(s *corev1.Secret, leaf *x509.Certificate, opts PlanOptions) *ScrubPlan {
	keyPEM, certPEM := s.Data[custody.DataKey], s.Data[custody.DataCertificate]
	fp := custody.Fingerprint(leaf.RawSubjectPublicKeyInfo)
	serial := custody.SerialHex(leaf)
	rec := custody.Record{
		Namespace:   s.Namespace,
		Name:        s.Name,
		Key:         bytes.Clone(keyPEM),
		Certificate: bytes.Clone(certPEM),
		CA:          bytes.Clone(s.Data[custody.DataCA]),
		Meta: custody.Metadata{
			CertificateName: s.Annotations[AnnotationCertificateName],
			IssuerName:      s.Annotations[annotationIssuerName],
			IssuerKind:      s.Annotations[annotationIssuerKind],
			IssuerGroup:     s.Annotations[annotationIssuerGroup],
			Serial:          serial,
			NotBefore:       leaf.NotBefore.UTC(),
			NotAfter:        leaf.NotAfter.UTC(),
			KeySHA256:       fp,
		},
	}
	p := &ScrubPlan{
		Action: ActionScrub,
		Reason: "key material present",
		Record: rec,
		Empty:  []string{custody.DataKey},
		Annotations: map[string]string{
			custody.AnnotationPath:       opts.Path,
			custody.AnnotationKeySHA256:  fp,
			custody.AnnotationScrubbedAt: opts.Now.UTC().Format(time.RFC3339Nano),
			custody.AnnotationScrubbedBy: opts.By,
			custody.AnnotationSerial:     serial,
		},
		Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault},
	}
	if opts.Strict {
		p.Empty = append(p.Empty, custody.DataCertificate)
		if _, ok := s.Data[custody.DataCA]; ok {
			p.Empty = append(p.Empty, custody.DataCA)
		}
		p.Annotations[custody.AnnotationNotBefore] = leaf.NotBefore.UTC().Format(time.RFC3339)
		p.Annotations[custody.AnnotationNotAfter] = leaf.NotAfter.UTC().Format(time.RFC3339)
	}
	return p
}

// Apply returns a copy of s turned into a placeholder for the custody record
// version the store confirmed. s is not modified. Apply must only be called
// on an ActionScrub plan, after the custody write succeeded.
func (p *ScrubPlan) Apply(s *corev1.Secret, version int) *corev1.Secret {
	out := s.DeepCopy()
	if out.Data == nil {
		out.Data = map[string][]byte{}
	}
	for _, k := range p.Empty {
		out.Data[k] = []byte{}
	}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	maps.Copy(out.Annotations, p.Annotations)
	out.Annotations[custody.AnnotationVersion] = strconv.Itoa(version)
	if !p.strict() {
		// A Secret that was strict before and is not now must not keep stale validity.
		delete(out.Annotations, custody.AnnotationNotBefore)
		delete(out.Annotations, custody.AnnotationNotAfter)
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	maps.Copy(out.Labels, p.Labels)
	return out
}

func (p *ScrubPlan) strict() bool { return slices.Contains(p.Empty, custody.DataCertificate) }

// parsePrivateKey accepts exactly one PEM block holding a PKCS#8, PKCS#1 or
// SEC 1 key. Errors never quote the input.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrMalformedKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: more than one PEM block or trailing data", ErrMalformedKey)
	}
	//nolint:staticcheck // detecting legacy encryption, not decrypting
	if block.Type == "ENCRYPTED PRIVATE KEY" || x509.IsEncryptedPEMBlock(block) {
		return nil, ErrEncryptedKey
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: unexpected PEM block type %q", ErrMalformedKey, block.Type)
	}
	if err != nil {
		// The x509 parse errors describe structure, not content.
		return nil, fmt.Errorf("%w: %s block: %v", ErrMalformedKey, block.Type, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKeyType, k)
	}
	return signer, nil
}

// parseLeaf parses the first CERTIFICATE block; every further block must be a
// certificate too (the chain), though only the leaf is returned.
func parseLeaf(data []byte) (*x509.Certificate, error) {
	var leaf *x509.Certificate
	for rest := data; len(bytes.TrimSpace(rest)) > 0; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: trailing data that is not PEM", ErrMalformedCert)
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: unexpected PEM block type %q", ErrMalformedCert, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedCert, err)
		}
		if leaf == nil {
			leaf = c
		}
	}
	if leaf == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrMalformedCert)
	}
	return leaf, nil
}
