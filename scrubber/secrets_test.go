// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"context"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
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

// The cache transform keeps what the custody components read: a key-bearing
// Secret whole (the watcher must see its key), a placeholder without
// ca.crt, and nothing of the data of a Secret that is not cert-manager's.
func TestTLSSecretsTransform(t *testing.T) {
	t.Parallel()
	transform := TLSSecretsByObject().Transform
	pair := scrubTestNewPair(t, "ecdsa")

	keyed := scrubTestSecret(pair)
	keyed.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "cert-manager"}}
	out, err := transform(keyed)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Secret)
	if got.ManagedFields != nil || len(got.Data[custody.DataKey]) == 0 || len(got.Data[custody.DataCA]) == 0 || len(got.Data[custody.DataCertificate]) == 0 {
		t.Errorf("key-bearing Secret: managedFields %v, data keys %d; want no managedFields and tls.key, tls.crt, ca.crt kept", got.ManagedFields, len(got.Data))
	}

	placeholder := scrubTestSecret(pair)
	placeholder.Data[custody.DataKey] = nil
	out, _ = transform(placeholder)
	got = out.(*corev1.Secret)
	if _, ok := got.Data[custody.DataCA]; ok || len(got.Data[custody.DataCertificate]) == 0 {
		t.Errorf("placeholder: ca.crt kept %v, tls.crt %d bytes; want ca.crt dropped, tls.crt kept", ok, len(got.Data[custody.DataCertificate]))
	}

	foreign := scrubTestSecret(pair)
	delete(foreign.Annotations, AnnotationCertificateName)
	out, _ = transform(foreign)
	if got = out.(*corev1.Secret); got.Data != nil {
		t.Errorf("Secret that is not cert-manager's: data kept (%d keys)", len(got.Data))
	}
}

// The cached Certificate keeps its metadata and spec, which the custody
// components read, and drops its status, managedFields and last-applied
// copy, which nothing reads from the cache.
func TestCertificatesTransform(t *testing.T) {
	t.Parallel()
	rev := 3
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "apps", Name: "web", UID: "u1",
			Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"big":"copy"}`, "team": "a"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec:   cmapi.CertificateSpec{SecretName: "web-tls", PrivateKey: &cmapi.CertificatePrivateKey{RotationPolicy: cmapi.RotationPolicyNever}},
		Status: cmapi.CertificateStatus{Revision: &rev, Conditions: []cmapi.CertificateCondition{{Type: cmapi.CertificateConditionReady, Message: "long message"}}},
	}
	out, err := CertificatesByObject().Transform(crt)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*cmapi.Certificate)
	if got.ManagedFields != nil || got.Status.Revision != nil || got.Status.Conditions != nil {
		t.Errorf("cached Certificate kept managedFields %v or status %+v", got.ManagedFields, got.Status)
	}
	if _, ok := got.Annotations[corev1.LastAppliedConfigAnnotation]; ok || got.Annotations["team"] != "a" {
		t.Errorf("annotations %v: want the last-applied copy dropped, the others kept", got.Annotations)
	}
	if got.Name != "web" || got.UID != "u1" || got.Spec.SecretName != "web-tls" || got.Spec.PrivateKey.RotationPolicy != cmapi.RotationPolicyNever {
		t.Errorf("cached Certificate lost its identity or spec: %+v", got)
	}
}
