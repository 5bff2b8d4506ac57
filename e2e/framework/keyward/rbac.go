// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package keyward

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/keyward-io/keyward/e2e/framework"
)

// applyChartRBAC renders the Helm chart with its default values (and
// values, each a --set argument), creates its
// RBAC objects, and returns a config that impersonates Keyward's
// ServiceAccount, so Keyward runs with exactly the permissions the chart
// grants.
func applyChartRBAC(ctx context.Context, env *framework.Env, values []string) (*rest.Config, error) {
	root, err := framework.RepoRoot()
	if err != nil {
		return nil, err
	}
	bin, err := framework.BinDir()
	if err != nil {
		return nil, err
	}
	// The chart requires a cluster name with custody; the RBAC does not depend on it.
	args := []string{"template", "keyward", filepath.Join(root, "deploy", "charts", "keyward"),
		"--namespace", framework.KeywardNamespace, "--kube-version", "1.36.3", "--set", "clusterName=e2e"}
	for _, v := range values {
		args = append(args, "--set", v)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "helm"), args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("rendering the chart for its RBAC: %w: %s", err, out)
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	applied := 0
	for {
		doc, err := reader.Read()
		if err != nil {
			break
		}
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("reading rendered chart: %w", err)
		}
		var obj client.Object
		switch meta.Kind {
		case "ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "Role":
			obj = &rbacv1.Role{}
		case "RoleBinding":
			obj = &rbacv1.RoleBinding{}
		default:
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("decoding rendered %s: %w", meta.Kind, err)
		}
		if err := env.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the chart's %s %s: %w", meta.Kind, obj.GetName(), err)
		}
		applied++
	}
	if applied == 0 {
		return nil, fmt.Errorf("the chart rendered no RBAC objects")
	}
	cfg := rest.CopyConfig(env.RESTConfig)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + framework.KeywardNamespace + ":" + framework.KeywardServiceAccount,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + framework.KeywardNamespace, "system:authenticated"},
	}
	return cfg, nil
}
