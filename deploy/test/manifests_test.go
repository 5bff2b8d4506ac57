// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"fmt"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// object is a decoded Kubernetes object with metadata.
type object interface {
	runtime.Object
	metav1.Object
}

// manifests is one rendering of the chart, decoded.
type manifests struct {
	// typed holds every document whose kind is in client-go's scheme or
	// apiextensions, decoded strictly (unknown or duplicate fields fail).
	typed []object
	// foreign holds cert-manager and Prometheus Operator kinds, which are
	// checked field by field.
	foreign []map[string]any
}

// isForeign reports whether gvk is one of the kinds the chart renders that no
// Go scheme here knows: cert-manager's and the Prometheus Operator's.
func isForeign(gvk schema.GroupVersionKind) bool {
	switch gvk {
	case schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Issuer"},
		schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"},
		schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"},
		schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}:
		return true
	}
	return false
}

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatalf("building scheme: %v", err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatalf("building scheme: %v", err)
	}
	return s
}

// renderAndDecode renders the chart with valuesFile (relative to testdata/,
// "" for defaults) and decodes every document.
func renderAndDecode(t *testing.T, valuesFile string) *manifests {
	t.Helper()
	path := ""
	if valuesFile != "" {
		abs, err := filepath.Abs(filepath.Join("testdata", valuesFile))
		if err != nil {
			t.Fatal(err)
		}
		path = abs
	}
	out, err := RenderChart(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifests(newScheme(t), out)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func decodeManifests(scheme *runtime.Scheme, out []byte) (*manifests, error) {
	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
	m := &manifests{}
	for i, doc := range SplitDocuments(out) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
		gvk := schema.FromAPIVersionAndKind(head.APIVersion, head.Kind)
		if isForeign(gvk) {
			var obj map[string]any
			if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
				return nil, fmt.Errorf("document %d (%s): %w", i, gvk, err)
			}
			m.foreign = append(m.foreign, obj)
			continue
		}
		if !scheme.Recognizes(gvk) {
			return nil, fmt.Errorf("document %d: kind %s is neither in the scheme nor a known foreign kind", i, gvk)
		}
		obj, _, err := strict.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): strict decoding: %w\n%s", i, gvk, err, doc)
		}
		co, ok := obj.(object)
		if !ok {
			return nil, fmt.Errorf("document %d (%s) is not an object with metadata", i, gvk)
		}
		m.typed = append(m.typed, co)
	}
	if len(m.typed) == 0 {
		return nil, fmt.Errorf("chart rendered no documents")
	}
	return m, nil
}

// all returns the typed objects of type T.
func all[T object](m *manifests) []T {
	var out []T
	for _, o := range m.typed {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// one returns the only typed object of type T, failing otherwise.
func one[T object](t *testing.T, m *manifests) T {
	t.Helper()
	objs := all[T](m)
	if len(objs) != 1 {
		var zero T
		t.Fatalf("want exactly one %T, got %d", zero, len(objs))
	}
	return objs[0]
}

// foreignOf returns the foreign objects of the given kind.
func foreignOf(m *manifests, kind string) []map[string]any {
	var out []map[string]any
	for _, o := range m.foreign {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}

// field walks nested maps along path; ok is false when a step is missing.
func field(obj map[string]any, path ...string) (any, bool) {
	var cur any = obj
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func str(obj map[string]any, path ...string) string {
	v, _ := field(obj, path...)
	s, _ := v.(string)
	return s
}
