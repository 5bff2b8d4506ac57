// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package adopt lets a cluster take over another cluster's custody record
// for a Certificate instead of issuing a new key: moving a workload between
// clusters (or running it in two) never re-keys.
//
// It is explicit. A custody Namespace carries
// custody.NamespaceLabelAdoptFromCluster naming the source cluster; when a
// Certificate is created in it and its target Secret does not exist yet,
// Adopter reads the source cluster's record of <namespace>/<secretName>
// (with its own Vault role, which may read only the clusters it is allowed
// to adopt from), checks that it fits the Certificate, copies it to this
// cluster's own record through the custody writer (check-and-set, as every
// custody write) and creates the placeholder Secret. cert-manager then finds
// a valid certificate and the custody guard a matching record: no
// CertificateRequest is made. Records of two clusters sharing a Vault stay
// apart (custody.ClusterPrefix): without the label nothing crosses.
package adopt

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmutil "github.com/cert-manager/cert-manager/pkg/util"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/guard"
	"github.com/keyward-io/keyward/scrubber"
)

// Source reads one other cluster's custody records: metadata without the
// key, then the version it names with the key.
type Source interface {
	Metadata(ctx context.Context, namespace, name string) (custody.Metadata, error)
	Read(ctx context.Context, namespace, name string, version int) (custody.Record, error)
	// Path names the record in messages (custody.Store.Path).
	Path(namespace, name string) string
}

// Outcome is what Adopt did.
type Outcome string

// Outcomes of Adopt, also the values of the result label of
// keyward_custody_adoptions_total (with "refused" and "error").
const (
	// Adopted: the record was copied and the placeholder Secret created.
	Adopted Outcome = "adopted"
	// SecretExists: the target Secret is already there (a second apply, a
	// restore from backup): nothing to do, cert-manager and the guard
	// decide as for any Secret.
	SecretExists Outcome = "secret-exists"
	// NoRecord: the source cluster has no record for the Secret; the
	// Certificate is issued as usual.
	NoRecord Outcome = "no-record"
	// Expired: the source record's certificate has expired; adopting it
	// would only be followed by a renewal, so the Certificate is issued as
	// usual.
	Expired Outcome = "expired"
	// DryRun: the checks passed; nothing was written.
	DryRun Outcome = "dry-run"
)

// ErrMismatch is wrapped by Adopt's error when the source record does not
// fit the Certificate (issuer, Certificate name, names, key, validity):
// the admission is refused so that a manifest error cannot silently cost
// the key. The message says which field differs.
var ErrMismatch = errors.New("custody record does not match the Certificate")

// ErrStrict is wrapped by Adopt's error in a strict-mode namespace.
var ErrStrict = errors.New("adoption needs the certificate in the Secret (not strict mode)")

// Adopter adopts records for Certificates being created.
type Adopter struct {
	// Sources returns the reader of cluster's records, or an error when
	// this Keyward may not adopt from it.
	Sources func(cluster string) (Source, error)
	// Scrubber writes this cluster's record (the custody writer) and primes
	// the guard, as for every custody write.
	Scrubber *scrubber.Scrubber
	// SecretReader reads the target Secret live: a cache may lag behind a
	// Secret restored a moment ago, and Keyward caches only TLS Secrets.
	SecretReader client.Reader
	// SecretWriter creates the placeholder.
	SecretWriter client.Writer
	// Strict tells strict-mode namespaces.
	Strict scrubber.StrictMode
	// Clock; default the real clock.
	Clock clock.PassiveClock
	// Self is this cluster's name; adopting from it is refused.
	Self string
}

// Result describes one Adopt call for the log, the metrics and the
// admission response. It never carries key material.
type Result struct {
	Outcome Outcome
	// Path is the source record (Source.Path); Version its version.
	Path    string
	Version int
	// Serial and NotAfter describe the adopted certificate.
	Serial   string
	NotAfter time.Time
	// CustodyVersion is this cluster's record version after the copy.
	CustodyVersion int
}

// FieldOwner is the field manager of the placeholder Secrets Adopt creates.
const FieldOwner = "keyward-adopt"

// Adopt adopts from cluster the record of crt's Secret, unless the Secret
// exists or there is nothing to adopt. dryRun runs every check and writes
// nothing. Errors name the Certificate and the source record.
func (a *Adopter) Adopt(ctx context.Context, crt *cmapi.Certificate, cluster string, dryRun bool) (Result, error) {
	ref := crt.Namespace + "/" + crt.Name
	if cluster == a.Self {
		return Result{}, fmt.Errorf("adopting for Certificate %s: namespace label %s names this cluster (%s); remove it",
			ref, custody.NamespaceLabelAdoptFromCluster, cluster)
	}
	var existing corev1.Secret
	err := a.SecretReader.Get(ctx, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, &existing)
	switch {
	case err == nil:
		return Result{Outcome: SecretExists}, nil
	case !apierrors.IsNotFound(err):
		return Result{}, fmt.Errorf("adopting for Certificate %s: reading Secret %s: %w", ref, crt.Spec.SecretName, err)
	}
	src, err := a.Sources(cluster)
	if err != nil {
		return Result{}, fmt.Errorf("adopting for Certificate %s from cluster %s: %w", ref, cluster, err)
	}
	rec, res, err := a.readSource(ctx, src, crt, cluster)
	if err != nil || res.Outcome != "" {
		return res, err
	}
	strict, err := a.Strict.Strict(ctx, crt.Namespace)
	if err != nil {
		return res, fmt.Errorf("adopting for Certificate %s: %w", ref, err)
	}
	if strict {
		return res, fmt.Errorf("adopting for Certificate %s: %w: label namespace %s %s=false, or remove %s to issue a new key",
			ref, ErrStrict, crt.Namespace, custody.NamespaceLabelRedactCertificates, custody.NamespaceLabelAdoptFromCluster)
	}
	if dryRun {
		res.Outcome = DryRun
		return res, nil
	}
	out, err := a.Scrubber.Scrub(ctx, scrubber.ScrubRequest{
		Secret: targetSecret(crt, rec), By: scrubber.ByAdoption, ExpectedVersion: ptr.To(0),
	})
	if err != nil {
		return res, fmt.Errorf("adopting for Certificate %s: %w", ref, err)
	}
	if out.Secret == nil {
		return res, fmt.Errorf("adopting for Certificate %s: the copy of %s was not planned as a custody write (%s)", ref, res.Path, out.Plan.Reason)
	}
	placeholder := out.Secret
	placeholder.ResourceVersion = ""
	if err := a.SecretWriter.Create(ctx, placeholder, client.FieldOwner(FieldOwner)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Created meanwhile by someone else: the record copy is the
			// same key as the source's, so nothing is lost; the Secret
			// that won decides, as for any Secret.
			return Result{Outcome: SecretExists}, nil
		}
		return res, fmt.Errorf("adopting for Certificate %s: creating placeholder Secret %s (record copied to version %d): %w",
			ref, crt.Spec.SecretName, out.Version, err)
	}
	res.Outcome, res.CustodyVersion = Adopted, out.Version
	return res, nil
}

// readSource reads and checks the source record. A zero Outcome with a nil
// error means "adopt it"; NoRecord and Expired end the adoption there.
func (a *Adopter) readSource(ctx context.Context, src Source, crt *cmapi.Certificate, cluster string) (custody.Record, Result, error) {
	ref := crt.Namespace + "/" + crt.Name
	res := Result{Path: src.Path(crt.Namespace, crt.Spec.SecretName)}
	meta, err := src.Metadata(ctx, crt.Namespace, crt.Spec.SecretName)
	switch {
	case errors.Is(err, custody.ErrNotFound):
		res.Outcome = NoRecord
		return custody.Record{}, res, nil
	case err != nil:
		return custody.Record{}, res, fmt.Errorf("adopting for Certificate %s: %w", ref, err)
	case meta.Torn:
		return custody.Record{}, res, fmt.Errorf("adopting for Certificate %s: the source record %s is being written (version %d); retry", ref, res.Path, meta.Version)
	}
	res.Version, res.Serial, res.NotAfter = meta.Version, meta.Serial, meta.NotAfter
	if !a.now().Before(meta.NotAfter) {
		res.Outcome = Expired
		return custody.Record{}, res, nil
	}
	if err := checkMeta(meta, crt); err != nil {
		return custody.Record{}, res, fmt.Errorf("adopting for Certificate %s from %s: %w", ref, res.Path, err)
	}
	rec, err := src.Read(ctx, crt.Namespace, crt.Spec.SecretName, meta.Version)
	if err != nil {
		return custody.Record{}, res, fmt.Errorf("adopting for Certificate %s: %w", ref, err)
	}
	rec.Meta = meta
	if err := checkCertificate(rec, crt); err != nil {
		return custody.Record{}, res, fmt.Errorf("adopting for Certificate %s from %s: %w", ref, res.Path, err)
	}
	return rec, res, nil
}

func (a *Adopter) now() time.Time {
	if a.Clock == nil {
		return time.Now()
	}
	return a.Clock.Now()
}

// checkMeta compares the record's public description with the Certificate:
// the Certificate it was issued for and its issuer.
func checkMeta(meta custody.Metadata, crt *cmapi.Certificate) error {
	if meta.CertificateName != crt.Name {
		return fmt.Errorf("%w: the record was issued for Certificate %q, not %q", ErrMismatch, meta.CertificateName, crt.Name)
	}
	ir := crt.Spec.IssuerRef
	kind, group := ir.Kind, ir.Group
	if kind == "" {
		kind = cmapi.IssuerKind
	}
	if group == "" {
		group = "cert-manager.io"
	}
	mkind, mgroup := meta.IssuerKind, meta.IssuerGroup
	if mkind == "" {
		mkind = cmapi.IssuerKind
	}
	if mgroup == "" {
		mgroup = "cert-manager.io"
	}
	if meta.IssuerName != ir.Name || mkind != kind || mgroup != group {
		return fmt.Errorf("%w: spec.issuerRef is %s %q (group %s), the record was issued by %s %q (group %s)",
			ErrMismatch, kind, ir.Name, group, mkind, meta.IssuerName, mgroup)
	}
	return nil
}

// checkCertificate checks the record's certificate against its metadata and
// the Certificate's spec (names, key algorithm and size).
func checkCertificate(rec custody.Record, crt *cmapi.Certificate) error {
	leaf, err := recordLeaf(rec)
	if err != nil {
		return err
	}
	if v := guard.CertificateMatchesSpec(leaf, crt.Spec); len(v) > 0 {
		return fmt.Errorf("%w: the certificate in custody does not satisfy %s", ErrMismatch, strings.Join(v, ", "))
	}
	return nil
}

// recordLeaf is the record's leaf certificate, checked against the
// serial its metadata gives.
func recordLeaf(rec custody.Record) (*x509.Certificate, error) {
	leaf, err := leafOf(rec.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	if serial := custody.SerialHex(leaf); !strings.EqualFold(serial, rec.Meta.Serial) {
		return nil, fmt.Errorf("%w: the record's certificate has serial %s, its metadata says %s", ErrMismatch, serial, rec.Meta.Serial)
	}
	return leaf, nil
}

func leafOf(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("the record holds no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the record's certificate does not parse: %v", err)
	}
	return leaf, nil
}

// targetSecret is the Secret cert-manager would have written for crt with
// rec's key pair: type, data, the annotations and labels it sets (its
// certificate details, Certificate and issuer names, secretTemplate, the
// part-of label). It exists only in memory, as the input of the custody
// write; the placeholder made from it is what reaches the API.
func targetSecret(crt *cmapi.Certificate, rec custody.Record) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: crt.Namespace, Name: crt.Spec.SecretName,
			Annotations: map[string]string{}, Labels: map[string]string{},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{custody.DataKey: rec.Key, custody.DataCertificate: rec.Certificate},
	}
	if len(rec.CA) > 0 {
		s.Data[custody.DataCA] = rec.CA
	}
	if t := crt.Spec.SecretTemplate; t != nil {
		maps.Copy(s.Labels, t.Labels)
		maps.Copy(s.Annotations, t.Annotations)
	}
	if leaf, err := leafOf(rec.Certificate); err == nil {
		maps.Copy(s.Annotations, detailAnnotations(leaf))
	}
	s.Annotations[cmapi.CertificateNameKey] = crt.Name
	s.Annotations[cmapi.IssuerNameAnnotationKey] = rec.Meta.IssuerName
	s.Annotations[cmapi.IssuerKindAnnotationKey] = rec.Meta.IssuerKind
	s.Annotations[cmapi.IssuerGroupAnnotationKey] = rec.Meta.IssuerGroup
	s.Labels[cmapi.PartOfCertManagerControllerLabelKey] = "true"
	return s
}

// detailAnnotations are the certificate details cert-manager writes on the
// Secrets it issues (common name, subject, SANs), so that its post-issuance
// check finds them current. A value that cannot be encoded is left out:
// cert-manager then re-applies it, without a re-issue.
func detailAnnotations(leaf *x509.Certificate) map[string]string {
	out := map[string]string{cmapi.CommonNameAnnotationKey: leaf.Subject.CommonName}
	if leaf.Subject.SerialNumber != "" {
		out[cmapi.SubjectSerialNumberAnnotationKey] = leaf.Subject.SerialNumber
	}
	csv := func(key string, values []string, keepEmpty bool) {
		if len(values) == 0 && !keepEmpty {
			return
		}
		if v, err := cmutil.JoinWithEscapeCSV(values); err == nil {
			out[key] = v
		}
	}
	subj := leaf.Subject
	csv(cmapi.SubjectOrganizationsAnnotationKey, subj.Organization, false)
	csv(cmapi.SubjectOrganizationalUnitsAnnotationKey, subj.OrganizationalUnit, false)
	csv(cmapi.SubjectCountriesAnnotationKey, subj.Country, false)
	csv(cmapi.SubjectProvincesAnnotationKey, subj.Province, false)
	csv(cmapi.SubjectLocalitiesAnnotationKey, subj.Locality, false)
	csv(cmapi.SubjectPostalCodesAnnotationKey, subj.PostalCode, false)
	csv(cmapi.SubjectStreetAddressesAnnotationKey, subj.StreetAddress, false)
	csv(cmapi.EmailsAnnotationKey, leaf.EmailAddresses, false)
	csv(cmapi.AltNamesAnnotationKey, leaf.DNSNames, true)
	csv(cmapi.IPSANAnnotationKey, pki.IPAddressesToString(leaf.IPAddresses), true)
	csv(cmapi.URISANAnnotationKey, pki.URLsToString(leaf.URIs), true)
	return out
}
