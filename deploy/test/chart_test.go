// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const (
	scrubWebhook = "secret-scrub.keyward.io"
	guardWebhook = "custody-guard.keyward.io"
	scrubPath    = "/mutate-v1-secret"
	guardPath    = "/mutate-cert-manager-io-v1-certificate-status"
	custodyLabel = "keyward.io/custody"
)

// TestChartDefaults renders the chart with its default values.
func TestChartDefaults(t *testing.T) {
	t.Parallel()
	m := renderAndDecode(t, "")
	checkInvariants(t, m)

	// The whole cluster is watched: one ClusterRole carries the namespaced
	// rules, including listing Secrets everywhere.
	cr := clusterRole(t, m, ReleaseName)
	if !grants(cr.Rules, "", "secrets", "list") {
		t.Errorf("default ClusterRole %s cannot list secrets cluster-wide; the watcher needs it", cr.Name)
	}
	// Token requests are never cluster-wide (a token carries its account's
	// permissions): only a Role in the cluster resource namespace grants them.
	if rule := findRule(cr.Rules, "", "serviceaccounts/token", "create"); rule != nil {
		t.Errorf("default ClusterRole grants serviceaccounts/token create cluster-wide: %+v", rule)
	}
	tokenNS := map[string]bool{}
	for _, r := range all[*rbacv1.Role](m) {
		if r.Name != ReleaseName+"-tokens" {
			continue
		}
		tokenNS[r.Namespace] = true
		if rule := findRule(r.Rules, "", "serviceaccounts/token", "create"); rule == nil || len(rule.ResourceNames) != 0 {
			t.Errorf("Role %s/%s: want serviceaccounts/token create for any account of that namespace, got %+v", r.Namespace, r.Name, rule)
		}
		if !hasBinding(m, "Role", r.Namespace, r.Name) {
			t.Errorf("Role %s/%s is not bound", r.Namespace, r.Name)
		}
	}
	if len(tokenNS) != 1 || !tokenNS[ReleaseNamespace] {
		t.Errorf("default token namespaces %v, want only the cluster resource namespace %s", tokenNS, ReleaseNamespace)
	}
	for _, r := range all[*rbacv1.Role](m) {
		if grants(r.Rules, "", "secrets", "get") {
			t.Errorf("Role %s/%s grants secrets although watchNamespaces is empty", r.Namespace, r.Name)
		}
	}

	wh := one[*admissionregistrationv1.MutatingWebhookConfiguration](t, m)
	if got := *webhook(t, wh, scrubWebhook).FailurePolicy; got != admissionregistrationv1.Fail {
		t.Errorf("%s failurePolicy = %s, want Fail by default (fail closed)", scrubWebhook, got)
	}
	if got := *webhook(t, wh, guardWebhook).FailurePolicy; got != admissionregistrationv1.Fail {
		t.Errorf("%s failurePolicy = %s, want Fail by default (no re-issue loop while Keyward is down)", guardWebhook, got)
	}
	if got := wh.Annotations["cert-manager.io/inject-ca-from"]; got != ReleaseNamespace+"/keyward-webhook-serving" {
		t.Errorf("inject-ca-from = %q, want %s/keyward-webhook-serving", got, ReleaseNamespace)
	}
	checkServingCertificateChain(t, m)

	d := one[*appsv1.Deployment](t, m)
	args := containerArgs(t, d)
	for _, want := range []string{
		"--leader-elect=true",
		"--metrics-bind-address=:8080",
		"--health-probe-bind-address=:8081",
		"--webhook-port=9443",
		"--webhook-cert-dir=/tmp/k8s-webhook-server/serving-certs",
		"--cluster-resource-namespace=" + ReleaseNamespace,
		"--custody-mount=custody",
		"--custody-prefix=tls",
		"--redact-certificates=false",
		"--enable-custody=true",
		"--enable-issuer=true",
		"--log-format=json",
		"--vault-audience=vault",
		"--vault-custody-role=keyward-custody-writer",
		"--vault-guard-role=keyward-guard",
		"--service-account-namespace=" + ReleaseNamespace,
		"--service-account-name=keyward",
		"--custody-namespace-selector=keyward.io/custody=enabled",
		"--leader-election-id=keyward-leader.keyward.io",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("default args lack %q: %v", want, args)
		}
	}
	if hasFlag(args, "--vault-ca-file") || hasFlag(args, "--watch-namespaces") {
		t.Errorf("default args pass optional flags: %v", args)
	}
	if got := d.Spec.Template.Spec.Affinity; got == nil || got.PodAntiAffinity == nil || len(got.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("default pod anti-affinity should be one preferred term, got %+v", got)
	}

	for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
		if got := foreignOf(m, kind); len(got) != 0 {
			t.Errorf("%s rendered although disabled by default", kind)
		}
	}
	if got := all[*networkingv1.NetworkPolicy](m); len(got) != 0 {
		t.Errorf("NetworkPolicy rendered although disabled by default")
	}
}

// TestChartAllOptions renders testdata/all-options.yaml, which turns on or
// changes every optional feature.
func TestChartAllOptions(t *testing.T) {
	t.Parallel()
	m := renderAndDecode(t, "all-options.yaml")
	checkInvariants(t, m)

	// watchNamespaces: the namespaced rules move into one Role per watched
	// namespace plus the cluster resource namespace; the ClusterRole keeps
	// only cluster-scoped reads.
	cr := clusterRole(t, m, ReleaseName)
	for _, res := range []string{"secrets", "certificates", "certificaterequests", "vaultissuers"} {
		for _, g := range []string{"", "cert-manager.io", "vault.keyward.io"} {
			if grants(cr.Rules, g, res, "get") {
				t.Errorf("ClusterRole %s grants %s/%s although watchNamespaces is set", cr.Name, g, res)
			}
		}
	}
	wantNS := []string{"team-a", "team-b", "keyward-issuers"}
	var gotNS []string
	for _, r := range all[*rbacv1.Role](m) {
		if r.Name != ReleaseName {
			continue
		}
		gotNS = append(gotNS, r.Namespace)
		if !grants(r.Rules, "", "secrets", "update") || !grants(r.Rules, "cert-manager.io", "certificaterequests/status", "patch") {
			t.Errorf("Role %s/%s lacks the namespaced rules", r.Namespace, r.Name)
		}
		tokens := role(t, m, r.Namespace, ReleaseName+"-tokens")
		if rule := findRule(tokens.Rules, "", "serviceaccounts/token", "create"); rule == nil || !reflect.DeepEqual(rule.ResourceNames, []string{"vault-issuer", "team-vault"}) {
			t.Errorf("Role %s/%s: serviceaccounts/token should be restricted to the configured names, got %+v", tokens.Namespace, tokens.Name, rule)
		}
		if !hasBinding(m, "Role", r.Namespace, r.Name) {
			t.Errorf("Role %s/%s is not bound", r.Namespace, r.Name)
		}
	}
	sort.Strings(gotNS)
	sort.Strings(wantNS)
	if !reflect.DeepEqual(gotNS, wantNS) {
		t.Errorf("namespaced Roles in %v, want %v", gotNS, wantNS)
	}

	d := one[*appsv1.Deployment](t, m)
	args := containerArgs(t, d)
	for _, want := range []string{
		"--watch-namespaces=team-a,team-b",
		"--cluster-resource-namespace=keyward-issuers",
		"--vault-ca-file=/etc/keyward/vault-ca/ca.crt",
		"--vault-addr=https://vault.example.com:8200",
		"--custody-audit-period=10m",
		"--custody-namespace-selector=keyward.io/custody=enabled,tier=prod,team in (a,b)",
		"--vault-namespace=platform",
		"--redact-certificates=true",
		"--v=2",
		"--leader-elect=true",
		"--extra-test-flag=1",
		"--cluster-name=prod-eu-1",
		"--vault-adopt-role=keyward-adopter-east",
		"--pprof-bind-address=127.0.0.1:6060",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("all-options args lack %q: %v", want, args)
		}
	}
	if d.Spec.Template.Spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName not applied")
	}
	if aff := d.Spec.Template.Spec.Affinity; aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("hard anti-affinity not applied: %+v", aff)
	}
	cm := one[*corev1.ConfigMap](t, m)
	if !strings.Contains(cm.Data["ca.crt"], "BEGIN CERTIFICATE") {
		t.Errorf("Vault CA ConfigMap does not hold the bundle: %v", cm.Data)
	}
	if !volumeUses(d, func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name }) {
		t.Errorf("Deployment does not mount ConfigMap %s", cm.Name)
	}

	// Without cert-manager for the serving certificate: no cert-manager
	// objects, the caBundle is set directly and the given Secret is mounted.
	if got := len(foreignOf(m, "Certificate")) + len(foreignOf(m, "Issuer")); got != 0 {
		t.Errorf("cert-manager objects rendered with webhook.certManager.enabled=false: %d", got)
	}
	wh := one[*admissionregistrationv1.MutatingWebhookConfiguration](t, m)
	if _, ok := wh.Annotations["cert-manager.io/inject-ca-from"]; ok {
		t.Errorf("inject-ca-from set although cert-manager does not issue the serving certificate")
	}
	for _, w := range wh.Webhooks {
		if !strings.Contains(string(w.ClientConfig.CABundle), "BEGIN CERTIFICATE") {
			t.Errorf("webhook %s has no caBundle", w.Name)
		}
	}
	if !volumeUses(d, func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == "my-webhook-tls" }) {
		t.Errorf("Deployment does not mount the given serving Secret my-webhook-tls")
	}
	if got := *webhook(t, wh, scrubWebhook).FailurePolicy; got != admissionregistrationv1.Ignore {
		t.Errorf("%s failurePolicy = %s, want the configured Ignore", scrubWebhook, got)
	}
	if got := *webhook(t, wh, scrubWebhook).TimeoutSeconds; got != 5 {
		t.Errorf("timeoutSeconds = %d, want the configured 5", got)
	}
	sel := webhook(t, wh, scrubWebhook).NamespaceSelector
	if sel.MatchLabels["tier"] != "prod" {
		t.Errorf("custom namespaceSelector not applied: %+v", sel)
	}

	sm := foreignOf(m, "ServiceMonitor")
	if len(sm) != 1 {
		t.Fatalf("want one ServiceMonitor, got %d", len(sm))
	}
	if str(sm[0], "metadata", "labels", "release") != "prometheus" {
		t.Errorf("ServiceMonitor labels not applied: %v", sm[0]["metadata"])
	}
	pr := foreignOf(m, "PrometheusRule")
	if len(pr) != 1 {
		t.Fatalf("want one PrometheusRule, got %d", len(pr))
	}
	checkPrometheusRuleMatchesFile(t, pr[0])

	np := one[*networkingv1.NetworkPolicy](t, m)
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(np.Spec.Egress) < 2 {
		t.Errorf("NetworkPolicy egress not applied: %+v", np.Spec)
	}
	if !selects(&np.Spec.PodSelector, d.Spec.Template.Labels) {
		t.Errorf("NetworkPolicy does not select the Keyward pods")
	}

	crb := clusterRole(t, m, "custom-approver")
	if crb == nil {
		t.Errorf("approver ClusterRole name not applied")
	}
	if !hasSubject(m, "ClusterRoleBinding", "custom-approver", "cm-controller", "security") {
		t.Errorf("approver not bound to the configured cert-manager ServiceAccount security/cm-controller")
	}
}

// TestChartRejectsBadValues checks the chart refuses combinations that would
// deploy a broken Keyward.
func TestChartRejectsBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, values, wantErr string
	}{
		{"custody without vault", "vault:\n  addr: \"\"\n", "vault.addr is required"},
		{"custody without a cluster name", "clusterName: \"\"\n", "clusterName is required"},
		{"adoption without custody", "adoption:\n  enabled: true\ncustody:\n  enabled: false\n", "adoption.enabled needs custody.enabled"},
		{"two replicas without leader election", "leaderElection:\n  enabled: false\n", "leaderElection.enabled must be true"},
		{"bad anti-affinity", "podAntiAffinity: sometimes\n", "podAntiAffinity must be"},
		{"empty custody selector", "custody:\n  namespaceSelector:\n    matchLabels: null\n", "must select something"},
		{"own serving cert without secret", "webhook:\n  certManager:\n    enabled: false\n", "is required when webhook.certManager.enabled is false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(f, []byte(tc.values), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := RenderChart(f)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("rendering with %q: err = %v, want it to mention %q", tc.values, err, tc.wantErr)
			}
		})
	}
}

// checkInvariants holds for every set of values.
func checkInvariants(t *testing.T, m *manifests) {
	t.Helper()
	checkNoWildcards(t, m)
	checkBindings(t, m)
	checkCRDs(t, m)
	checkForeign(t, m)

	d := one[*appsv1.Deployment](t, m)
	if d.Namespace != ReleaseNamespace {
		t.Errorf("Deployment in namespace %q, want %q", d.Namespace, ReleaseNamespace)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	podLabels := d.Spec.Template.Labels
	if !selects(d.Spec.Selector, podLabels) {
		t.Errorf("Deployment selector does not match its pod labels")
	}
	checkPodSecurity(t, d)
	checkProbesAndPorts(t, d)
	checkArgs(t, containerArgs(t, d))

	pdb := one[*policyv1.PodDisruptionBudget](t, m)
	if !selects(pdb.Spec.Selector, podLabels) {
		t.Errorf("PodDisruptionBudget does not select the Keyward pods")
	}
	if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
		t.Errorf("PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
	}
	if pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() < 1 {
		t.Errorf("PodDisruptionBudget minAvailable %v allows losing every replica", pdb.Spec.MinAvailable)
	}

	sa := one[*corev1.ServiceAccount](t, m)
	if d.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("pods run as %q, chart creates ServiceAccount %q", d.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
	if !hasSubject(m, "ClusterRoleBinding", ReleaseName, sa.Name, ReleaseNamespace) {
		t.Errorf("the Keyward ClusterRole is not bound to ServiceAccount %s", sa.Name)
	}
	self := role(t, m, ReleaseNamespace, ReleaseName+"-self")
	if rule := findRule(self.Rules, "coordination.k8s.io", "leases", "update"); rule == nil || len(rule.ResourceNames) != 1 || !hasFlag(containerArgs(t, d), "--leader-election-id="+rule.ResourceNames[0]) {
		t.Errorf("leader election Lease update should be restricted to the --leader-election-id Lease, got %+v", rule)
	}
	if !grants(self.Rules, "coordination.k8s.io", "leases", "create") {
		t.Errorf("no Role to create the leader election Lease in %s", ReleaseNamespace)
	}
	if rule := findRule(self.Rules, "", "serviceaccounts/token", "create"); rule == nil || !reflect.DeepEqual(rule.ResourceNames, []string{sa.Name}) {
		t.Errorf("own token request should be restricted to %s, got %+v", sa.Name, rule)
	}
	cr := clusterRole(t, m, ReleaseName)
	for _, want := range [][3]string{
		{"", "namespaces", "watch"},
		{"vault.keyward.io", "vaultclusterissuers", "watch"},
		{"vault.keyward.io", "vaultclusterissuers/status", "patch"},
	} {
		if !grants(cr.Rules, want[0], want[1], want[2]) {
			t.Errorf("ClusterRole lacks %s %s/%s", want[2], want[0], want[1])
		}
	}
	if grants(cr.Rules, "authentication.k8s.io", "tokenreviews", "create") {
		t.Errorf("Keyward must not create TokenReviews; Vault reviews tokens")
	}
	for _, r := range append(all[*rbacv1.ClusterRole](m), rolesAsClusterRoles(m)...) {
		for _, verb := range []string{"delete", "deletecollection", "escalate", "bind", "impersonate"} {
			for _, rule := range r.Rules {
				if slices.Contains(rule.Verbs, verb) {
					t.Errorf("%s grants %q on %v; Keyward never needs it", r.Name, verb, rule.Resources)
				}
			}
		}
	}
	checkApprover(t, m)

	svc := one[*corev1.Service](t, m)
	if !selects(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, podLabels) {
		t.Errorf("Service does not select the Keyward pods")
	}
	ports := map[string]corev1.ServicePort{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p
	}
	if p, ok := ports["webhook"]; !ok || p.TargetPort != intstr.FromString("webhook") {
		t.Errorf("Service has no webhook port targeting the container's webhook port: %+v", svc.Spec.Ports)
	}
	if _, ok := ports["metrics"]; !ok {
		t.Errorf("Service has no metrics port")
	}

	checkWebhooks(t, m, svc)
}

func checkNoWildcards(t *testing.T, m *manifests) {
	t.Helper()
	check := func(kind, name string, rules []rbacv1.PolicyRule) {
		for _, r := range rules {
			for _, list := range [][]string{r.Verbs, r.Resources, r.APIGroups, r.ResourceNames} {
				for _, v := range list {
					// Signer names end in "/*" by cert-manager's design; a
					// bare "*" is a wildcard.
					if v == "*" {
						t.Errorf("%s %s has a wildcard in rule %+v", kind, name, r)
					}
				}
			}
			if len(r.Verbs) == 0 {
				t.Errorf("%s %s has a rule without verbs: %+v", kind, name, r)
			}
			if len(r.NonResourceURLs) > 0 {
				t.Errorf("%s %s grants non-resource URLs %v", kind, name, r.NonResourceURLs)
			}
		}
	}
	for _, r := range all[*rbacv1.ClusterRole](m) {
		if r.AggregationRule != nil {
			t.Errorf("ClusterRole %s aggregates other roles", r.Name)
		}
		check("ClusterRole", r.Name, r.Rules)
	}
	for _, r := range all[*rbacv1.Role](m) {
		check("Role", r.Namespace+"/"+r.Name, r.Rules)
	}
}

// checkBindings: every binding refers to a role the chart renders.
func checkBindings(t *testing.T, m *manifests) {
	t.Helper()
	for _, b := range all[*rbacv1.ClusterRoleBinding](m) {
		if b.RoleRef.Kind != "ClusterRole" || clusterRoleOrNil(m, b.RoleRef.Name) == nil {
			t.Errorf("ClusterRoleBinding %s refers to %s %s, which the chart does not render", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
	}
	for _, b := range all[*rbacv1.RoleBinding](m) {
		found := false
		for _, r := range all[*rbacv1.Role](m) {
			if b.RoleRef.Kind == "Role" && r.Name == b.RoleRef.Name && r.Namespace == b.Namespace {
				found = true
			}
		}
		if !found {
			t.Errorf("RoleBinding %s/%s refers to %s %s, which the chart does not render in its namespace", b.Namespace, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
	}
}

func checkCRDs(t *testing.T, m *manifests) {
	t.Helper()
	var names []string
	for _, crd := range all[*apiextensionsv1.CustomResourceDefinition](m) {
		names = append(names, crd.Name)
		if crd.Spec.Group != "vault.keyward.io" {
			t.Errorf("CRD %s in group %s", crd.Name, crd.Spec.Group)
		}
	}
	sort.Strings(names)
	if want := []string{"vaultclusterissuers.vault.keyward.io", "vaultissuers.vault.keyward.io"}; !reflect.DeepEqual(names, want) {
		t.Errorf("CRDs rendered %v, want %v", names, want)
	}
}

// checkForeign checks the kinds no scheme here knows: apiVersion/kind and
// the fields their controllers require.
func checkForeign(t *testing.T, m *manifests) {
	t.Helper()
	for _, o := range m.foreign {
		kind, name := str(o, "kind"), str(o, "metadata", "name")
		if name == "" || str(o, "metadata", "namespace") != ReleaseNamespace {
			t.Errorf("%s %q: want a name and namespace %s", kind, name, ReleaseNamespace)
		}
		spec, ok := o["spec"].(map[string]any)
		if !ok {
			t.Errorf("%s %s has no spec", kind, name)
			continue
		}
		switch kind {
		case "Issuer":
			_, self := spec["selfSigned"]
			_, ca := field(spec, "ca", "secretName")
			if self == ca || len(spec) != 1 {
				t.Errorf("Issuer %s: want exactly one of selfSigned or ca.secretName, got %v", name, spec)
			}
		case "Certificate":
			if str(spec, "secretName") == "" || str(spec, "issuerRef", "name") == "" || str(spec, "issuerRef", "kind") != "Issuer" {
				t.Errorf("Certificate %s: secretName and issuerRef{kind: Issuer, name} are required: %v", name, spec)
			}
			dns, _ := spec["dnsNames"].([]any)
			isCA, _ := spec["isCA"].(bool)
			if len(dns) == 0 && (!isCA || str(spec, "commonName") == "") {
				t.Errorf("Certificate %s has neither dnsNames nor a CA commonName", name)
			}
			for _, k := range []string{"duration"} {
				if str(spec, k) == "" {
					t.Errorf("Certificate %s has no %s", name, k)
				}
			}
		case "ServiceMonitor":
			eps, _ := spec["endpoints"].([]any)
			if len(eps) == 0 {
				t.Errorf("ServiceMonitor %s has no endpoints", name)
			}
			for _, e := range eps {
				if ep, _ := e.(map[string]any); str(ep, "port") != "metrics" {
					t.Errorf("ServiceMonitor %s endpoint %v does not scrape the metrics port", name, e)
				}
			}
			if _, ok := field(spec, "selector", "matchLabels"); !ok {
				t.Errorf("ServiceMonitor %s has no selector", name)
			}
		case "PrometheusRule":
			groups, _ := spec["groups"].([]any)
			if len(groups) == 0 {
				t.Errorf("PrometheusRule %s has no groups", name)
			}
			for _, g := range groups {
				gm, _ := g.(map[string]any)
				rules, _ := gm["rules"].([]any)
				if str(gm, "name") == "" || len(rules) == 0 {
					t.Errorf("PrometheusRule %s: group without name or rules: %v", name, g)
				}
				for _, r := range rules {
					rm, _ := r.(map[string]any)
					if str(rm, "expr") == "" || (str(rm, "alert") == "") == (str(rm, "record") == "") {
						t.Errorf("PrometheusRule %s: rule needs expr and exactly one of alert or record: %v", name, r)
					}
				}
			}
		default:
			t.Errorf("unchecked foreign kind %s", kind)
		}
	}
}

// checkServingCertificateChain: self-signed Issuer -> CA Certificate -> CA
// Issuer -> serving Certificate whose Secret the Deployment mounts and whose
// DNS names cover the webhook Service.
func checkServingCertificateChain(t *testing.T, m *manifests) {
	t.Helper()
	issuers := map[string]map[string]any{}
	for _, i := range foreignOf(m, "Issuer") {
		issuers[str(i, "metadata", "name")] = i
	}
	certs := map[string]map[string]any{}
	for _, c := range foreignOf(m, "Certificate") {
		certs[str(c, "metadata", "name")] = c
	}
	serving, ok := certs["keyward-webhook-serving"]
	if !ok {
		t.Fatalf("no serving Certificate keyward-webhook-serving; have %v", certs)
	}
	caIssuer, ok := issuers[str(serving, "spec", "issuerRef", "name")]
	if !ok {
		t.Fatalf("serving Certificate's issuer %q is not rendered", str(serving, "spec", "issuerRef", "name"))
	}
	caSecret := str(caIssuer, "spec", "ca", "secretName")
	var caCert map[string]any
	for _, c := range certs {
		if str(c, "spec", "secretName") == caSecret {
			caCert = c
		}
	}
	if caCert == nil {
		t.Fatalf("no Certificate writes the CA Issuer's Secret %q", caSecret)
	}
	if isCA, _ := field(caCert, "spec", "isCA"); isCA != true {
		t.Errorf("CA Certificate %s is not isCA", str(caCert, "metadata", "name"))
	}
	root, ok := issuers[str(caCert, "spec", "issuerRef", "name")]
	if _, self := field(root, "spec", "selfSigned"); !ok || !self {
		t.Errorf("CA Certificate is not issued by a self-signed Issuer")
	}
	svc := one[*corev1.Service](t, m)
	dns, _ := field(serving, "spec", "dnsNames")
	wantDNS := svc.Name + "." + svc.Namespace + ".svc"
	if list, _ := dns.([]any); !slices.Contains(list, any(wantDNS)) {
		t.Errorf("serving Certificate dnsNames %v lack %s", dns, wantDNS)
	}
	d := one[*appsv1.Deployment](t, m)
	if !volumeUses(d, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == str(serving, "spec", "secretName")
	}) {
		t.Errorf("Deployment does not mount the serving Secret %s", str(serving, "spec", "secretName"))
	}
}

func checkPodSecurity(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ps := d.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		t.Errorf("pod securityContext.runAsNonRoot is not true")
	}
	if ps == nil || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile is not RuntimeDefault")
	}
	if d.Spec.Template.Spec.HostNetwork || d.Spec.Template.Spec.HostPID {
		t.Errorf("pods use host namespaces")
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("container %s has no securityContext", c.Name)
			continue
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("container %s: runAsNonRoot is not true", c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		case sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("container %s: capabilities must drop ALL and add none: %+v", c.Name, sc.Capabilities)
		case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("container %s: seccompProfile is not RuntimeDefault", c.Name)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("container %s is privileged", c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s: cpu/memory requests and a memory limit are required: %+v", c.Name, c.Resources)
		}
	}
}

func checkProbesAndPorts(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	c := keywardContainer(t, d)
	if !reflect.DeepEqual(c.Command, []string{"/keyward"}) {
		t.Errorf("command = %v, want [/keyward]", c.Command)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, probe := range []struct {
		name string
		p    *corev1.Probe
		path string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if probe.p == nil || probe.p.HTTPGet == nil {
			t.Errorf("%s probe is not an HTTP GET", probe.name)
			continue
		}
		if probe.p.HTTPGet.Path != probe.path {
			t.Errorf("%s probe path = %s, want %s", probe.name, probe.p.HTTPGet.Path, probe.path)
		}
		port := probe.p.HTTPGet.Port
		if port.Type == intstr.String {
			port = intstr.FromInt32(ports[port.StrVal])
		}
		if want := portFromArg(t, containerArgs(t, d), "--health-probe-bind-address"); port.IntVal != want {
			t.Errorf("%s probe port %d is not the health port %d", probe.name, port.IntVal, want)
		}
	}
	if want := portFromArg(t, containerArgs(t, d), "--metrics-bind-address"); ports["metrics"] != want {
		t.Errorf("metrics container port %d, flag says %d", ports["metrics"], want)
	}
	var webhookPort int32
	for _, a := range containerArgs(t, d) {
		if v, ok := strings.CutPrefix(a, "--webhook-port="); ok {
			webhookPort = atoi32(v)
		}
	}
	if ports["webhook"] != webhookPort || webhookPort == 0 {
		t.Errorf("webhook container port %d, flag says %d", ports["webhook"], webhookPort)
	}
	// The serving certificate must be mounted where --webhook-cert-dir points.
	certDir := ""
	for _, a := range containerArgs(t, d) {
		if v, ok := strings.CutPrefix(a, "--webhook-cert-dir="); ok {
			certDir = v
		}
	}
	mounted := false
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == certDir && vm.ReadOnly {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("no read-only volume mounted at --webhook-cert-dir %q", certDir)
	}
}

// checkArgs: only flags from the binary's contract (or the test's extraArgs).
func checkArgs(t *testing.T, args []string) {
	t.Helper()
	flags := BinaryFlags()
	seen := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if name == "--extra-test-flag" {
			continue
		}
		if _, ok := flags[name]; !ok {
			t.Errorf("chart passes flag %s, which is not in BinaryFlags", name)
		}
		if seen[name] {
			t.Errorf("flag %s passed twice", name)
		}
		seen[name] = true
	}
	for name, always := range flags {
		if always && !seen[name] {
			t.Errorf("chart does not pass %s", name)
		}
	}
}

func checkApprover(t *testing.T, m *manifests) {
	t.Helper()
	var found bool
	for _, cr := range all[*rbacv1.ClusterRole](m) {
		for _, r := range cr.Rules {
			if !slices.Contains(r.Resources, "signers") {
				continue
			}
			found = true
			want := rbacv1.PolicyRule{
				APIGroups:     []string{"cert-manager.io"},
				Resources:     []string{"signers"},
				Verbs:         []string{"approve"},
				ResourceNames: []string{"vaultissuers.vault.keyward.io/*", "vaultclusterissuers.vault.keyward.io/*"},
			}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("approver rule in %s = %+v, want %+v", cr.Name, r, want)
			}
			if !hasSubjectKind(m, cr.Name, "ServiceAccount") {
				t.Errorf("approver ClusterRole %s is not bound to a ServiceAccount", cr.Name)
			}
		}
	}
	if !found {
		t.Errorf("no approver ClusterRole for cert-manager")
	}
}

func checkWebhooks(t *testing.T, m *manifests, svc *corev1.Service) {
	t.Helper()
	wh := one[*admissionregistrationv1.MutatingWebhookConfiguration](t, m)
	adoption := slices.ContainsFunc(wh.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool { return w.Name == adoptWebhook })
	if want := 2 + btoi(adoption); len(wh.Webhooks) != want {
		t.Fatalf("want %d webhooks, got %d", want, len(wh.Webhooks))
	}
	if adoption {
		checkAdoptWebhook(t, webhook(t, wh, adoptWebhook), svc)
	}
	for _, tc := range []struct {
		name, path, group, resource string
		ops                         []admissionregistrationv1.OperationType
		sideEffects                 admissionregistrationv1.SideEffectClass
	}{
		{scrubWebhook, scrubPath, "", "secrets", []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}, admissionregistrationv1.SideEffectClassNoneOnDryRun},
		{guardWebhook, guardPath, "cert-manager.io", "certificates/status", []admissionregistrationv1.OperationType{"UPDATE"}, admissionregistrationv1.SideEffectClassNone},
	} {
		w := webhook(t, wh, tc.name)
		s := w.ClientConfig.Service
		if s == nil || s.Name != svc.Name || s.Namespace != svc.Namespace || s.Path == nil || *s.Path != tc.path {
			t.Errorf("%s: clientConfig.service = %+v, want %s/%s path %s", tc.name, s, svc.Namespace, svc.Name, tc.path)
		}
		if s != nil && s.Port != nil && *s.Port != svc.Spec.Ports[0].Port {
			t.Errorf("%s: calls port %d, Service webhook port is %d", tc.name, *s.Port, svc.Spec.Ports[0].Port)
		}
		if len(w.Rules) != 1 || !reflect.DeepEqual(w.Rules[0].APIGroups, []string{tc.group}) ||
			!reflect.DeepEqual(w.Rules[0].APIVersions, []string{"v1"}) ||
			!reflect.DeepEqual(w.Rules[0].Resources, []string{tc.resource}) ||
			!reflect.DeepEqual(w.Rules[0].Operations, tc.ops) {
			t.Errorf("%s: rules = %+v", tc.name, w.Rules)
		}
		if w.SideEffects == nil || *w.SideEffects != tc.sideEffects {
			t.Errorf("%s: sideEffects = %v, want %s", tc.name, w.SideEffects, tc.sideEffects)
		}
		if w.FailurePolicy == nil {
			t.Errorf("%s: failurePolicy unset", tc.name)
		}
		if w.TimeoutSeconds == nil || *w.TimeoutSeconds < 1 || *w.TimeoutSeconds > 30 {
			t.Errorf("%s: timeoutSeconds = %v, want 1..30", tc.name, w.TimeoutSeconds)
		}
		if !slices.Contains(w.AdmissionReviewVersions, "v1") {
			t.Errorf("%s: admissionReviewVersions lack v1", tc.name)
		}
		if len(w.MatchConditions) == 0 {
			t.Errorf("%s: no matchConditions", tc.name)
		}
		checkNamespaceSelector(t, tc.name, w.NamespaceSelector)
	}
	checkMatchConditions(t, wh)
}

const adoptWebhook = "custody-adopt.keyward.io"

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkAdoptWebhook: Certificates CREATE only, at the Go handler's path,
// failing closed, only in custody namespaces that carry the adoption label.
func checkAdoptWebhook(t *testing.T, w *admissionregistrationv1.MutatingWebhook, svc *corev1.Service) {
	t.Helper()
	if s := w.ClientConfig.Service; s == nil || s.Name != svc.Name || s.Path == nil || *s.Path != "/adopt-cert-manager-io-v1-certificate" {
		t.Errorf("%s: clientConfig.service = %+v", adoptWebhook, s)
	}
	if len(w.Rules) != 1 || !reflect.DeepEqual(w.Rules[0].Resources, []string{"certificates"}) ||
		!reflect.DeepEqual(w.Rules[0].Operations, []admissionregistrationv1.OperationType{"CREATE"}) {
		t.Errorf("%s: rules = %+v", adoptWebhook, w.Rules)
	}
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("%s: failurePolicy = %v, want Fail", adoptWebhook, w.FailurePolicy)
	}
	if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun {
		t.Errorf("%s: sideEffects = %v, want NoneOnDryRun", adoptWebhook, w.SideEffects)
	}
	sel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
	if err != nil {
		t.Fatalf("%s: namespaceSelector: %v", adoptWebhook, err)
	}
	base := map[string]string{custodyLabel: "enabled", "tier": "prod", "team": "a", "kubernetes.io/metadata.name": "team-a"}
	adopting := map[string]string{"keyward.io/adopt-from-cluster": "east"}
	for k, v := range base {
		adopting[k] = v
	}
	if sel.Matches(labels.Set(base)) || !sel.Matches(labels.Set(adopting)) {
		t.Errorf("%s: namespaceSelector %q must match custody namespaces with keyward.io/adopt-from-cluster only", adoptWebhook, sel)
	}
}

// checkNamespaceSelector: in custody scope only, never the release namespace.
func checkNamespaceSelector(t *testing.T, name string, sel *metav1.LabelSelector) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("%s: namespaceSelector: %v", name, err)
	}
	custody := map[string]string{custodyLabel: "enabled", "tier": "prod", "team": "a"}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{withName(custody, "team-a"), true},
		{withName(map[string]string{"tier": "prod", "team": "a"}, "team-a"), false},
		{withName(map[string]string{custodyLabel: "disabled", "tier": "prod", "team": "a"}, "team-a"), false},
		{withName(custody, ReleaseNamespace), false},
	} {
		if got := s.Matches(labels.Set(tc.labels)); got != tc.want {
			t.Errorf("%s: namespaceSelector %q matches %v = %v, want %v", name, s, tc.labels, got, tc.want)
		}
	}
}

func withName(l map[string]string, ns string) map[string]string {
	out := map[string]string{"kubernetes.io/metadata.name": ns}
	for k, v := range l {
		out[k] = v
	}
	return out
}

func checkPrometheusRuleMatchesFile(t *testing.T, pr map[string]any) {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "keyward-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	got, _ := field(pr, "spec", "groups")
	if !reflect.DeepEqual(got, file["groups"]) {
		t.Errorf("PrometheusRule groups differ from deploy/prometheus/keyward-rules.yaml (run hack/sync-chart-crds.sh)")
	}
}

// --- small lookups ---

func containerArgs(t *testing.T, d *appsv1.Deployment) []string {
	t.Helper()
	return keywardContainer(t, d).Args
}

func keywardContainer(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == "keyward" {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("no keyward container")
	return nil
}

func hasFlag(args []string, name string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == name || strings.HasPrefix(a, name+"=") })
}

func portFromArg(t *testing.T, args []string, flag string) int32 {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"=:"); ok {
			return atoi32(v)
		}
	}
	t.Fatalf("no %s=:<port> in %v", flag, args)
	return 0
}

func volumeUses(d *appsv1.Deployment, pred func(corev1.Volume) bool) bool {
	return slices.ContainsFunc(d.Spec.Template.Spec.Volumes, pred)
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(labels.Set(l))
}

func webhook(t *testing.T, wh *admissionregistrationv1.MutatingWebhookConfiguration, name string) *admissionregistrationv1.MutatingWebhook {
	t.Helper()
	for i := range wh.Webhooks {
		if wh.Webhooks[i].Name == name {
			return &wh.Webhooks[i]
		}
	}
	t.Fatalf("no webhook %s", name)
	return nil
}

func clusterRoleOrNil(m *manifests, name string) *rbacv1.ClusterRole {
	for _, r := range all[*rbacv1.ClusterRole](m) {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func clusterRole(t *testing.T, m *manifests, name string) *rbacv1.ClusterRole {
	t.Helper()
	r := clusterRoleOrNil(m, name)
	if r == nil {
		t.Fatalf("no ClusterRole %s", name)
	}
	return r
}

func role(t *testing.T, m *manifests, ns, name string) *rbacv1.Role {
	t.Helper()
	for _, r := range all[*rbacv1.Role](m) {
		if r.Namespace == ns && r.Name == name {
			return r
		}
	}
	t.Fatalf("no Role %s/%s", ns, name)
	return nil
}

// rolesAsClusterRoles lets rule checks treat Roles and ClusterRoles alike.
func rolesAsClusterRoles(m *manifests) []*rbacv1.ClusterRole {
	var out []*rbacv1.ClusterRole
	for _, r := range all[*rbacv1.Role](m) {
		out = append(out, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: r.Namespace + "/" + r.Name}, Rules: r.Rules})
	}
	return out
}

func findRule(rules []rbacv1.PolicyRule, group, resource, verb string) *rbacv1.PolicyRule {
	for i, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return &rules[i]
		}
	}
	return nil
}

func grants(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	return findRule(rules, group, resource, verb) != nil
}

func hasBinding(m *manifests, roleKind, ns, roleName string) bool {
	for _, b := range all[*rbacv1.RoleBinding](m) {
		if b.Namespace == ns && b.RoleRef.Kind == roleKind && b.RoleRef.Name == roleName && len(b.Subjects) > 0 {
			return true
		}
	}
	return false
}

func hasSubject(m *manifests, bindingKind, roleName, saName, saNamespace string) bool {
	if bindingKind != "ClusterRoleBinding" {
		return false
	}
	for _, b := range all[*rbacv1.ClusterRoleBinding](m) {
		if b.RoleRef.Name != roleName {
			continue
		}
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == saName && s.Namespace == saNamespace {
				return true
			}
		}
	}
	return false
}

func hasSubjectKind(m *manifests, roleName, kind string) bool {
	for _, b := range all[*rbacv1.ClusterRoleBinding](m) {
		if b.RoleRef.Name == roleName && slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Kind == kind && s.Namespace != "" }) {
			return true
		}
	}
	return false
}

func atoi32(s string) int32 {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}
