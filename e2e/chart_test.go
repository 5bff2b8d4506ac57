// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/e2e/framework"
)

// chartKubeVersion is the cluster version the chart is rendered for; it
// matches the apiserver the framework runs.
const chartKubeVersion = "1.36.3"

// chartSkippedKinds are rendered kinds whose CRDs the test apiserver does not
// have, with the reason. Nothing else may be skipped.
var chartSkippedKinds = map[schema.GroupKind]string{
	{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}: "prometheus-operator CRDs (monitoring.coreos.com) are not installed in the test apiserver",
	{Group: "monitoring.coreos.com", Kind: "PrometheusRule"}: "prometheus-operator CRDs (monitoring.coreos.com) are not installed in the test apiserver",
}

// TestChartServerSideDryRun is the install a cluster admin would attempt:
// every object the chart renders, with default values and with every option
// turned on, must be accepted by a real apiserver (schema, defaulting,
// validation and admission), not just parse as YAML.
func TestChartServerSideDryRun(t *testing.T) {
	env := framework.StartForTest(t, framework.Options{WithoutCertManager: true})
	for _, tc := range []struct {
		name   string
		values string // relative to the repository root; "" for chart defaults
	}{
		{name: "defaults"},
		{name: "all-options", values: filepath.Join("deploy", "test", "testdata", "all-options.yaml")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			objs := decodeManifests(t, renderChart(t, tc.values))
			dryRunInstall(ctx, t, env, objs)
		})
	}
}

// dryRunInstall creates the chart's CRDs and target namespaces for real (an
// install needs both to exist before anything else), then every other object
// with server-side dry-run.
func dryRunInstall(ctx context.Context, t *testing.T, env *framework.Env, objs []*unstructured.Unstructured) {
	t.Helper()
	c := env.Client
	crdKind := schema.GroupKind{Group: apiextensionsv1.GroupName, Kind: "CustomResourceDefinition"}
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == crdKind {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	if len(crds) == 0 {
		t.Fatalf("the chart rendered no CRDs (helm template --include-crds)")
	}
	for _, crd := range crds {
		applyCRD(ctx, t, c, crd)
	}

	namespaces := []string{framework.KeywardNamespace}
	var skipped, accepted int
	for _, o := range rest {
		gk := o.GroupVersionKind().GroupKind()
		if _, skip := chartSkippedKinds[gk]; skip {
			continue
		}
		namespaced, err := c.IsObjectNamespaced(o)
		if err != nil {
			t.Errorf("%s: the apiserver does not serve this kind: %v", objectRef(o), err)
			continue
		}
		if !namespaced {
			continue
		}
		if o.GetNamespace() == "" {
			o.SetNamespace(framework.KeywardNamespace) // helm install fills in the release namespace
		}
		if !slices.Contains(namespaces, o.GetNamespace()) {
			namespaces = append(namespaces, o.GetNamespace())
		}
	}
	for _, ns := range namespaces {
		if err := env.CreateNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("namespaces the chart writes to, created for real (an install needs them): %v", namespaces)

	for _, o := range rest {
		gk := o.GroupVersionKind().GroupKind()
		if why, skip := chartSkippedKinds[gk]; skip {
			t.Logf("skipped %s: %s", objectRef(o), why)
			skipped++
			continue
		}
		if err := dryRunCreate(ctx, t, c, o); err != nil {
			t.Errorf("apiserver rejected %s: %v", objectRef(o), err)
			continue
		}
		accepted++
	}
	t.Logf("%d CRDs applied, %d objects accepted by server-side dry-run, %d skipped", len(crds), accepted, skipped)
	if accepted == 0 {
		t.Errorf("no object was checked")
	}
}

// dryRunCreate checks o with a server-side dry-run create. An object the
// framework already made (it bootstraps Keyward's ServiceAccount as an
// install would) is checked as a dry-run update of the live object instead,
// which runs the same validation and admission.
func dryRunCreate(ctx context.Context, t *testing.T, c client.Client, o *unstructured.Unstructured) error {
	t.Helper()
	err := c.Create(ctx, o.DeepCopy(), client.DryRunAll)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
		return fmt.Errorf("reading the existing object: %w", err)
	}
	update := o.DeepCopy()
	update.SetResourceVersion(live.GetResourceVersion())
	t.Logf("%s exists already; checked as a dry-run update", objectRef(o))
	return c.Update(ctx, update, client.DryRunAll)
}

// applyCRD creates a chart CRD for real and waits until it is established.
// When the framework already installed it (from deploy/crds), the chart's
// copy must still be accepted as an update, checked with dry-run.
func applyCRD(ctx context.Context, t *testing.T, c client.Client, crd *unstructured.Unstructured) {
	t.Helper()
	err := c.Create(ctx, crd.DeepCopy())
	if apierrors.IsAlreadyExists(err) {
		err = dryRunCreate(ctx, t, c, crd)
	}
	if err != nil {
		t.Fatalf("apiserver rejected CustomResourceDefinition %s: %v", crd.GetName(), err)
	}
	waitFor(t, 20*time.Second, "CRD "+crd.GetName()+" Established", func(ctx context.Context) (bool, error) {
		// Unstructured: the framework's scheme does not know apiextensions types.
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(crd.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKey{Name: crd.GetName()}, got); err != nil {
			return false, err
		}
		conds, _, err := unstructured.NestedSlice(got.Object, "status", "conditions")
		if err != nil {
			return false, err
		}
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == string(apiextensionsv1.Established) && m["status"] == string(apiextensionsv1.ConditionTrue) {
				return true, nil
			}
		}
		return false, nil
	})
}

// objectRef names an object for messages: "Kind.group namespace/name", or
// "Kind.group name" when cluster-scoped.
func objectRef(o *unstructured.Unstructured) string {
	gk := o.GroupVersionKind().GroupKind().String()
	if o.GetNamespace() == "" {
		return gk + " " + o.GetName()
	}
	return gk + " " + o.GetNamespace() + "/" + o.GetName()
}

// renderChart runs bin/helm template on deploy/charts/keyward as release
// keyward in keyward-system, CRDs included, with throwaway helm directories
// so the user's helm configuration and the network are never involved.
func renderChart(t *testing.T, values string) []byte {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := framework.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	args := []string{
		"template", "keyward", filepath.Join(root, "deploy", "charts", "keyward"),
		"--namespace", framework.KeywardNamespace,
		"--kube-version", chartKubeVersion,
		"--include-crds",
	}
	// clusterName is required with custody; a later values file may override it.
	args = append(args, "--values", filepath.Join(root, "deploy", "test", "testdata", "cluster-name.yaml"))
	if values != "" {
		args = append(args, "--values", filepath.Join(root, values))
	}
	cmd := exec.Command(filepath.Join(bin, "helm"), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template (values %q): %v: %s", values, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes()
}

// decodeManifests splits multi-document YAML into objects, dropping empty
// documents (helm emits them for disabled templates).
func decodeManifests(t *testing.T, manifests []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding rendered document %d: %v", i, err)
		}
		if len(m) == 0 {
			continue
		}
		o := &unstructured.Unstructured{Object: m}
		if o.GetKind() == "" || o.GetAPIVersion() == "" {
			t.Fatalf("rendered document %d has no kind or apiVersion", i)
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		t.Fatalf("the chart rendered no objects")
	}
	return objs
}

// exampleObjects decodes deploy/examples/<file>.
func exampleObjects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "examples", file))
	if err != nil {
		t.Fatal(err)
	}
	return decodeManifests(t, data)
}
