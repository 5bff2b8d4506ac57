// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package custody

import (
	corev1 "k8s.io/api/core/v1"
)

// SDS placeholders. Envoy Gateway (v1.9 and later, with
// extensionApis.enableSDSSecretRef) loads a listener certificate from an SDS
// server instead of from the Secret when the listener's certificateRef is a
// Secret of type SecretTypeSDS: it reads only the Secret's SDSDataURL (the
// server's unix socket) and SDSDataSecretName (the resource name to ask for).
// Keyward's scrub webhook gives that type to a cert-manager Secret when it
// is created for a Gateway whose GatewayClass carries
// GatewayClassAnnotationSDSURL; cert-manager keeps an existing Secret's type
// on every later write, and a Secret's type is immutable, so the choice is
// made once, at creation. `keyward sds` serves the resource.
const (
	// SecretTypeSDS is Envoy Gateway's SDS reference Secret type.
	SecretTypeSDS corev1.SecretType = "gateway.envoyproxy.io/sds"
	// SDSDataURL is the data key holding the SDS server's address.
	SDSDataURL = "url"
	// SDSDataSecretName is the data key holding the SDS resource name.
	SDSDataSecretName = "secretName"

	// GatewayClassAnnotationSDSURL on a GatewayClass marks it for SDS: the
	// custody Secrets its Gateways' listeners reference are created as
	// SecretTypeSDS pointing at this address (the `keyward sds` socket in
	// the proxy pod, e.g. unix:///var/run/keyward/sds.sock).
	GatewayClassAnnotationSDSURL = "keyward.io/sds-url"
)

// SDSResourceName is the SDS resource name Keyward uses for the Secret
// namespace/name: "<namespace>/<name>", the same name the custody path ends
// with. `keyward sds` also answers to "sds://<namespace>/<name>", the form
// Istio's classic Gateway sends for credentialName: sds://….
func SDSResourceName(namespace, name string) string { return namespace + "/" + name }

// IsCustodySecretType reports whether t is a Secret type custody handles:
// kubernetes.io/tls, or SecretTypeSDS.
func IsCustodySecretType(t corev1.SecretType) bool {
	return t == corev1.SecretTypeTLS || t == SecretTypeSDS
}

// MarkSDS turns the placeholder s (being created) into an SDS reference
// Secret pointing at the SDS server url: type SecretTypeSDS, SDSDataURL and
// SDSDataSecretName set. Every other field is kept. It modifies s.
func MarkSDS(s *corev1.Secret, url string) {
	s.Type = SecretTypeSDS
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[SDSDataURL] = []byte(url)
	s.Data[SDSDataSecretName] = []byte(SDSResourceName(s.Namespace, s.Name))
}
