// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package listeners

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/tlsref"
)

// SDSResolver decides, for a custody Secret being created, whether it must
// be created as an Envoy Gateway SDS reference and with which SDS address.
// It reads only an informer cache: it runs on the admission path.
type SDSResolver struct {
	reader client.Reader
	served Served
}

// NewSDSResolver returns a resolver over reader (a cache holding Gateways,
// ListenerSets when served, and GatewayClasses). It returns nil when the
// Gateway API is not served: then no Secret is ever an SDS reference.
func NewSDSResolver(reader client.Reader, served Served) *SDSResolver {
	if !served.Gateways {
		return nil
	}
	return &SDSResolver{reader: reader, served: served}
}

// URL returns the SDS address for the Secret namespace/name: the value of
// custody.GatewayClassAnnotationSDSURL on the class of every Gateway whose
// listener (its own or a ListenerSet's) references the Secret. It returns
// "" when no Gateway references it, or when one of them is of a class that
// is not marked or is marked with another address: an SDS reference would
// break that Gateway, so the Secret stays kubernetes.io/tls and the Checker
// reports the listener. Only references from the Secret's own namespace
// count (cert-manager's gateway-shim creates Certificates only for those).
func (r *SDSResolver) URL(ctx context.Context, namespace, name string) (string, error) {
	secret := types.NamespacedName{Namespace: namespace, Name: name}
	refs, err := gatewayRefs(ctx, r.reader, r.served, client.InNamespace(namespace))
	if err != nil {
		return "", err
	}
	url := ""
	for _, ref := range refs {
		if ref.Secret != secret {
			continue
		}
		u, err := r.gatewayURL(ctx, ref.Gateway)
		if err != nil || u == "" || (url != "" && u != url) {
			return "", err
		}
		url = u
	}
	return url, nil
}

// gatewayURL is the SDS address of gw's class ("" when unmarked).
func (r *SDSResolver) gatewayURL(ctx context.Context, gw types.NamespacedName) (string, error) {
	var g gwapiv1.Gateway
	if err := r.reader.Get(ctx, gw, &g); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	return classURL(ctx, r.reader, string(g.Spec.GatewayClassName))
}

func classURL(ctx context.Context, reader client.Reader, class string) (string, error) {
	var gc gwapiv1.GatewayClass
	if err := reader.Get(ctx, types.NamespacedName{Name: class}, &gc); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	return gc.Annotations[custody.GatewayClassAnnotationSDSURL], nil
}

// gatewayRefs lists the Secret references of the Gateways and ListenerSets
// that opts select.
func gatewayRefs(ctx context.Context, reader client.Reader, served Served, opts ...client.ListOption) ([]tlsref.Ref, error) {
	var refs []tlsref.Ref
	var gws gwapiv1.GatewayList
	if err := reader.List(ctx, &gws, opts...); err != nil {
		return nil, fmt.Errorf("listing gateways: %w", err)
	}
	for i := range gws.Items {
		refs = append(refs, tlsref.GatewaySecrets(&gws.Items[i])...)
	}
	if !served.ListenerSets {
		return refs, nil
	}
	var sets gwapiv1.ListenerSetList
	if err := reader.List(ctx, &sets, opts...); err != nil {
		return nil, fmt.Errorf("listing listenersets: %w", err)
	}
	for i := range sets.Items {
		refs = append(refs, tlsref.ListenerSetSecrets(&sets.Items[i])...)
	}
	return refs, nil
}
