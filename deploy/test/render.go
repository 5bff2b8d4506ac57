// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package deploytest checks Keyward's deployment artefacts: the Helm chart,
// the Prometheus rules, the Grafana dashboard and the copies the chart keeps
// of the CRDs. It is its own Go module so that Prometheus' large dependency
// tree never reaches Keyward's go.mod.
//
// RenderChart is exported so other harnesses (e.g. a server-side dry-run
// against a real apiserver) render the chart exactly as these tests do.
package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
)

// Names the chart is rendered with. They match the install instructions in
// docs/operations.md and the Vault roles deploy/vault/setup.sh creates.
const (
	ReleaseName      = "keyward"
	ReleaseNamespace = "keyward-system"
	// KubeVersion is the cluster version helm template assumes. Pinned so the
	// output does not depend on the helm build.
	KubeVersion = "v1.34.0"
)

const mainModule = "github.com/keyward-io/keyward"

// RepoRoot returns the root of the Keyward checkout: KEYWARD_ROOT when set,
// else the nearest directory above the working directory whose go.mod
// declares Keyward's main module.
func RepoRoot() (string, error) {
	if root := os.Getenv("KEYWARD_ROOT"); root != "" {
		return root, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module "+mainModule+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod for " + mainModule + " above the working directory (set KEYWARD_ROOT)")
		}
		dir = parent
	}
}

// HelmBinary returns the helm CLI to use: KEYWARD_HELM when set, else
// <root>/bin/helm (built from hack/tools/helm).
func HelmBinary() (string, error) {
	if h := os.Getenv("KEYWARD_HELM"); h != "" {
		return h, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	h := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(h); err != nil {
		return "", fmt.Errorf("helm not found at %s; build it with: cd hack/tools/helm && go build -o ../../../bin/helm helm.sh/helm/v3/cmd/helm: %w", h, err)
	}
	return h, nil
}

// RenderChart runs `helm template` on deploy/charts/keyward as release
// ReleaseName in ReleaseNamespace, CRDs included, and returns the multi-document
// YAML. testdata/cluster-name.yaml (the required clusterName) is passed
// first, then valuesFile unless empty. helm runs
// with throwaway config and cache directories, so it never touches the
// user's helm setup or the network.
func RenderChart(valuesFile string) ([]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	helm, err := HelmBinary()
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "keyward-helm-")
	if err != nil {
		return nil, fmt.Errorf("creating helm home: %w", err)
	}
	defer os.RemoveAll(home)

	args := []string{
		"template", ReleaseName, filepath.Join(root, "deploy", "charts", "keyward"),
		"--namespace", ReleaseNamespace,
		"--include-crds",
		"--kube-version", KubeVersion,
	}
	// clusterName is required with custody; a later values file may
	// override it.
	args = append(args, "--values", filepath.Join(root, "deploy", "test", "testdata", "cluster-name.yaml"))
	if valuesFile != "" {
		args = append(args, "--values", valuesFile)
	}
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("rendering chart with values %q: %w: %s", valuesFile, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// SplitDocuments splits multi-document YAML on "---" lines and drops
// documents that hold only comments or whitespace.
func SplitDocuments(multi []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(multi), -1) {
		if hasContent(d) {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func hasContent(doc string) bool {
	for _, line := range bytes.Split([]byte(doc), []byte("\n")) {
		l := bytes.TrimSpace(line)
		if len(l) > 0 && l[0] != '#' {
			return true
		}
	}
	return false
}
