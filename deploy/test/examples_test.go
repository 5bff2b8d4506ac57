// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// TestExamples checks deploy/examples against the CRDs in deploy/crds: every
// field the example VaultClusterIssuer sets exists in the schema, required
// fields are present and string patterns match; the example Certificate
// references that issuer.
func TestExamples(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	crdData, err := os.ReadFile(filepath.Join(root, "deploy", "crds", "vault.keyward.io_vaultclusterissuers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(crdData, &crd); err != nil {
		t.Fatalf("decoding CRD: %v", err)
	}
	issuerDocs := readDocs(t, filepath.Join(root, "deploy", "examples", "vaultclusterissuer.yaml"))
	if len(issuerDocs) != 1 {
		t.Fatalf("want one document in vaultclusterissuer.yaml, got %d", len(issuerDocs))
	}
	iss := issuerDocs[0]
	if iss["apiVersion"] != crd.Spec.Group+"/"+crd.Spec.Versions[0].Name || iss["kind"] != crd.Spec.Names.Kind {
		t.Errorf("example is %v %v, CRD serves %s/%s %s", iss["apiVersion"], iss["kind"], crd.Spec.Group, crd.Spec.Versions[0].Name, crd.Spec.Names.Kind)
	}
	schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	checkAgainstSchema(t, "spec", iss["spec"], schema.Properties["spec"])

	certDocs := readDocs(t, filepath.Join(root, "deploy", "examples", "certificate.yaml"))
	var found bool
	for _, d := range certDocs {
		if d["kind"] != "Certificate" {
			continue
		}
		found = true
		meta, _ := d["metadata"].(map[string]any)
		if str(meta, "name") != "demo-tls" || str(meta, "namespace") != "demo" {
			t.Errorf("example Certificate is %v, want demo/demo-tls", meta)
		}
		if str(d, "spec", "issuerRef", "group") != crd.Spec.Group || str(d, "spec", "issuerRef", "kind") != crd.Spec.Names.Kind ||
			str(d, "spec", "issuerRef", "name") != str(iss, "metadata", "name") {
			t.Errorf("example Certificate does not reference the example issuer: %v", d["spec"])
		}
		if str(d, "spec", "secretName") == "" || str(d, "spec", "privateKey", "algorithm") != "ECDSA" {
			t.Errorf("example Certificate needs secretName and an ECDSA key: %v", d["spec"])
		}
	}
	if !found {
		t.Errorf("certificate.yaml has no Certificate")
	}
}

func readDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, doc := range SplitDocuments(data) {
		var m map[string]any
		if err := yaml.UnmarshalStrict(doc, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// checkAgainstSchema is a small structural validator: types, unknown fields,
// required fields, patterns. Enough to catch an example that drifted from
// the API; the apiserver remains the real validator.
func checkAgainstSchema(t *testing.T, path string, v any, s apiextensionsv1.JSONSchemaProps) {
	t.Helper()
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: want an object, got %T", path, v)
			return
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				t.Errorf("%s: required field %s missing", path, r)
			}
		}
		for k, sub := range m {
			ps, ok := s.Properties[k]
			if !ok {
				known := make([]string, 0, len(s.Properties))
				for p := range s.Properties {
					known = append(known, p)
				}
				slices.Sort(known)
				t.Errorf("%s.%s: unknown field (schema has %s)", path, k, strings.Join(known, ", "))
				continue
			}
			checkAgainstSchema(t, path+"."+k, sub, ps)
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			t.Errorf("%s: want an array, got %T", path, v)
			return
		}
		for i, e := range l {
			checkAgainstSchema(t, path+"["+string(rune('0'+i))+"]", e, *s.Items.Schema)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			t.Errorf("%s: want a string, got %T", path, v)
			return
		}
		if s.Pattern != "" && !regexp.MustCompile(s.Pattern).MatchString(str) {
			t.Errorf("%s: %q does not match the CRD pattern %s", path, str, s.Pattern)
		}
		if s.MinLength != nil && int64(len(str)) < *s.MinLength {
			t.Errorf("%s: %q shorter than %d", path, str, *s.MinLength)
		}
	}
}

// TestACMEExamples checks the Let's Encrypt manifests' contract with
// docs/acme.md: staging and production ClusterIssuers on Let's Encrypt's
// directories, each with its own account key Secret and the DNS-01 rfc2136
// solver reading the acme-tsig Secret; a Certificate in a custody namespace
// on the staging issuer. (e2e TestACME also has the apiserver validate them
// against cert-manager's CRDs, and `make demo ACME=1` applies them.)
func TestACMEExamples(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]string{
		"letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
		"letsencrypt":         "https://acme-v02.api.letsencrypt.org/directory",
	}
	accounts := map[string]bool{}
	for _, d := range readDocs(t, filepath.Join(root, "deploy", "examples", "acme-clusterissuer.yaml")) {
		name := str(d, "metadata", "name")
		if d["kind"] != "ClusterIssuer" || servers[name] == "" {
			t.Errorf("unexpected %v %s in acme-clusterissuer.yaml", d["kind"], name)
			continue
		}
		if got := str(d, "spec", "acme", "server"); got != servers[name] {
			t.Errorf("%s: server %q, want %q", name, got, servers[name])
		}
		accounts[str(d, "spec", "acme", "privateKeySecretRef", "name")] = true
		solvers, _ := field(d, "spec", "acme", "solvers")
		list, _ := solvers.([]any)
		if len(list) != 1 {
			t.Fatalf("%s: want one solver, got %v", name, solvers)
		}
		solver, _ := list[0].(map[string]any)
		if str(solver, "dns01", "rfc2136", "tsigSecretSecretRef", "name") != "acme-tsig" || str(solver, "dns01", "rfc2136", "tsigAlgorithm") != "HMACSHA256" {
			t.Errorf("%s: want the DNS-01 rfc2136 solver with the acme-tsig Secret, got %v", name, solver)
		}
		delete(servers, name)
	}
	if len(servers) != 0 || len(accounts) != 2 {
		t.Errorf("missing ClusterIssuers %v, or account key Secrets not distinct (%v)", servers, accounts)
	}
	var custodyNS string
	var crt map[string]any
	for _, d := range readDocs(t, filepath.Join(root, "deploy", "examples", "acme-certificate.yaml")) {
		switch d["kind"] {
		case "Namespace":
			if str(d, "metadata", "labels", "keyward.io/custody") == "enabled" {
				custodyNS = str(d, "metadata", "name")
			}
		case "Certificate":
			crt = d
		}
	}
	if crt == nil || str(crt, "metadata", "namespace") != custodyNS || custodyNS == "" {
		t.Fatalf("acme-certificate.yaml needs a Certificate in a namespace labelled keyward.io/custody=enabled")
	}
	if str(crt, "spec", "issuerRef", "name") != "letsencrypt-staging" || str(crt, "spec", "issuerRef", "kind") != "ClusterIssuer" {
		t.Errorf("the example Certificate should start on letsencrypt-staging: %v", crt["spec"])
	}
}

// TestEveryExampleIsChecked fails when deploy/examples holds a file that no
// test validates (TestExamples, TestAgentExamples, TestACMEExamples,
// TestSecretProviderClassExample, TestGatewayExamples,
// TestCloudStoreExamples), or one without the
// license header.
func TestEveryExampleIsChecked(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	checked := []string{
		"acme-certificate.yaml", "acme-clusterissuer.yaml",
		"agent-rbac.yaml", "apisix-agent.yaml", "certificate.yaml", "gateway-sds.yaml",
		"istio-gateway-sds.yaml", "kong-agent.yaml", "nginx-agent.yaml", "secretproviderclass.yaml",
		"values-aws.yaml", "values-azure.yaml", "values-gcp.yaml", "vaultclusterissuer.yaml",
	}
	entries, err := os.ReadDir(filepath.Join(root, "deploy", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		found = append(found, e.Name())
		data, err := os.ReadFile(filepath.Join(root, "deploy", "examples", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "# Copyright 2026 The Keyward Authors.\n# SPDX-License-Identifier: Apache-2.0\n") {
			t.Errorf("%s does not start with the license header", e.Name())
		}
	}
	if !slices.Equal(found, checked) {
		t.Errorf("deploy/examples has %v; the tests check %v", found, checked)
	}
}
