// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package listeners keeps custody from breaking TLS listeners silently. Every
// Gateway API implementation, ingress controller and the APISIX ingress
// controller drops a listener whose Secret has an empty tls.key, which is
// what a custody placeholder has. This package:
//   - tells the scrub webhook when a Secret being created should become an
//     Envoy Gateway SDS reference (SDSResolver): its Gateways' class is
//     marked with custody.GatewayClassAnnotationSDSURL, so `keyward sds`
//     serves the key from custody to the proxy;
//   - finds every listener, Ingress tls entry and ApisixTls that references
//     a custody placeholder with no working path to its key (Checker), and
//     says so with a Warning event on the referencing object and on the
//     Certificate, and the gauge keyward_tls_references_unservable.
//
// Custody is never relaxed to make a listener work.
package listeners

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ApisixTlsGVK is the APISIX ingress controller's ApisixTls (v2).
var ApisixTlsGVK = schema.GroupVersionKind{Group: "apisix.apache.org", Version: "v2", Kind: "ApisixTls"}

// Served says which of the optional APIs the apiserver serves. Ingresses
// (networking.k8s.io/v1) are always served.
type Served struct {
	// Gateways: gateway.networking.k8s.io/v1 Gateways and GatewayClasses.
	Gateways bool
	// ListenerSets: gateway.networking.k8s.io/v1 ListenerSets.
	ListenerSets bool
	// ApisixTls: apisix.apache.org/v2 ApisixTls.
	ApisixTls bool
}

// Discover asks the apiserver which optional APIs it serves. A group that
// is not installed is not an error; anything else is. The answer is read
// once, at start: installing the Gateway API CRDs later needs a restart
// (docs/gateway-api.md).
func Discover(dc discovery.DiscoveryInterface) (Served, error) {
	kinds := func(gv string) (map[string]bool, error) {
		res, err := dc.ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("discovering %s: %w", gv, err)
		}
		out := map[string]bool{}
		for _, r := range res.APIResources {
			out[r.Kind] = true
		}
		return out, nil
	}
	var s Served
	gw, err := kinds(gwapiv1.GroupVersion.String())
	if err != nil {
		return s, err
	}
	s.Gateways = gw["Gateway"] && gw["GatewayClass"]
	s.ListenerSets = s.Gateways && gw["ListenerSet"]
	apisix, err := kinds(ApisixTlsGVK.GroupVersion().String())
	if err != nil {
		return s, err
	}
	s.ApisixTls = apisix[ApisixTlsGVK.Kind]
	return s, nil
}
