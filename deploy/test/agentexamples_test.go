// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// agentImage is the repository of the keyward binary's image, as in the
// chart's values.yaml; the examples pin the chart's appVersion.
const agentImage = "ghcr.io/keyward-io/keyward"

// agentExample is one of the Deployments with a keyward agent sidecar.
type agentExample struct {
	file string
	// sink is the one --sink the example uses.
	sink string
	// check runs the gateway-specific checks.
	check func(t *testing.T, objs []object, pod *corev1.PodSpec, flags agentArgs)
}

// TestAgentExamples checks deploy/examples' keyward agent deployments: every
// document decodes strictly into its Kubernetes type; the agent passes only
// flags from AgentFlags, in the form --flag=value; it serves only Secrets
// agent-rbac.yaml lets it watch, whose Role allows only get/list/watch by
// resourceNames; its Vault login token is a projected ServiceAccount token
// for audience vault; key directories are memory-backed emptyDirs; no
// volume, env var or projection takes anything from a served Secret; the
// agent runs non-root with a read-only root filesystem and no capabilities,
// and its probes are on /readyz and /healthz.
func TestAgentExamples(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	appVersion := chartAppVersion(t, root)
	rbac := checkAgentRBAC(t, decodeExample(t, root, "agent-rbac.yaml"))

	examples := []agentExample{
		{file: "nginx-agent.yaml", sink: "files", check: checkNginxExample},
		{file: "apisix-agent.yaml", sink: "apisix", check: checkAPISIXExample},
		{file: "kong-agent.yaml", sink: "kong", check: checkKongExample},
	}
	for _, ex := range examples {
		t.Run(ex.file, func(t *testing.T) {
			t.Parallel()
			objs := decodeExample(t, root, ex.file)
			deps := allOf[*appsv1.Deployment](objs)
			if len(deps) != 1 {
				t.Fatalf("want one Deployment, got %d", len(deps))
			}
			dep := deps[0]
			pod := &dep.Spec.Template.Spec
			if pod.ServiceAccountName != rbac.serviceAccount || dep.Namespace != rbac.namespace {
				t.Errorf("Deployment %s/%s runs as ServiceAccount %q; agent-rbac.yaml grants %s/%s",
					dep.Namespace, dep.Name, pod.ServiceAccountName, rbac.namespace, rbac.serviceAccount)
			}
			flags := checkAgentPod(t, dep.Namespace, pod, rbac, appVersion)
			if got := flags["--sink"]; !slices.Equal(got, []string{ex.sink}) {
				t.Errorf("agent sinks = %v, want [%s]", got, ex.sink)
			}
			ex.check(t, objs, pod, flags)
		})
	}
}

// agentArgs are the agent's flags as passed: name -> values in order.
type agentArgs map[string][]string

func (a agentArgs) get(name string) string {
	if v := a[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// agentRBAC is what agent-rbac.yaml grants.
type agentRBAC struct {
	namespace, serviceAccount string
	// secrets are the Secrets the Role lets the agent watch, "ns/name".
	secrets []string
}

func checkAgentRBAC(t *testing.T, objs []object) agentRBAC {
	t.Helper()
	sas := allOf[*corev1.ServiceAccount](objs)
	roles := allOf[*rbacv1.Role](objs)
	bindings := allOf[*rbacv1.RoleBinding](objs)
	if len(sas) != 1 || len(roles) != 1 || len(bindings) != 1 || len(objs) != 3 {
		t.Fatalf("agent-rbac.yaml: want exactly one ServiceAccount, Role and RoleBinding, got %d objects", len(objs))
	}
	if len(allOf[*rbacv1.ClusterRole](objs))+len(allOf[*rbacv1.ClusterRoleBinding](objs)) > 0 {
		t.Errorf("agent-rbac.yaml: the agent needs no cluster-wide rights")
	}
	sa, role, rb := sas[0], roles[0], bindings[0]
	out := agentRBAC{namespace: sa.Namespace, serviceAccount: sa.Name}
	for _, r := range role.Rules {
		if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.Resources, []string{"secrets"}) {
			t.Errorf("Role %s: rule %+v is not about core Secrets", role.Name, r)
		}
		if len(r.ResourceNames) == 0 {
			t.Errorf("Role %s: rule %+v is not restricted by resourceNames", role.Name, r)
		}
		for _, v := range r.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("Role %s: verb %q; the agent only reads metadata (get, list, watch)", role.Name, v)
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("Role %s: rule %+v has nonResourceURLs", role.Name, r)
		}
		for _, n := range r.ResourceNames {
			out.secrets = append(out.secrets, role.Namespace+"/"+n)
		}
	}
	if role.Namespace != sa.Namespace || rb.Namespace != sa.Namespace {
		t.Errorf("agent-rbac.yaml: ServiceAccount, Role and RoleBinding are in different namespaces")
	}
	wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}
	wantSubj := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}}
	if rb.RoleRef != wantRef || !slices.Equal(rb.Subjects, wantSubj) {
		t.Errorf("RoleBinding %s binds %+v to %+v; want the Role to the ServiceAccount", rb.Name, rb.RoleRef, rb.Subjects)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s: set automountServiceAccountToken: false; the pods mount the tokens they need", sa.Name)
	}
	return out
}

// checkAgentPod checks the agent container of pod and everything around it
// that holds credentials or keys, and returns the agent's flags.
func checkAgentPod(t *testing.T, namespace string, pod *corev1.PodSpec, rbac agentRBAC, appVersion string) agentArgs {
	t.Helper()
	agent, native := findAgent(t, pod)
	if agent == nil {
		t.Fatal("no keyward agent container (image " + agentImage + ")")
	}
	if native && (agent.RestartPolicy == nil || *agent.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
		t.Errorf("agent is an init container without restartPolicy: Always; it would block the pod forever")
	}
	if want := agentImage + ":" + appVersion; agent.Image != want {
		t.Errorf("agent image %s, want %s (the chart's appVersion)", agent.Image, want)
	}
	if !slices.Equal(agent.Command, []string{"/keyward"}) || len(agent.Args) == 0 || agent.Args[0] != "agent" {
		t.Fatalf("agent runs %v %v, want /keyward agent ...", agent.Command, agent.Args)
	}
	flags := parseAgentArgs(t, agent.Args[1:])

	// What it serves, against what it may watch.
	if len(flags["--secret"]) == 0 || flags.get("--vault-server") == "" || len(flags["--sink"]) == 0 {
		t.Errorf("agent needs --secret, --vault-server and --sink; has %v", flags)
	}
	podNS := namespace
	if flags.get("--namespace") != "" {
		podNS = flags.get("--namespace")
	} else if !hasFieldRefEnv(agent, "POD_NAMESPACE", "metadata.namespace") {
		t.Errorf("agent has neither --namespace nor POD_NAMESPACE from metadata.namespace")
	}
	var served []string
	for _, s := range flags["--secret"] {
		id := s
		if !strings.Contains(s, "/") {
			id = podNS + "/" + s
		}
		served = append(served, id)
		if !slices.Contains(rbac.secrets, id) {
			t.Errorf("agent serves %s, which agent-rbac.yaml does not let it watch (resourceNames %v)", id, rbac.secrets)
		}
	}
	if role := flags.get("--vault-role"); role != "" && role != AgentDefaultVaultRole {
		t.Errorf("agent logs in with Vault role %s; the examples use %s from deploy/vault/setup.sh", role, AgentDefaultVaultRole)
	}
	if _, ok := flags["--files-allow-non-tmpfs"]; ok {
		t.Errorf("an example must not pass --files-allow-non-tmpfs: key directories belong on tmpfs")
	}
	if _, ok := flags["--kubeconfig"]; ok {
		t.Errorf("an example must not pass --kubeconfig: the agent runs with its ServiceAccount")
	}

	checkAgentSecurity(t, pod, agent)
	checkAgentProbes(t, agent, flags)
	checkAPIToken(t, pod, agent)
	checkVaultToken(t, pod, agent, flags)
	checkNoServedSecret(t, pod, served)
	if slices.Contains(flags["--sink"], "files") {
		checkFilesSink(t, pod, agent, flags)
	}
	return flags
}

// findAgent returns the container running the keyward image and whether it
// is an init container (a native sidecar).
func findAgent(t *testing.T, pod *corev1.PodSpec) (*corev1.Container, bool) {
	t.Helper()
	var found *corev1.Container
	native := false
	for i := range pod.InitContainers {
		if strings.HasPrefix(pod.InitContainers[i].Image, agentImage+":") {
			if found != nil {
				t.Errorf("more than one agent container")
			}
			found, native = &pod.InitContainers[i], true
		}
	}
	for i := range pod.Containers {
		if strings.HasPrefix(pod.Containers[i].Image, agentImage+":") {
			if found != nil {
				t.Errorf("more than one agent container")
			}
			found, native = &pod.Containers[i], false
		}
	}
	return found, native
}

// parseAgentArgs checks args against AgentFlags and collects them.
func parseAgentArgs(t *testing.T, args []string) agentArgs {
	t.Helper()
	contract := AgentFlags()
	out := agentArgs{}
	for _, a := range args {
		name, value, hasValue := strings.Cut(a, "=")
		def, ok := contract[name]
		switch {
		case !strings.HasPrefix(a, "--"):
			t.Errorf("agent argument %q is not a --flag", a)
			continue
		case !ok:
			t.Errorf("agent flag %s is not in AgentFlags (the agent's contract)", name)
			continue
		case !def.Bool && !hasValue:
			t.Errorf("agent flag %s: write --flag=value, so a flag and its value stay one argument", name)
		case def.Bool && hasValue && value != "true" && value != "false":
			t.Errorf("agent flag %s takes no value, got %q", name, value)
		}
		if _, seen := out[name]; seen && !def.Repeatable {
			t.Errorf("agent flag %s given twice", name)
		}
		out[name] = append(out[name], value)
	}
	sinks := out["--sink"]
	for _, s := range sinks {
		if s != "files" && s != "apisix" && s != "kong" {
			t.Errorf("--sink=%s: the agent has files, apisix and kong", s)
		}
	}
	for name := range out {
		if s := contract[name].Sink; s != "" && !slices.Contains(sinks, s) {
			t.Errorf("agent flag %s configures the %s sink, which is not enabled (--sink %v)", name, s, sinks)
		}
	}
	return out
}

func hasFieldRefEnv(c *corev1.Container, name, fieldPath string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == fieldPath {
			return true
		}
	}
	return false
}

func checkAgentSecurity(t *testing.T, pod *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("agent has no securityContext")
		return
	}
	nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot
	if !nonRoot && pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil {
		nonRoot = *pod.SecurityContext.RunAsNonRoot
	}
	if !nonRoot {
		t.Errorf("agent may run as root (runAsNonRoot unset)")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("agent's root filesystem is writable")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("agent allows privilege escalation")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("agent must drop ALL capabilities and add none: %+v", sc.Capabilities)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("agent is privileged")
	}
}

func checkAgentProbes(t *testing.T, c *corev1.Container, flags agentArgs) {
	t.Helper()
	port := AgentDefaultHealthPort
	if addr := flags.get("--health-addr"); addr != "" {
		_, p, _ := strings.Cut(addr, ":")
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Errorf("--health-addr=%s has no port", addr)
		}
		port = n
	}
	for _, pr := range []struct {
		probe *corev1.Probe
		kind  string
		path  string
	}{{c.ReadinessProbe, "readiness", "/readyz"}, {c.LivenessProbe, "liveness", "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("agent has no HTTP %s probe", pr.kind)
			continue
		}
		g := pr.probe.HTTPGet
		if g.Path != pr.path || containerPort(c, g.Port) != port {
			t.Errorf("agent %s probe is %s on port %v, want %s on %d", pr.kind, g.Path, g.Port.String(), pr.path, port)
		}
	}
}

// containerPort resolves a probe port (number or name) on c; 0 if unknown.
func containerPort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

// mountOf returns the volume mounted at dir in c, with its mount.
func mountOf(pod *corev1.PodSpec, c *corev1.Container, dir string) (*corev1.Volume, *corev1.VolumeMount) {
	dir = path.Clean(dir)
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if path.Clean(m.MountPath) != dir || m.SubPath != "" {
			continue
		}
		for j := range pod.Volumes {
			if pod.Volumes[j].Name == m.Name {
				return &pod.Volumes[j], m
			}
		}
	}
	return nil, nil
}

// containersMounting lists the containers other than except that mount the
// volume named name, with their mounts.
func containersMounting(pod *corev1.PodSpec, name string, except *corev1.Container) map[string]corev1.VolumeMount {
	out := map[string]corev1.VolumeMount{}
	for _, list := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range list {
			if &list[i] == except {
				continue
			}
			for _, m := range list[i].VolumeMounts {
				if m.Name == name {
					out[list[i].Name] = m
				}
			}
		}
	}
	return out
}

// checkAPIToken: with automountServiceAccountToken off, the agent (and only
// it) mounts an API token where client-go's in-cluster config looks.
func checkAPIToken(t *testing.T, pod *corev1.PodSpec, agent *corev1.Container) {
	t.Helper()
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("pod automounts the API token into every container; mount it in the agent only")
		return
	}
	v, m := mountOf(pod, agent, "/var/run/secrets/kubernetes.io/serviceaccount")
	if v == nil || v.Projected == nil {
		t.Errorf("agent has no projected API token at /var/run/secrets/kubernetes.io/serviceaccount")
		return
	}
	if !m.ReadOnly {
		t.Errorf("agent's API token mount is writable")
	}
	var token, ca, ns bool
	for _, s := range v.Projected.Sources {
		switch {
		case s.ServiceAccountToken != nil:
			token = s.ServiceAccountToken.Audience == "" && s.ServiceAccountToken.Path == "token"
		case s.ConfigMap != nil:
			ca = s.ConfigMap.Name == "kube-root-ca.crt"
		case s.DownwardAPI != nil:
			ns = len(s.DownwardAPI.Items) == 1 && s.DownwardAPI.Items[0].Path == "namespace"
		}
	}
	if !token || !ca || !ns {
		t.Errorf("API token volume %s lacks token (apiserver audience), ca.crt or namespace: %+v", v.Name, v.Projected.Sources)
	}
	if others := containersMounting(pod, v.Name, agent); len(others) > 0 {
		t.Errorf("API token volume %s is also mounted in %v", v.Name, others)
	}
}

// checkVaultToken: --vault-token-file is a projected ServiceAccount token for
// audience vault, short-lived, mounted only in the agent.
func checkVaultToken(t *testing.T, pod *corev1.PodSpec, agent *corev1.Container, flags agentArgs) {
	t.Helper()
	file := flags.get("--vault-token-file")
	if file == "" {
		file = AgentDefaultVaultTokenFile
	}
	v, m := mountOf(pod, agent, path.Dir(file))
	if v == nil || v.Projected == nil || len(v.Projected.Sources) != 1 || v.Projected.Sources[0].ServiceAccountToken == nil {
		t.Errorf("agent has no projected ServiceAccount token volume at %s", path.Dir(file))
		return
	}
	st := v.Projected.Sources[0].ServiceAccountToken
	if st.Audience != "vault" || st.Path != path.Base(file) {
		t.Errorf("Vault token volume %s: audience %q path %q, want audience vault path %s", v.Name, st.Audience, st.Path, path.Base(file))
	}
	// The kubelet's minimum is 10 minutes; the Vault role's tokens live 15.
	if st.ExpirationSeconds == nil || *st.ExpirationSeconds < 600 || *st.ExpirationSeconds > 900 {
		t.Errorf("Vault token volume %s: expirationSeconds %v, want 600 to 900", v.Name, st.ExpirationSeconds)
	}
	if !m.ReadOnly {
		t.Errorf("Vault token mount is writable")
	}
	if others := containersMounting(pod, v.Name, agent); len(others) > 0 {
		t.Errorf("Vault token volume %s is also mounted in %v", v.Name, others)
	}
}

// checkNoServedSecret: nothing in the pod reads a served Secret (the
// placeholder has no key, and mounting it would invite putting one back),
// nor any tls.key of any Secret.
func checkNoServedSecret(t *testing.T, pod *corev1.PodSpec, served []string) {
	t.Helper()
	isServed := func(ns, name string) bool { return slices.Contains(served, ns+"/"+name) }
	ns := strings.Split(served[0], "/")[0]
	checkItems := func(where string, items []corev1.KeyToPath) {
		for _, it := range items {
			if it.Key == corev1.TLSPrivateKeyKey {
				t.Errorf("%s projects a Secret's %s", where, it.Key)
			}
		}
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			if isServed(ns, v.Secret.SecretName) {
				t.Errorf("volume %s mounts the served Secret %s", v.Name, v.Secret.SecretName)
			}
			checkItems("volume "+v.Name, v.Secret.Items)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					if isServed(ns, s.Secret.Name) {
						t.Errorf("volume %s projects the served Secret %s", v.Name, s.Secret.Name)
					}
					checkItems("volume "+v.Name, s.Secret.Items)
				}
			}
		}
		if v.CSI != nil || v.HostPath != nil || v.PersistentVolumeClaim != nil {
			t.Errorf("volume %s is CSI, hostPath or a PVC; the agent examples keep keys in memory only", v.Name)
		}
	}
	for _, list := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for _, c := range list {
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil &&
					(isServed(ns, r.SecretKeyRef.Name) || r.SecretKeyRef.Key == corev1.TLSPrivateKeyKey) {
					t.Errorf("container %s env %s reads %s from Secret %s", c.Name, e.Name, r.SecretKeyRef.Key, r.SecretKeyRef.Name)
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil && isServed(ns, ef.SecretRef.Name) {
					t.Errorf("container %s takes env from the served Secret %s", c.Name, ef.SecretRef.Name)
				}
			}
		}
	}
}

// checkFilesSink: the key directory is a memory-backed emptyDir, writable by
// the agent only; a reload by pidfile has the process namespace it needs.
func checkFilesSink(t *testing.T, pod *corev1.PodSpec, agent *corev1.Container, flags agentArgs) {
	t.Helper()
	dir := flags.get("--files-dir")
	if dir == "" {
		t.Errorf("files sink without --files-dir")
		return
	}
	v, m := mountOf(pod, agent, dir)
	if v == nil {
		t.Errorf("nothing is mounted at --files-dir=%s in the agent", dir)
		return
	}
	checkMemoryEmptyDir(t, v)
	if m.ReadOnly {
		t.Errorf("--files-dir=%s is mounted read-only in the agent", dir)
	}
	others := containersMounting(pod, v.Name, agent)
	if len(others) == 0 {
		t.Errorf("no other container mounts the key directory %s", v.Name)
	}
	for name, om := range others {
		if !om.ReadOnly {
			t.Errorf("container %s mounts the key directory %s writable", name, v.Name)
		}
	}
	if pid := flags.get("--files-reload-pidfile"); pid != "" {
		if pod.ShareProcessNamespace == nil || !*pod.ShareProcessNamespace {
			t.Errorf("--files-reload-pidfile needs shareProcessNamespace: true")
		}
		pv, _ := mountOf(pod, agent, path.Dir(pid))
		if pv == nil || len(containersMounting(pod, pv.Name, agent)) == 0 {
			t.Errorf("the pidfile's directory %s is not shared between the agent and the server", path.Dir(pid))
		}
	}
}

func checkMemoryEmptyDir(t *testing.T, v *corev1.Volume) {
	t.Helper()
	if v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("volume %s holds keys but is not an emptyDir with medium Memory", v.Name)
	}
}

func checkNginxExample(t *testing.T, objs []object, pod *corev1.PodSpec, flags agentArgs) {
	t.Helper()
	conf := configMapKey(t, objs, "nginx.conf")
	for _, want := range []string{
		"pid " + flags.get("--files-reload-pidfile") + ";",
		"ssl_certificate " + path.Join(flags.get("--files-dir"), "demo", "web-tls", "tls.crt") + ";",
		"ssl_certificate_key " + path.Join(flags.get("--files-dir"), "demo", "web-tls", "tls.key") + ";",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q (where the agent writes and signals)", want)
		}
	}
}

func checkAPISIXExample(t *testing.T, objs []object, pod *corev1.PodSpec, flags agentArgs) {
	t.Helper()
	// standalone: the sink mode that drives APISIX's in-memory API-driven
	// standalone deployment checked below.
	if flags.get("--apisix-mode") != "standalone" {
		t.Errorf("--apisix-mode=%s, want standalone", flags.get("--apisix-mode"))
	}
	checkLoopbackURL(t, "--apisix-admin-url", flags.get("--apisix-admin-url"))
	var conf struct {
		Deployment struct {
			Role            string `json:"role"`
			RoleTraditional struct {
				ConfigProvider string `json:"config_provider"`
			} `json:"role_traditional"`
			Admin struct {
				AdminListen struct {
					IP string `json:"ip"`
				} `json:"admin_listen"`
			} `json:"admin"`
		} `json:"deployment"`
	}
	if err := yaml.Unmarshal([]byte(configMapKey(t, objs, "config.yaml")), &conf); err != nil {
		t.Fatalf("APISIX config.yaml: %v", err)
	}
	d := conf.Deployment
	// Standalone, API-driven: configuration (SSL keys included) in memory, no etcd.
	if d.Role != "traditional" || d.RoleTraditional.ConfigProvider != "yaml" {
		t.Errorf("APISIX runs as %s with config_provider %q; --apisix-mode=standalone needs the in-memory API-driven standalone mode (traditional, yaml)",
			d.Role, d.RoleTraditional.ConfigProvider)
	}
	if d.Admin.AdminListen.IP != "127.0.0.1" {
		t.Errorf("APISIX Admin API listens on %q, want 127.0.0.1", d.Admin.AdminListen.IP)
	}
}

func checkKongExample(t *testing.T, objs []object, pod *corev1.PodSpec, flags agentArgs) {
	t.Helper()
	if flags.get("--kong-mode") != "dbless" {
		t.Errorf("--kong-mode=%s, want dbless", flags.get("--kong-mode"))
	}
	checkLoopbackURL(t, "--kong-admin-url", flags.get("--kong-admin-url"))
	var kong *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "kong" {
			kong = &pod.Containers[i]
		}
	}
	if kong == nil {
		t.Fatal("no container named kong")
	}
	env := map[string]string{}
	for _, e := range kong.Env {
		env[e.Name] = e.Value
	}
	if env["KONG_DATABASE"] != "off" {
		t.Errorf("KONG_DATABASE=%q, want off (DB-less)", env["KONG_DATABASE"])
	}
	if !strings.HasPrefix(env["KONG_ADMIN_LISTEN"], "127.0.0.1:") {
		t.Errorf("KONG_ADMIN_LISTEN=%q, want 127.0.0.1 only", env["KONG_ADMIN_LISTEN"])
	}
	// DB-less keeps its configuration, keys included, in <prefix>/dbless.lmdb.
	v, _ := mountOf(pod, kong, env["KONG_PREFIX"])
	if env["KONG_PREFIX"] == "" || v == nil {
		t.Errorf("Kong's prefix (KONG_PREFIX=%q) is not a mounted volume", env["KONG_PREFIX"])
	} else {
		checkMemoryEmptyDir(t, v)
	}
}

func checkLoopbackURL(t *testing.T, flag, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() != "127.0.0.1" {
		t.Errorf("%s=%s: the admin API should be reached on the pod's loopback", flag, raw)
	}
}

// TestSecretProviderClassExample checks the CSI alternative: Vault provider,
// reading the custody record's fields, with a role setup.sh creates, and no
// secretObjects (which would sync the key into a Kubernetes Secret).
func TestSecretProviderClassExample(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	docs := readRawDocs(t, filepath.Join(root, "deploy", "examples", "secretproviderclass.yaml"))
	if len(docs) != 1 {
		t.Fatalf("want one document, got %d", len(docs))
	}
	var spc struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       struct {
			Provider      string            `json:"provider"`
			Parameters    map[string]string `json:"parameters"`
			SecretObjects []map[string]any  `json:"secretObjects,omitempty"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(docs[0], &spc); err != nil {
		t.Fatalf("decoding SecretProviderClass: %v", err)
	}
	if spc.APIVersion != "secrets-store.csi.x-k8s.io/v1" || spc.Kind != "SecretProviderClass" {
		t.Errorf("got %s %s, want secrets-store.csi.x-k8s.io/v1 SecretProviderClass", spc.APIVersion, spc.Kind)
	}
	if spc.Spec.Provider != "vault" {
		t.Errorf("provider %q, want vault", spc.Spec.Provider)
	}
	if len(spc.Spec.SecretObjects) > 0 {
		t.Errorf("secretObjects would copy the key into a Kubernetes Secret, back into etcd")
	}
	p := spc.Spec.Parameters
	if !slices.Contains(setupRoles(t, root), p["roleName"]) {
		t.Errorf("roleName %q is not a role deploy/vault/setup.sh creates", p["roleName"])
	}
	var objects []struct {
		ObjectName string `json:"objectName"`
		SecretPath string `json:"secretPath"`
		SecretKey  string `json:"secretKey"`
	}
	if err := yaml.UnmarshalStrict([]byte(p["objects"]), &objects); err != nil {
		t.Fatalf("parameters.objects: %v", err)
	}
	// my-cluster: the clusterName the agent examples pass as --cluster-name.
	want := "custody/data/tls/my-cluster/" + spc.Metadata.Namespace + "/web-tls"
	var keys []string
	for _, o := range objects {
		if o.SecretPath != want || o.ObjectName != o.SecretKey {
			t.Errorf("object %+v: want secretPath %s and objectName = secretKey", o, want)
		}
		keys = append(keys, o.SecretKey)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"ca.crt", "tls.crt", "tls.key"}) {
		t.Errorf("objects read %v, want the record's fields ca.crt, tls.crt, tls.key", keys)
	}
}

// TestAgentVaultSide checks that the Vault configuration matches what the
// examples and the agent assume: the agent's policy and APISIX's mirror
// policy only read; the apisix sink's default token policy is shipped and is
// the only policy the agent may give APISIX's token; setup.sh creates the agent's role for agent-rbac.yaml's ServiceAccount,
// with tokens of at most 15 minutes.
func TestAgentVaultSide(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, pc := range []struct{ file, prefix string }{
		{"keyward-agent.hcl", "custody/data/tls/"},
		{"keyward-apisix-mirror-read.hcl", "apisix-mirror/"},
	} {
		rules := policyRules(t, filepath.Join(root, "deploy", "vault", pc.file))
		if len(rules) == 0 {
			t.Errorf("%s grants nothing", pc.file)
		}
		for p, caps := range rules {
			if !strings.HasPrefix(p, pc.prefix) || !slices.Equal(caps, []string{"read"}) {
				t.Errorf("%s: path %q capabilities %v; want read only, under %s", pc.file, p, caps, pc.prefix)
			}
		}
	}

	// The apisix sink's default token policy is the one shipped here, and
	// the only one the agent may mint.
	src, err := os.ReadFile(filepath.Join(root, "delivery", "apisix", "options.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`DefaultTokenPolicy\s*=\s*"([^"]+)"`).FindSubmatch(src)
	if m == nil {
		t.Fatal("delivery/apisix/options.go has no DefaultTokenPolicy")
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "vault", string(m[1])+".hcl")); err != nil {
		t.Errorf("the apisix sink's default token policy %s is not in deploy/vault: %v", m[1], err)
	}
	mirror, err := os.ReadFile(filepath.Join(root, "deploy", "vault", "keyward-agent-apisix-mirror.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mirror), `"policies"          = ["`+string(m[1])+`"]`) {
		t.Errorf("keyward-agent-apisix-mirror.hcl does not limit minted tokens to %s", m[1])
	}

	script, err := os.ReadFile(filepath.Join(root, "deploy", "vault", "setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	rbac := checkAgentRBAC(t, decodeExample(t, root, "agent-rbac.yaml"))
	for v, want := range map[string]string{"AGENT_NAMESPACE": rbac.namespace, "AGENT_SERVICE_ACCOUNT": rbac.serviceAccount} {
		re := regexp.MustCompile(`\$\{` + v + `:-([^}]*)\}`)
		if m := re.FindSubmatch(script); m == nil || string(m[1]) != want {
			t.Errorf("setup.sh's %s default is not %q (agent-rbac.yaml)", v, want)
		}
	}
	line := regexp.MustCompile(`(?m)^k8s_role ` + AgentDefaultVaultRole + ` (.*)$`).FindSubmatch(script)
	if line == nil {
		t.Fatalf("setup.sh creates no role %s", AgentDefaultVaultRole)
	}
	f := strings.Fields(string(line[1]))
	if len(f) != 5 || f[2] != "keyward-agent" {
		t.Fatalf("setup.sh: k8s_role %s %s: want <sa> <ns> keyward-agent <ttl> <max-ttl>", AgentDefaultVaultRole, line[1])
	}
	for _, d := range f[3:] {
		if ttl, err := time.ParseDuration(d); err != nil || ttl > 15*time.Minute {
			t.Errorf("setup.sh: role %s token lifetime %s, want at most 15m", AgentDefaultVaultRole, d)
		}
	}
}

// policyRules extracts path -> capabilities from a simple Vault policy (no
// nested blocks): enough for the read-only ones checked here.
func policyRules(t *testing.T, file string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for line := range strings.Lines(string(data)) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			body.WriteString(line)
		}
	}
	out := map[string][]string{}
	blocks := regexp.MustCompile(`path\s+"([^"]+)"\s*\{([^{}]*)\}`).FindAllStringSubmatch(body.String(), -1)
	for _, b := range blocks {
		m := regexp.MustCompile(`capabilities\s*=\s*\[([^\]]*)\]`).FindStringSubmatch(b[2])
		if m == nil || strings.Contains(b[2], "parameters") {
			t.Errorf("%s: path %q has no plain capabilities list", file, b[1])
			continue
		}
		for _, c := range strings.Split(m[1], ",") {
			if c = strings.Trim(strings.TrimSpace(c), `"`); c != "" {
				out[b[1]] = append(out[b[1]], c)
			}
		}
	}
	if n := strings.Count(body.String(), "path "); n != len(blocks) {
		t.Errorf("%s: %d path blocks, parsed %d", file, n, len(blocks))
	}
	return out
}

// setupRoles are the Kubernetes auth roles setup.sh creates.
func setupRoles(t *testing.T, root string) []string {
	t.Helper()
	script, err := os.ReadFile(filepath.Join(root, "deploy", "vault", "setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, m := range regexp.MustCompile(`(?m)^\s*k8s_role ([a-z0-9-]+) `).FindAllSubmatch(script, -1) {
		roles = append(roles, string(m[1]))
	}
	return roles
}

// decodeExample decodes every document of deploy/examples/<file> strictly
// into its Kubernetes type.
func decodeExample(t *testing.T, root, file string) []object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "deploy", "examples", file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifests(newScheme(t), data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(m.foreign) > 0 {
		t.Fatalf("%s: unexpected non-core kinds", file)
	}
	for _, o := range m.typed {
		if o.GetNamespace() == "" {
			t.Errorf("%s: %T %s has no namespace", file, o, o.GetName())
		}
	}
	return m.typed
}

func allOf[T object](objs []object) []T {
	return all[T](&manifests{typed: objs})
}

// configMapKey returns the value of key in the only ConfigMap holding it.
func configMapKey(t *testing.T, objs []object, key string) string {
	t.Helper()
	var found []string
	for _, cm := range allOf[*corev1.ConfigMap](objs) {
		if v, ok := cm.Data[key]; ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one ConfigMap with %s, got %d", key, len(found))
	}
	return found[0]
}

// readRawDocs returns the non-empty YAML documents of path.
func readRawDocs(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return SplitDocuments(data)
}

// chartAppVersion is the chart's appVersion, the default image tag.
func chartAppVersion(t *testing.T, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "deploy", "charts", "keyward", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml appVersion: %v", err)
	}
	return chart.AppVersion
}
