// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package custody

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParsePlaceholder(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 5, 0, 0, 123, time.UTC)
	full := func() *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{LabelCustody: LabelCustodyVault},
			Annotations: map[string]string{
				AnnotationPath: "custody/tls/ns/web", AnnotationVersion: "3", AnnotationKeySHA256: "ABcd",
				AnnotationSerial: "1f", AnnotationScrubbedAt: at.Format(time.RFC3339Nano),
			},
		}}
	}
	got, ok := ParsePlaceholder(full())
	want := Placeholder{Path: "custody/tls/ns/web", Version: 3, KeySHA256: "abcd", Serial: "1f"}
	if !ok || got != want {
		t.Fatalf("ParsePlaceholder = %+v, %v; want %+v, true", got, ok, want)
	}
	for name, mutate := range map[string]func(s *corev1.Secret){
		"no label":             func(s *corev1.Secret) { delete(s.Labels, LabelCustody) },
		"other label value":    func(s *corev1.Secret) { s.Labels[LabelCustody] = "aws" },
		"no path":              func(s *corev1.Secret) { delete(s.Annotations, AnnotationPath) },
		"no version":           func(s *corev1.Secret) { delete(s.Annotations, AnnotationVersion) },
		"version zero":         func(s *corev1.Secret) { s.Annotations[AnnotationVersion] = "0" },
		"version not a number": func(s *corev1.Secret) { s.Annotations[AnnotationVersion] = "three" },
		"no fingerprint":       func(s *corev1.Secret) { delete(s.Annotations, AnnotationKeySHA256) },
	} {
		s := full()
		mutate(s)
		if p, ok := ParsePlaceholder(s); ok || p != (Placeholder{}) {
			t.Errorf("%s: ParsePlaceholder = %+v, %v; want not a placeholder", name, p, ok)
		}
	}
	// Metadata alone is enough (the delivery agent watches only metadata).
	s := full()
	if _, ok := ParsePlaceholder(&metav1.PartialObjectMetadata{ObjectMeta: s.ObjectMeta}); !ok {
		t.Errorf("metadata-only placeholder not recognised")
	}
	if _, ok := ParsePlaceholder(nil); ok {
		t.Errorf("nil is a placeholder")
	}
}

func TestSerialEqual(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1f", "1F", true}, {"00:1f", "0x1f", true}, {"1f", "20", false}, {"", "", false}, {"zz", "zz", false},
	} {
		if got := SerialEqual(tc.a, tc.b); got != tc.want {
			t.Errorf("SerialEqual(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
