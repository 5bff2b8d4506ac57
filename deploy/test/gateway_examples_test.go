// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestGatewayExamples checks the keyward sds examples for the wiring that
// makes them work, which no schema would catch:
//   - gateway-sds.yaml: the GatewayClass's keyward.io/sds-url is the socket
//     the sidecar listens on, in a memory-backed volume that the envoy
//     container mounts too; the sidecar serves that class; the Gateway names
//     the example VaultClusterIssuer as an external issuer; the Role lets the
//     sidecar watch exactly the Gateway's certificateRefs.
//   - istio-gateway-sds.yaml: the credentialName sds://<ns>/<name> is served
//     (--name <ns>/<name>) on Istio's well-known socket.
//   - every sidecar flag exists in `keyward sds --help`.
//
// e2e/gateway_test.go applies the Gateway API and RBAC objects to a real
// apiserver (the EnvoyProxy and Istio kinds are not installed there).
func TestGatewayExamples(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	flags := sdsFlags(t, root)
	eg := readDocs(t, filepath.Join(root, "deploy", "examples", "gateway-sds.yaml"))
	byKind := map[string]map[string]any{}
	for _, d := range eg {
		byKind[str(d, "kind")] = d
	}
	url := str(byKind["GatewayClass"], "metadata", "annotations", "keyward.io/sds-url")
	socket, ok := strings.CutPrefix(url, "unix://")
	if !ok {
		t.Fatalf("GatewayClass keyward.io/sds-url = %q, want unix://<socket>", url)
	}
	spec, _ := field(byKind["EnvoyProxy"], "spec", "provider", "kubernetes", "envoyDeployment", "patch", "value", "spec", "template", "spec")
	pod, _ := spec.(map[string]any)
	sidecar := namedItem(t, pod, "initContainers", "keyward-sds")
	args := stringsOf(sidecar["args"])
	checkSDSArgs(t, "gateway-sds.yaml", args, flags)
	if !slices.Contains(args, "--socket="+socket) || !slices.Contains(args, "--gateway-class="+str(byKind["GatewayClass"], "metadata", "name")) {
		t.Errorf("sidecar args %v: want --socket=%s and --gateway-class of the marked class", args, socket)
	}
	vol := volumeMountedAt(t, sidecar, filepath.Dir(socket))
	if envoy := namedItem(t, pod, "containers", "envoy"); volumeMountedAt(t, envoy, filepath.Dir(socket)) != vol {
		t.Errorf("envoy does not mount the socket's volume %s at %s", vol, filepath.Dir(socket))
	}
	if v := namedItem(t, pod, "volumes", vol); str(v, "emptyDir", "medium") != "Memory" {
		t.Errorf("socket volume %s is not a memory-backed emptyDir: %v", vol, v)
	}
	gw := byKind["Gateway"]
	if str(gw, "metadata", "annotations", "cert-manager.io/issuer-kind") != "VaultClusterIssuer" ||
		str(gw, "metadata", "annotations", "cert-manager.io/issuer-group") != "vault.keyward.io" ||
		str(gw, "metadata", "annotations", "cert-manager.io/issuer") != "vault" {
		t.Errorf("Gateway annotations %v do not select the VaultClusterIssuer vault", gw["metadata"])
	}
	var refs []string
	listeners, _ := field(gw, "spec", "listeners")
	for _, l := range listeners.([]any) {
		certs, _ := field(l.(map[string]any), "tls", "certificateRefs")
		for _, c := range certs.([]any) {
			refs = append(refs, str(c.(map[string]any), "name"))
		}
	}
	rules, _ := field(byKind["Role"], "rules")
	names := stringsOf(rules.([]any)[0].(map[string]any)["resourceNames"])
	slices.Sort(refs)
	slices.Sort(names)
	if len(refs) == 0 || !slices.Equal(refs, names) {
		t.Errorf("Role resourceNames %v, the Gateway's certificateRefs %v: want the same", names, refs)
	}

	istio := readDocs(t, filepath.Join(root, "deploy", "examples", "istio-gateway-sds.yaml"))
	var credential string
	var iargs []string
	for _, d := range istio {
		switch str(d, "kind") {
		case "Gateway":
			servers, _ := field(d, "spec", "servers")
			credential = str(servers.([]any)[0].(map[string]any), "tls", "credentialName")
		case "Deployment":
			spec, _ := field(d, "spec", "template", "spec")
			iargs = stringsOf(namedItem(t, spec.(map[string]any), "initContainers", "keyward-sds")["args"])
		}
	}
	checkSDSArgs(t, "istio-gateway-sds.yaml", iargs, flags)
	name, ok := strings.CutPrefix(credential, "sds://")
	if !ok || !slices.Contains(iargs, "--name="+name) || !slices.Contains(iargs, "--socket=/var/run/secrets/credential-uds/socket") {
		t.Errorf("Istio: credentialName %q, sidecar args %v: want --name=%s on Istio's credential-uds socket", credential, iargs, name)
	}
}

// sdsFlags builds the keyward binary and returns the flags `keyward sds
// --help` lists.
func sdsFlags(t *testing.T, root string) map[string]bool {
	t.Helper()
	bin := buildKeyward(t, root)
	out, _ := exec.Command(bin, "sds", "--help").CombinedOutput()
	got := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		got[m[1]] = true
	}
	if !got["--socket"] {
		t.Fatalf("`keyward sds --help` lists no --socket:\n%s", out)
	}
	return got
}

func checkSDSArgs(t *testing.T, file string, args []string, flags map[string]bool) {
	t.Helper()
	if len(args) == 0 || args[0] != "sds" {
		t.Fatalf("%s: sidecar args %v do not start with the sds subcommand", file, args)
	}
	for _, a := range args[1:] {
		f, _, _ := strings.Cut(a, "=")
		if !flags[f] {
			t.Errorf("%s: %s is not a flag of keyward sds", file, f)
		}
	}
}

func namedItem(t *testing.T, obj map[string]any, list, name string) map[string]any {
	t.Helper()
	items, _ := obj[list].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	t.Fatalf("no %s named %s", list, name)
	return nil
}

// volumeMountedAt is the volume c mounts at path.
func volumeMountedAt(t *testing.T, c map[string]any, path string) string {
	t.Helper()
	mounts, _ := c["volumeMounts"].([]any)
	for _, m := range mounts {
		if mm, ok := m.(map[string]any); ok && mm["mountPath"] == path {
			return str(mm, "name")
		}
	}
	t.Fatalf("container %v mounts nothing at %s", c["name"], path)
	return ""
}

func stringsOf(v any) []string {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
