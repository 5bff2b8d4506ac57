// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package revocation

import (
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// placeholder is a custody placeholder Secret holding serial, issued by
// the issuer kind/name/group.
func placeholder(serial, kind, name, group string) *corev1.Secret {
	a := map[string]string{
		custody.AnnotationPath: "custody/tls/ns/web-tls", custody.AnnotationVersion: "3",
		custody.AnnotationKeySHA256: "ab", custody.AnnotationSerial: serial,
		cmapi.CertificateNameKey: "web", cmapi.IssuerNameAnnotationKey: name,
		cmapi.IssuerKindAnnotationKey: kind, cmapi.IssuerGroupAnnotationKey: group,
	}
	if serial == "" {
		delete(a, custody.AnnotationSerial)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-tls", Annotations: a,
		Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault}}, Type: corev1.SecretTypeTLS}
}

func TestSuperseded(t *testing.T) {
	t.Parallel()
	const cluster, group = v1alpha1.VaultClusterIssuerKind, v1alpha1.GroupName
	notPlaceholder := placeholder("1f", cluster, "vault", group)
	delete(notPlaceholder.Annotations, custody.AnnotationPath)
	tests := []struct {
		name     string
		old, new *corev1.Secret
		want     *Entry
	}{
		{"renewal", placeholder("1f", cluster, "vault", group), placeholder("2a", cluster, "vault", group),
			&Entry{Serial: "1f", Issuer: IssuerRef{Kind: cluster, Name: "vault"}, Namespace: "ns", Secret: "web-tls", Certificate: "web", Reason: ReasonSuperseded, SupersededBy: "2a"}},
		{"namespaced issuer, colons and upper case", placeholder("0A:1F", v1alpha1.VaultIssuerKind, "team", group), placeholder("0b:1f", v1alpha1.VaultIssuerKind, "team", group),
			&Entry{Serial: "0a1f", Issuer: IssuerRef{Kind: v1alpha1.VaultIssuerKind, Namespace: "ns", Name: "team"}, Namespace: "ns", Secret: "web-tls", Certificate: "web", Reason: ReasonSuperseded, SupersededBy: "0b1f"}},
		{"issuer changed: the old certificate's issuer revokes", placeholder("1f", cluster, "vault", group), placeholder("2a", cmapi.ClusterIssuerKind, "acme", "cert-manager.io"),
			&Entry{Serial: "1f", Issuer: IssuerRef{Kind: cluster, Name: "vault"}, Namespace: "ns", Secret: "web-tls", Certificate: "web", Reason: ReasonSuperseded, SupersededBy: "2a"}},
		{"same serial, other spelling", placeholder("01f", cluster, "vault", group), placeholder("1F", cluster, "vault", group), nil},
		{"other issuer's certificate", placeholder("1f", cmapi.ClusterIssuerKind, "ca", "cert-manager.io"), placeholder("2a", cluster, "vault", group), nil},
		{"wrong group", placeholder("1f", cluster, "vault", "example.com"), placeholder("2a", cluster, "vault", "example.com"), nil},
		{"old has no serial", placeholder("", cluster, "vault", group), placeholder("2a", cluster, "vault", group), nil},
		{"new not a placeholder yet", placeholder("1f", cluster, "vault", group), notPlaceholder, nil},
		{"serial not hex", placeholder("zz", cluster, "vault", group), placeholder("2a", cluster, "vault", group), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Superseded(tc.old, tc.new)
			if ok != (tc.want != nil) {
				t.Fatalf("Superseded ok = %v, want %v (%+v)", ok, tc.want != nil, got)
			}
			if ok && got != *tc.want {
				t.Errorf("Superseded = %+v\nwant         %+v", got, *tc.want)
			}
		})
	}
}

func TestOrphanedAndSchedule(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	s := placeholder("1f", v1alpha1.VaultClusterIssuerKind, "vault", v1alpha1.GroupName)
	e, ok := Orphaned(s, ReasonCertificateDeleted)
	if !ok || e.Serial != "1f" || e.Reason != ReasonCertificateDeleted || e.Certificate != "web" {
		t.Fatalf("Orphaned = %+v, %v", e, ok)
	}
	if _, ok := Orphaned(placeholder("", v1alpha1.VaultClusterIssuerKind, "vault", v1alpha1.GroupName), ReasonSecretDeleted); ok {
		t.Errorf("Orphaned accepted a Secret without a serial")
	}
	auth := v1alpha1.VaultAuth{Token: &v1alpha1.TokenAuth{}}
	tests := []struct {
		name   string
		reason string
		rev    *v1alpha1.Revocation
		due    time.Duration // -1: not scheduled
	}{
		{"no spec.revocation", ReasonSuperseded, nil, -1},
		{"default grace", ReasonSuperseded, &v1alpha1.Revocation{Auth: auth}, time.Hour},
		{"own grace", ReasonSuperseded, &v1alpha1.Revocation{Auth: auth, GracePeriod: &metav1.Duration{Duration: 5 * time.Second}}, 5 * time.Second},
		{"deletion, default on", ReasonCertificateDeleted, &v1alpha1.Revocation{Auth: auth}, time.Hour},
		{"deletion, turned off", ReasonCertificateDeleted, &v1alpha1.Revocation{Auth: auth, OnCertificateDeletion: ptr.To(false)}, -1},
		{"secret deletion, turned off", ReasonSecretDeleted, &v1alpha1.Revocation{Auth: auth, OnCertificateDeletion: ptr.To(false)}, -1},
		{"renewal with deletion off", ReasonSuperseded, &v1alpha1.Revocation{Auth: auth, OnCertificateDeletion: ptr.To(false)}, time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := e
			in.Reason = tc.reason
			got, ok := Schedule(in, tc.rev, now)
			if ok != (tc.due >= 0) {
				t.Fatalf("Schedule ok = %v, want %v", ok, tc.due >= 0)
			}
			if ok && (!got.Detected.Equal(now) || !got.Due.Equal(now.Add(tc.due))) {
				t.Errorf("Schedule: detected %s due %s, want %s and %s", got.Detected, got.Due, now, now.Add(tc.due))
			}
		})
	}
}

func TestColonSerial(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"1f":           "1f",
		"a1f":          "0a:1f",
		"0A:1F:2b":     "0a:1f:2b",
		"0x7fffabcd01": "7f:ff:ab:cd:01",
	} {
		if got := ColonSerial(in); got != want {
			t.Errorf("ColonSerial(%q) = %q, want %q", in, got, want)
		}
		if !custody.SerialEqual(in, ColonSerial(in)) {
			t.Errorf("ColonSerial(%q) changed the number", in)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, limit := 2*time.Second, time.Minute
	tests := []struct {
		n      int
		jitter float64
		want   time.Duration
	}{
		{1, 0, 2 * time.Second},
		{2, 0, 4 * time.Second},
		{5, 0, 32 * time.Second},
		{6, 0, time.Minute},
		{60, 0, time.Minute}, // no overflow however many failures
		{1, 0.5, 1500 * time.Millisecond},
		{6, 0.999, 30*time.Second + 30*time.Millisecond},
	}
	for _, tc := range tests {
		if got := Backoff(tc.n, base, limit, tc.jitter); got != tc.want {
			t.Errorf("Backoff(%d, jitter %v) = %s, want %s", tc.n, tc.jitter, got, tc.want)
		}
	}
	for n := 1; n < 100; n++ {
		if d := Backoff(n, base, limit, 0.9999); d < base/2 || d > limit {
			t.Fatalf("Backoff(%d) = %s outside [%s, %s]", n, d, base/2, limit)
		}
	}
}
