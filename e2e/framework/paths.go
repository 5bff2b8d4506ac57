// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package framework starts Keyward's real test stack: etcd and kube-apiserver
// (through envtest), a Vault dev server configured like a production
// deployment, and cert-manager's own controllers in-process. Integration
// tests, the e2e scenarios and `make demo` all use it, so what the tests prove
// is what the demo shows.
package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

const modulePath = "github.com/keyward-io/keyward"

// RepoRoot returns the root of the Keyward checkout, found by walking up from
// the working directory to the go.mod that declares Keyward's module path.
// KEYWARD_ROOT overrides the search.
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
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod for " + modulePath + " above the working directory (set KEYWARD_ROOT)")
		}
		dir = parent
	}
}

// BinDir is where `make tools` puts kube-apiserver, etcd and vault.
// KEYWARD_BIN_DIR overrides <root>/bin.
func BinDir() (string, error) {
	if dir := os.Getenv("KEYWARD_BIN_DIR"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

// binary returns the path of a required tool binary, or an error telling the
// user how to build it: tests never download anything.
func binary(name string) (string, error) {
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s not found in %s: run `make tools` first: %w", name, dir, err)
	}
	return path, nil
}

// ModuleDir returns the directory of a dependency in the module cache, as
// resolved by this repository's go.mod (e.g. cert-manager's CRDs live there).
func ModuleDir(module string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = root
	// Read-only: resolving a path must never edit go.mod or fetch anything.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local", "GOPROXY=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("locating module %s: %w: %s", module, err, out)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("locating module %s: not in the module cache (run `go mod download`)", module)
	}
	return dir, nil
}

// keywardBuild serialises KeywardBinary within the test process: the one
// piece of shared state in the framework, guarding one shared file.
var keywardBuild sync.Mutex

// KeywardBinary builds ./cmd/keyward into bin/keyward (go build's cache
// makes a rebuild of unchanged sources quick) and returns its path.
func KeywardBinary(ctx context.Context) (string, error) {
	// Parallel scenarios build the same output; two go builds writing
	// bin/keyward at once can leave one of them running a half-written file.
	keywardBuild.Lock()
	defer keywardBuild.Unlock()
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "keyward")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/keyward")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local", "GOPROXY=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building keyward (go build -o %s ./cmd/keyward): %w: %s", out, err, b)
	}
	return out, nil
}
