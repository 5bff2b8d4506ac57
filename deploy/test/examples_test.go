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

// TestEveryExampleIsChecked fails when deploy/examples holds a file that no
// test validates (TestExamples, TestAgentExamples,
// TestSecretProviderClassExample), or one without the license header.
func TestEveryExampleIsChecked(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	checked := []string{
		"agent-rbac.yaml", "apisix-agent.yaml", "certificate.yaml", "kong-agent.yaml",
		"nginx-agent.yaml", "secretproviderclass.yaml", "vaultclusterissuer.yaml",
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
