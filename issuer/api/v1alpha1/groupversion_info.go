// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package v1alpha1 holds Keyward's issuer API: VaultIssuer and
// VaultClusterIssuer, the cert-manager external issuers that sign
// CertificateRequests with a Vault PKI role.
//
// +kubebuilder:object:generate=true
// +groupName=vault.keyward.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of Keyward's issuers; CertificateRequests name
// it in spec.issuerRef.group.
const GroupName = "vault.keyward.io"

// Kinds of the two issuers, as CertificateRequests name them in spec.issuerRef.kind.
const (
	VaultIssuerKind        = "VaultIssuer"
	VaultClusterIssuerKind = "VaultClusterIssuer"
)

// GroupVersion is the group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// AddToScheme registers VaultIssuer, VaultClusterIssuer and their lists with
// a scheme. It is safe to call on any scheme, any number of times.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&VaultIssuer{}, &VaultIssuerList{},
		&VaultClusterIssuer{}, &VaultClusterIssuerList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
