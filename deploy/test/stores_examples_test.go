// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestCloudStoreExamples renders the chart with each
// deploy/examples/values-<cloud>.yaml and checks that the store, its
// settings and the guard's second identity reach Keyward's flags, and that
// the pod's cloud identity is wired the way that cloud's workload identity
// expects (no static credentials).
func TestCloudStoreExamples(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, annotation string
		args             []string
		podLabel         string
	}{
		{"values-aws.yaml", "eks.amazonaws.com/role-arn",
			[]string{"--custody-store=aws", "--aws-region=eu-west-1", "--aws-guard-role-arn=arn:aws:iam::111122223333:role/keyward-guard"}, ""},
		{"values-gcp.yaml", "iam.gke.io/gcp-service-account",
			[]string{"--custody-store=gcp", "--gcp-project=my-project", "--gcp-guard-service-account=keyward-guard@my-project.iam.gserviceaccount.com"}, ""},
		{"values-azure.yaml", "azure.workload.identity/client-id",
			[]string{"--custody-store=azure", "--azure-vault-url=https://keyward-prod.vault.azure.net/", "--azure-guard-client-id=00000000-0000-0000-0000-000000000002"},
			"azure.workload.identity/use"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			out, err := RenderChart(filepath.Join(root, "deploy", "examples", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := decodeManifests(newScheme(t), out)
			if err != nil {
				t.Fatal(err)
			}
			d := one[*appsv1.Deployment](t, m)
			args := containerArgs(t, d)
			for _, want := range append(tc.args, "--cluster-name=prod-eu-1") {
				if !slices.Contains(args, want) {
					t.Errorf("args lack %q: %v", want, args)
				}
			}
			if sa := one[*corev1.ServiceAccount](t, m); sa.Annotations[tc.annotation] == "" {
				t.Errorf("ServiceAccount lacks the workload identity annotation %s", tc.annotation)
			}
			if tc.podLabel != "" && d.Spec.Template.Labels[tc.podLabel] != "true" {
				t.Errorf("pod template lacks label %s=true", tc.podLabel)
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				for _, e := range c.Env {
					switch e.Name {
					case "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CLIENT_SECRET":
						t.Errorf("container %s carries static credentials in %s", c.Name, e.Name)
					}
				}
			}
		})
	}
}
