// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package sds serves custody certificates to an Envoy proxy over the Secret
// Discovery Service (SDS): it is `keyward sds`, a sidecar of an Envoy-based
// gateway's proxy that listens on a pod-local unix socket.
//
// The pieces:
//   - Sink is the delivery.Sink fed by a delivery.Agent: it keeps the
//     current certificate and key of every allowed Secret in a go-control-plane
//     cache, under the resource names ResourceNames gives;
//   - Server serves that cache over gRPC (only the SDS service, state of the
//     world and delta), refuses wildcard requests and counts the names it
//     cannot serve;
//   - Tracker decides which Secrets are allowed, from the Gateways (and their
//     ListenerSets) the proxy serves, and adds or removes them on the agent
//     and the sink as those objects change.
//
// A Secret is served only while it is allowed: a name the proxy's Gateways
// do not reference gets nothing, whatever the proxy asks for.
package sds

import (
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/keyward-io/keyward/custody"
)

// IstioPrefix is the scheme Istio's classic Gateway puts before a
// credentialName that names an SDS resource ("sds://ns/name"); Istio asks
// for the resource with the prefix.
const IstioPrefix = "sds://"

// ResourceNames are the SDS resource names the Secret k is served under:
// "<namespace>/<name>" (custody.SDSResourceName, what Keyward's scrub
// webhook writes into an Envoy Gateway SDS Secret) and
// "sds://<namespace>/<name>" (Istio).
func ResourceNames(k types.NamespacedName) []string {
	n := custody.SDSResourceName(k.Namespace, k.Name)
	return []string{n, IstioPrefix + n}
}

// SecretFor is the Secret a requested resource name stands for, and whether
// the name has the form of ResourceNames at all.
func SecretFor(resourceName string) (types.NamespacedName, bool) {
	ns, name, ok := strings.Cut(strings.TrimPrefix(resourceName, IstioPrefix), "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}
