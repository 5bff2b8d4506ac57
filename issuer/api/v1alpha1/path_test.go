// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"os"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"
)

// crdPathPattern reads spec.path's pattern from the generated CRD, so the
// test fails if the Go parser and the apiserver's validation drift apart.
func crdPathPattern(t *testing.T) *regexp.Regexp {
	t.Helper()
	raw, err := os.ReadFile("../../../deploy/crds/vault.keyward.io_vaultissuers.yaml")
	if err != nil {
		t.Fatalf("reading generated CRD (run hack/generate.sh): %v", err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Properties map[string]struct {
							Properties map[string]struct {
								Pattern string `json:"pattern"`
							} `json:"properties"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	p := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["path"].Pattern
	if p == "" {
		t.Fatal("CRD has no pattern on spec.path")
	}
	return regexp.MustCompile(p)
}

func TestParseSignPath(t *testing.T) {
	t.Parallel()
	crd := crdPathPattern(t)
	tests := []struct {
		path    string
		want    SignPath
		wantErr bool
		goOnly  bool // a form the Go parser tolerates but the CRD does not
	}{
		{path: "pki_int/sign/keyward", want: SignPath{Mount: "pki_int", Role: "keyward"}},
		{path: "pki/issuer/default/sign/web", want: SignPath{Mount: "pki", IssuerRef: "default", Role: "web"}},
		{path: "team-a/pki/sign/web.role", want: SignPath{Mount: "team-a/pki", Role: "web.role"}},
		{path: "team/pki/issuer/2024-ca/sign/r", want: SignPath{Mount: "team/pki", IssuerRef: "2024-ca", Role: "r"}},
		{path: "/v1/pki/sign/web", want: SignPath{Mount: "pki", Role: "web"}, goOnly: true},
		{path: "pki/issue/web", wantErr: true},
		{path: "pki/sign", wantErr: true},
		{path: "sign/web", wantErr: true},
		{path: "pki/sign/web/extra", wantErr: true},
		{path: "pki//sign/web", wantErr: true},
		{path: "pki/sign/we b", wantErr: true},
		{path: "pki/sign-verbatim/web", wantErr: true},
		{path: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSignPath(tc.path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseSignPath(%q) error = %v, wantErr %v", tc.path, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("ParseSignPath(%q) = %+v, want %+v", tc.path, got, tc.want)
			}
			if !tc.goOnly && crd.MatchString(tc.path) == tc.wantErr {
				t.Errorf("CRD pattern match(%q) = %v, Go parser error = %v: they disagree", tc.path, !tc.wantErr, err)
			}
			if err == nil && !tc.goOnly && got.String() != tc.path {
				t.Errorf("String() = %q, want %q", got.String(), tc.path)
			}
		})
	}
}
