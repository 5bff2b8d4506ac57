// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/keyward-io/keyward/custody"
)

func TestSecretReaderReadsBothCustodyTypes(t *testing.T) {
	t.Parallel()
	sec := func(name string, typ corev1.SecretType) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name}, Type: typ}
	}
	main := fake.NewClientBuilder().WithObjects(sec("tls", corev1.SecretTypeTLS), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}}).Build()
	sds := fake.NewClientBuilder().WithObjects(sec("sds", custody.SecretTypeSDS)).Build()
	r := SecretReader{Main: main, SDS: sds}
	ctx := context.Background()
	for name, want := range map[string]corev1.SecretType{"tls": corev1.SecretTypeTLS, "sds": custody.SecretTypeSDS} {
		var s corev1.Secret
		if err := r.Get(ctx, client.ObjectKey{Namespace: "a", Name: name}, &s); err != nil || s.Type != want {
			t.Errorf("Get(%s) = %q, %v; want %q", name, s.Type, err, want)
		}
	}
	var s corev1.Secret
	if err := r.Get(ctx, client.ObjectKey{Namespace: "a", Name: "none"}, &s); !apierrors.IsNotFound(err) {
		t.Errorf("Get(none) = %v, want NotFound", err)
	}
	var list corev1.SecretList
	if err := r.List(ctx, &list, client.InNamespace("a")); err != nil || len(list.Items) != 2 {
		t.Errorf("List = %d items, %v; want both types", len(list.Items), err)
	}
	var ns corev1.Namespace
	if err := r.Get(ctx, client.ObjectKey{Name: "a"}, &ns); err != nil {
		t.Errorf("other kinds are read from Main: %v", err)
	}
}

func TestInScopeSDS(t *testing.T) {
	t.Parallel()
	for typ, want := range map[corev1.SecretType]bool{
		corev1.SecretTypeTLS: true, custody.SecretTypeSDS: true, corev1.SecretTypeOpaque: false, "example.com/other": false,
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationCertificateName: "web"}}, Type: typ}
		if got := InScope(s); got != want {
			t.Errorf("InScope(type %s) = %v, want %v", typ, got, want)
		}
	}
}
