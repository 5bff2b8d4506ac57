// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"fmt"
	"os"
	"path/filepath"
)

// gatewayAPIModule is the Gateway API release whose CRDs the stack installs:
// the one cert-manager v1.21.2 is built against.
const gatewayAPIModule = "sigs.k8s.io/gateway-api"

// GatewayAPICRDs lists the CRD files Options.GatewayAPI installs: the
// Gateway API standard channel's GatewayClass, Gateway, ListenerSet,
// HTTPRoute, TLSRoute and ReferenceGrant (from the sigs.k8s.io/gateway-api
// module in the module cache, the version go.mod names), and
// testdata/apisixtls-crd.yaml: a stand-in for APISIX's ApisixTls CRD, whose
// real definition ships in the APISIX ingress controller's Helm chart and is
// not served here. The stand-in declares the fields Keyward reads
// (spec.secret.name and .namespace, spec.hosts) and keeps the rest.
func GatewayAPICRDs() ([]string, error) {
	dir, err := ModuleDir(gatewayAPIModule)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, kind := range []string{"gatewayclasses", "gateways", "listenersets", "httproutes", "tlsroutes", "referencegrants"} {
		f := filepath.Join(dir, "config", "crd", "standard", "gateway.networking.k8s.io_"+kind+".yaml")
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("gateway API CRD %s: %w", kind, err)
		}
		files = append(files, f)
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	return append(files, filepath.Join(root, "e2e", "framework", "testdata", "apisixtls-crd.yaml")), nil
}
