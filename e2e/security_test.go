// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	vaultapi "github.com/hashicorp/vault/api"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

// ---------------------------------------------------------------------------
// Kubernetes RBAC
// ---------------------------------------------------------------------------

// subject is who a SubjectAccessReview asks about.
type subject struct {
	user   string
	groups []string
}

// serviceAccount is the identity the apiserver gives a ServiceAccount token,
// groups included, so grants to system:authenticated or
// system:serviceaccounts count as they would for the real pod.
func serviceAccount(ns, name string) subject {
	return subject{
		user:   "system:serviceaccount:" + ns + ":" + name,
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
}

// access is one resource request; namespace "" is cluster-wide (for a
// namespaced resource: in every namespace, as an informer lists).
type access struct {
	verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	r := a.resource
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.group != "" {
		r += "." + a.group
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	if a.name != "" {
		return fmt.Sprintf("%s %s %q %s", a.verb, r, a.name, where)
	}
	return fmt.Sprintf("%s %s %s", a.verb, r, where)
}

// rbacCase is one expectation: whether who may do what, and why.
type rbacCase struct {
	who   subject
	what  access
	allow bool
	why   string
}

// allowed asks the apiserver's authorizer, as the administrator.
func allowed(ctx context.Context, kc kubernetes.Interface, who subject, a access) (bool, error) {
	sar, err := kc.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   who.user,
			Groups: who.groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: a.namespace, Verb: a.verb, Group: a.group,
				Resource: a.resource, Subresource: a.subresource, Name: a.name,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("SubjectAccessReview for %s to %s: %w", who.user, a, err)
	}
	return sar.Status.Allowed, nil
}

// verbs expands one access into several verbs.
func verbs(a access, vs ...string) []access {
	out := make([]access, 0, len(vs))
	for _, v := range vs {
		a.verb = v
		out = append(out, a)
	}
	return out
}

// expect builds cases with the same subject, outcome and reason.
func expect(who subject, allow bool, why string, as ...access) []rbacCase {
	out := make([]rbacCase, 0, len(as))
	for _, a := range as {
		out = append(out, rbacCase{who: who, what: a, allow: allow, why: why})
	}
	return out
}

// certManagerMayApprove mirrors the check cert-manager's webhook makes before
// it accepts an Approved condition (cert-manager v1.21,
// internal/webhook/admission/certificaterequest/approval): verb approve on
// resource signers in group cert-manager.io, first for the signer name
// "<resource>.<group>/*", then for the issuer's own name ("<resource>.<group>/<name>"
// for cluster-scoped issuers, "<resource>.<group>/<namespace>.<name>" for
// namespaced ones); either one allows. RBAC resourceNames are literal, so the
// chart's "/*" entries only ever match the first check, which is enough.
func certManagerMayApprove(ctx context.Context, kc kubernetes.Interface, who subject, signerResource, issuerName string) (bool, error) {
	for _, name := range []string{signerResource + "/*", signerResource + "/" + issuerName} {
		ok, err := allowed(ctx, kc, who, access{verb: "approve", group: "cert-manager.io", resource: "signers", name: name})
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// installChartRBAC creates the Roles, ClusterRoles and their bindings the
// chart renders (and the namespaces its Roles live in), for real, and
// returns how many objects it created. It also checks the chart's own promise
// that no rule uses a wildcard verb, resource or API group.
func installChartRBAC(ctx context.Context, t *testing.T, env *framework.Env, objs []*unstructured.Unstructured) int {
	t.Helper()
	n := 0
	for _, o := range objs {
		if o.GroupVersionKind().Group != rbacv1.GroupName {
			continue
		}
		for i, r := range rulesOf(t, o) {
			for _, field := range [][]string{r.Verbs, r.APIGroups, r.Resources} {
				if slices.Contains(field, rbacv1.VerbAll) {
					t.Errorf("%s rule %d uses a wildcard: %+v", objectRef(o), i, r)
				}
			}
		}
		if ns := o.GetNamespace(); ns != "" {
			if err := env.CreateNamespace(ctx, ns, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := env.Client.Create(ctx, o.DeepCopy()); err != nil {
			t.Fatalf("creating the chart's %s: %v", objectRef(o), err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("the chart rendered no RBAC objects")
	}
	return n
}

// rulesOf returns the rules of a rendered Role or ClusterRole (none for bindings).
func rulesOf(t *testing.T, o *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	raw, found, err := unstructured.NestedSlice(o.Object, "rules")
	if err != nil || !found {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	if err := json.Unmarshal(b, &rules); err != nil {
		t.Fatalf("decoding rules of %s: %v", objectRef(o), err)
	}
	return rules
}

// checkRBAC asserts the cases against the live authorizer. The RBAC
// authorizer learns of new objects through informers, so the allowed cases
// are polled until all hold; every rendered binding has at least one allowed
// case, so once they all hold the authorizer has seen every object and the
// denied cases are final and checked once.
func checkRBAC(ctx context.Context, t *testing.T, kc kubernetes.Interface, cases []rbacCase) {
	t.Helper()
	var pending []rbacCase
	for _, c := range cases {
		if c.allow {
			pending = append(pending, c)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(pending) > 0 {
		var still []rbacCase
		for _, c := range pending {
			ok, err := allowed(ctx, kc, c.who, c.what)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				still = append(still, c)
			}
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, c := range pending {
				t.Errorf("%s cannot %s; it must (%s)", c.who.user, c.what, c.why)
			}
			return
		}
		time.Sleep(100 * time.Millisecond) // poll interval, not an assertion
	}
	denied := 0
	for _, c := range cases {
		if c.allow {
			continue
		}
		ok, err := allowed(ctx, kc, c.who, c.what)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("%s can %s; it must not (%s)", c.who.user, c.what, c.why)
			continue
		}
		denied++
	}
	t.Logf("%d allowed and %d denied accesses confirmed", len(cases)-denied, denied)
}

// TestLeastPrivilegeRBAC installs the chart's RBAC in a real apiserver and
// asks its authorizer what Keyward's ServiceAccount (and cert-manager's, for
// approval) may do: everything Keyward needs, and nothing that would let a
// compromised Keyward delete or mint Secrets, exec into pods or grant itself
// more. Each values file gets a fresh apiserver so no grant of one install
// can linger in the authorizer's cache during the other's checks.
func TestLeastPrivilegeRBAC(t *testing.T) {
	kw := serviceAccount(framework.KeywardNamespace, framework.KeywardServiceAccount)
	cm := serviceAccount(framework.CertManagerNamespace, framework.CertManagerServiceAccount)
	const leader = "keyward-leader.keyward.io" // leaderElection.id in both values files

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		sec := access{resource: "secrets", namespace: "team-a"}
		var cases []rbacCase
		// What Keyward needs when it watches the whole cluster.
		cases = append(cases, expect(kw, true, "watcher and scrub webhook redact TLS Secrets; issuers read their CA and auth Secrets",
			verbs(sec, "get", "list", "watch", "update", "patch")...)...)
		cases = append(cases, expect(kw, true, "the watcher's informer lists Secrets in every namespace when watchNamespaces is empty (README, \"Why Keyward lists Secrets\")",
			verbs(access{resource: "secrets"}, "list", "watch")...)...)
		cases = append(cases, expect(kw, true, "guard and watcher map Secrets to Certificates",
			verbs(access{group: "cert-manager.io", resource: "certificates"}, "get", "list", "watch")...)...)
		cases = append(cases, expect(kw, true, "the issuer reconciles CertificateRequests",
			verbs(access{group: "cert-manager.io", resource: "certificaterequests"}, "get", "list", "watch")...)...)
		cases = append(cases, expect(kw, true, "the issuer reports the signed certificate",
			verbs(access{group: "cert-manager.io", resource: "certificaterequests", subresource: "status", namespace: "team-a"}, "update", "patch")...)...)
		cases = append(cases, expect(kw, true, "issuer controllers",
			access{verb: "list", group: "vault.keyward.io", resource: "vaultissuers"},
			access{verb: "update", group: "vault.keyward.io", resource: "vaultissuers", subresource: "status", namespace: "team-a"},
			access{verb: "watch", group: "vault.keyward.io", resource: "vaultclusterissuers"},
			access{verb: "update", group: "vault.keyward.io", resource: "vaultclusterissuers", subresource: "status", name: "vault"},
		)...)
		cases = append(cases, expect(kw, true, "custody scope is a namespace label",
			verbs(access{resource: "namespaces"}, "get", "list", "watch")...)...)
		cases = append(cases, expect(kw, true, "events on requests, issuers and Secrets",
			access{verb: "create", resource: "events", namespace: "team-a"},
			access{verb: "create", group: "events.k8s.io", resource: "events", namespace: "team-a"},
			access{verb: "create", resource: "events", namespace: framework.KeywardNamespace},
		)...)
		cases = append(cases, expect(kw, true, "Keyward's own Vault logins (Role keyward-self, resourceNames [keyward])",
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: framework.KeywardNamespace, name: framework.KeywardServiceAccount})...)
		cases = append(cases, expect(kw, true, "VaultClusterIssuers' ServiceAccounts live in the cluster resource namespace (Role keyward-tokens)",
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: framework.KeywardNamespace, name: "vault-issuer"})...)
		cases = append(cases, expect(kw, false, "no token requests outside the token namespaces: a token carries its account's power",
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "team-a", name: "vault-issuer"},
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "kube-system", name: "clusterrole-aggregation-controller"},
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: framework.CertManagerNamespace, name: framework.CertManagerServiceAccount},
			access{verb: "create", resource: "serviceaccounts", subresource: "token"},
		)...)
		cases = append(cases, expect(kw, true, "leader election (Role keyward-self)",
			access{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: framework.KeywardNamespace},
			access{verb: "get", group: "coordination.k8s.io", resource: "leases", namespace: framework.KeywardNamespace, name: leader},
			access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: framework.KeywardNamespace, name: leader},
		)...)
		cases = append(cases, expect(cm, true, "cert-manager's approver may approve requests for Keyward's issuers",
			access{verb: "approve", group: "cert-manager.io", resource: "signers", name: "vaultclusterissuers.vault.keyward.io/*"},
			access{verb: "approve", group: "cert-manager.io", resource: "signers", name: "vaultissuers.vault.keyward.io/*"},
		)...)

		// What Keyward must never be able to do. The chart grants
		// cluster-wide Secret read and update (the watcher cannot select
		// Secrets by namespace label through RBAC), so the line is drawn at
		// creating or deleting Secrets and at everything outside its job.
		cases = append(cases, expect(kw, false, "Keyward only redacts Secrets; it never creates or deletes them",
			append(verbs(sec, "create", "delete", "deletecollection"),
				access{verb: "create", resource: "secrets", namespace: "kube-system"},
				access{verb: "delete", resource: "secrets", namespace: "kube-system"})...)...)
		cases = append(cases, expect(kw, false, "no wildcard grant",
			access{verb: "*", group: "*", resource: "*"},
			access{verb: "*", resource: "secrets", namespace: "team-a"},
			access{verb: "*", group: "cert-manager.io", resource: "certificaterequests", namespace: "team-a"},
		)...)
		cases = append(cases, expect(kw, false, "no path to more privilege through RBAC or impersonation",
			access{verb: "escalate", group: rbacv1.GroupName, resource: "clusterroles"},
			access{verb: "bind", group: rbacv1.GroupName, resource: "clusterroles"},
			access{verb: "escalate", group: rbacv1.GroupName, resource: "roles", namespace: framework.KeywardNamespace},
			access{verb: "bind", group: rbacv1.GroupName, resource: "roles", namespace: framework.KeywardNamespace},
			access{verb: "create", group: rbacv1.GroupName, resource: "clusterrolebindings"},
			access{verb: "create", group: rbacv1.GroupName, resource: "rolebindings", namespace: framework.KeywardNamespace},
			access{verb: "update", group: rbacv1.GroupName, resource: "clusterroles", name: "keyward"},
			access{verb: "impersonate", resource: "users"},
			access{verb: "impersonate", resource: "groups"},
			access{verb: "impersonate", resource: "serviceaccounts", namespace: "kube-system"},
			access{verb: "create", resource: "serviceaccounts", namespace: framework.KeywardNamespace},
		)...)
		cases = append(cases, expect(kw, false, "no workload or node access",
			access{verb: "create", resource: "pods", subresource: "exec", namespace: "team-a"},
			access{verb: "create", resource: "pods", namespace: "team-a"},
			access{verb: "get", resource: "nodes"},
			access{verb: "list", resource: "nodes"},
			access{verb: "get", resource: "nodes", subresource: "proxy"},
		)...)
		cases = append(cases, expect(kw, false, "Keyward never approves, and never edits what users own",
			access{verb: "approve", group: "cert-manager.io", resource: "signers", name: "vaultclusterissuers.vault.keyward.io/*"},
			access{verb: "approve", group: "cert-manager.io", resource: "signers", name: "vaultissuers.vault.keyward.io/*"},
			access{verb: "update", group: "certificates.k8s.io", resource: "certificatesigningrequests", subresource: "approval"},
			access{verb: "update", group: "cert-manager.io", resource: "certificates", namespace: "team-a"},
			access{verb: "delete", group: "cert-manager.io", resource: "certificates", namespace: "team-a"},
			access{verb: "create", group: "cert-manager.io", resource: "certificaterequests", namespace: "team-a"},
			access{verb: "delete", group: "cert-manager.io", resource: "certificaterequests", namespace: "team-a"},
			access{verb: "update", group: "vault.keyward.io", resource: "vaultissuers", namespace: "team-a"},
			access{verb: "update", group: "vault.keyward.io", resource: "vaultclusterissuers", name: "vault"},
			access{verb: "update", resource: "namespaces", name: "team-a"},
			access{verb: "patch", resource: "namespaces", name: "team-a"},
		)...)
		cases = append(cases, expect(kw, false, "Keyward cannot switch off or rewrite admission or APIs",
			access{verb: "update", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "keyward"},
			access{verb: "delete", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "keyward"},
			access{verb: "update", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations"},
			access{verb: "update", group: "apiextensions.k8s.io", resource: "customresourcedefinitions"},
		)...)
		cases = append(cases, expect(kw, false, "leases: only its own, and never deleted",
			access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: framework.KeywardNamespace, name: "someone-else"},
			access{verb: "delete", group: "coordination.k8s.io", resource: "leases", namespace: framework.KeywardNamespace, name: leader},
			access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kube-system", name: "kube-controller-manager"},
		)...)
		cases = append(cases, expect(cm, false, "the approver role covers Keyward's signers only",
			access{verb: "approve", group: "cert-manager.io", resource: "signers", name: "issuers.cert-manager.io/*"},
			access{verb: "approve", group: "cert-manager.io", resource: "signers", name: "clusterissuers.cert-manager.io/*"},
		)...)

		env := framework.StartForTest(t, framework.Options{WithoutCertManager: true})
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		n := installChartRBAC(ctx, t, env, decodeManifests(t, renderChart(t, "")))
		t.Logf("created %d RBAC objects rendered with the chart's defaults", n)
		checkRBAC(ctx, t, env.Kubernetes, cases)

		for _, name := range []string{"x", "vault"} {
			ok, err := certManagerMayApprove(ctx, env.Kubernetes, cm, "vaultclusterissuers.vault.keyward.io", name)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Errorf("cert-manager cannot approve a CertificateRequest for VaultClusterIssuer %q", name)
			}
		}
		if ok, err := certManagerMayApprove(ctx, env.Kubernetes, cm, "vaultissuers.vault.keyward.io", "team-a.vault"); err != nil || !ok {
			t.Errorf("cert-manager cannot approve a CertificateRequest for VaultIssuer team-a/vault (err %v)", err)
		}

		for _, a := range []access{
			{verb: "get", resource: "secrets", namespace: "kube-system"},
			{verb: "update", resource: "secrets", namespace: "kube-system"},
		} {
			ok, err := allowed(ctx, env.Kubernetes, kw, a)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				t.Logf("FINDING (default values): %s can %s", kw.user, a)
			}
		}
	})

	t.Run("all-options", func(t *testing.T) {
		t.Parallel()
		// all-options.yaml: watchNamespaces [team-a, team-b],
		// clusterResourceNamespace keyward-issuers,
		// rbac.tokenRequestServiceAccountNames [vault-issuer, team-vault],
		// adoption.enabled,
		// approver bound to security/cm-controller.
		approver := serviceAccount("security", "cm-controller")
		watched := []string{"team-a", "team-b", "keyward-issuers"}
		var cases []rbacCase
		for _, ns := range watched {
			cases = append(cases, expect(kw, true, "namespaced permissions in every watched namespace and the cluster resource namespace",
				append(verbs(access{resource: "secrets", namespace: ns}, "get", "list", "watch", "update", "patch"),
					access{verb: "list", group: "cert-manager.io", resource: "certificates", namespace: ns},
					access{verb: "update", group: "cert-manager.io", resource: "certificaterequests", subresource: "status", namespace: ns},
					access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: ns, name: "vault-issuer"},
					access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: ns, name: "team-vault"},
				)...)...)
		}
		cases = append(cases, expect(kw, true, "cluster-scoped permissions stay in the ClusterRole",
			access{verb: "list", resource: "namespaces"},
			access{verb: "watch", group: "vault.keyward.io", resource: "vaultclusterissuers"},
		)...)
		cases = append(cases, expect(kw, true, "Keyward's own logins and leader election (Role keyward-self)",
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: framework.KeywardNamespace, name: framework.KeywardServiceAccount},
			access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: framework.KeywardNamespace, name: leader},
		)...)
		cases = append(cases, expect(approver, true, "approver.serviceAccount is security/cm-controller",
			access{verb: "approve", group: "cert-manager.io", resource: "signers", name: "vaultclusterissuers.vault.keyward.io/*"})...)

		cases = append(cases, expect(kw, false, "watchNamespaces confines Secret access to the listed namespaces",
			append(append(append(
				verbs(access{resource: "secrets", namespace: "other"}, "get", "list", "watch", "update", "patch"),
				verbs(access{resource: "secrets", namespace: "kube-system"}, "get", "list", "update")...),
				verbs(access{resource: "secrets", namespace: framework.KeywardNamespace}, "get", "list")...),
				verbs(access{resource: "secrets"}, "list", "watch")...)...)...)
		cases = append(cases, expect(kw, false, "nothing namespaced outside the list",
			access{verb: "list", group: "cert-manager.io", resource: "certificates", namespace: "other"},
			access{verb: "update", group: "cert-manager.io", resource: "certificaterequests", subresource: "status", namespace: "other"},
			access{verb: "list", group: "cert-manager.io", resource: "certificaterequests"},
			access{verb: "create", resource: "events", namespace: "other"},
		)...)
		cases = append(cases, expect(kw, false, "tokenRequestServiceAccountNames restricts TokenRequest by resourceNames",
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "team-a", name: "default"},
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "team-a"},
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "other", name: "vault-issuer"},
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "kube-system", name: "clusterrole-aggregation-controller"},
			access{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: framework.CertManagerNamespace, name: framework.CertManagerServiceAccount},
		)...)
		// adoption.enabled: Keyward creates the placeholder Secret of an
		// adopted custody record (it never holds a key), in watched
		// namespaces only; it never deletes one.
		cases = append(cases, expect(kw, true, "adoption.enabled: create placeholder Secrets in watched namespaces",
			access{verb: "create", resource: "secrets", namespace: "team-a"})...)
		cases = append(cases, expect(kw, false, "never delete Secrets, nor create them outside the watched namespaces",
			access{verb: "delete", resource: "secrets", namespace: "team-a"},
			access{verb: "create", resource: "secrets", namespace: "other"},
			access{verb: "create", resource: "secrets", namespace: "kube-system"},
		)...)
		cases = append(cases, expect(cm, false, "the approver binding names security/cm-controller, not cert-manager/cert-manager",
			access{verb: "approve", group: "cert-manager.io", resource: "signers", name: "vaultclusterissuers.vault.keyward.io/*"})...)

		env := framework.StartForTest(t, framework.Options{WithoutCertManager: true})
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		n := installChartRBAC(ctx, t, env, decodeManifests(t, renderChart(t, filepath.Join("deploy", "test", "testdata", "all-options.yaml"))))
		t.Logf("created %d RBAC objects rendered with all-options.yaml", n)
		checkRBAC(ctx, t, env.Kubernetes, cases)
	})
}

// ---------------------------------------------------------------------------
// Vault policies
// ---------------------------------------------------------------------------

// maxVaultTokenTTL bounds every Keyward login: a leaked token is useless
// after this.
const maxVaultTokenTTL = 15 * time.Minute

// vaultLogin logs in with Kubernetes auth as Keyward's ServiceAccount (a
// fresh TokenRequest token, audience vault) to the given Vault role, and
// returns a client holding the new token plus the auth block.
func vaultLogin(ctx context.Context, t *testing.T, env *framework.Env, ns, sa, audience, role string) (*vaultapi.Client, *vaultapi.SecretAuth, error) {
	t.Helper()
	jwt, err := env.ServiceAccountToken(ctx, ns, sa, audience)
	if err != nil {
		t.Fatal(err)
	}
	c := vaultClient(t, env.Vault.Addr)
	sec, err := c.Logical().WriteWithContext(ctx, "auth/"+framework.VaultKubernetesMount+"/login", map[string]any{"role": role, "jwt": jwt})
	if err != nil {
		return nil, nil, err
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, nil, fmt.Errorf("login to role %s returned no token", role)
	}
	c.SetToken(sec.Auth.ClientToken)
	return c, sec.Auth, nil
}

// vaultClient is an unauthenticated client for addr.
func vaultClient(t *testing.T, addr string) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = addr
	cfg.Timeout = 10 * time.Second
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("")
	return c
}

// vaultStatus is the HTTP status of a Vault error, 0 for success and -1 for
// an error that carries none.
func vaultStatus(err error) int {
	if err == nil {
		return 0
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return -1
}

// vaultOp is one request a Keyward component might make.
type vaultOp struct {
	name string
	do   func(ctx context.Context, c *vaultapi.Client) error
}

// testCSR is a PEM CSR for cn with a throwaway key.
func testCSR(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestVaultLeastPrivilege logs in to Vault as each Keyward component, the
// way Keyward does (Kubernetes auth with a TokenRequest token), and checks
// that each token can do its job and nothing else: the issuer cannot touch
// custody, the custody writer cannot read keys back or sign, the guard
// cannot read or write key data, and none can change Vault's policies.
func TestVaultLeastPrivilege(t *testing.T) {
	env := framework.StartForTest(t, framework.Options{WithoutCertManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	const record = "custody/data/tls/demo/least-tls"
	csr := testCSR(t, "least.example.com")
	write := func(path string, data map[string]any) func(context.Context, *vaultapi.Client) error {
		return func(ctx context.Context, c *vaultapi.Client) error {
			_, err := c.Logical().WriteWithContext(ctx, path, data)
			return err
		}
	}
	read := func(path string) func(context.Context, *vaultapi.Client) error {
		return func(ctx context.Context, c *vaultapi.Client) error {
			sec, err := c.Logical().ReadWithContext(ctx, path)
			if err == nil && sec == nil {
				return fmt.Errorf("read %s: nothing there", path)
			}
			return err
		}
	}
	var (
		signKeyward = vaultOp{"sign at pki_int/sign/keyward", func(ctx context.Context, c *vaultapi.Client) error {
			sec, err := c.Logical().WriteWithContext(ctx, "pki_int/sign/keyward", map[string]any{"csr": csr, "common_name": "least.example.com"})
			if err == nil && (sec == nil || sec.Data["certificate"] == nil) {
				return errors.New("sign returned no certificate")
			}
			return err
		}}
		signBaseline = vaultOp{"sign at pki_int/sign/cert-manager", write("pki_int/sign/cert-manager", map[string]any{"csr": csr, "common_name": "least.example.com"})}
		issueKeyward = vaultOp{"issue (Vault-generated key) at pki_int/issue/keyward", write("pki_int/issue/keyward", map[string]any{"common_name": "least.example.com"})}
		writePKIRole = vaultOp{"rewrite PKI role pki_int/roles/keyward", write("pki_int/roles/keyward", map[string]any{"allow_any_name": true})}
		writeCustody = vaultOp{"write custody data", write(record, map[string]any{"data": map[string]any{"tls.key": "not-a-real-key"}})}
		writeOutside = vaultOp{"write custody data outside tls/", write("custody/data/elsewhere/x", map[string]any{"data": map[string]any{"k": "v"}})}
		readCustody  = vaultOp{"read custody data", read(record)}
		readMetadata = vaultOp{"read custody metadata", read("custody/metadata/tls/demo/least-tls")}
		readSubkeys  = vaultOp{"read a custody record's description (subkeys)", read("custody/subkeys/tls/demo/least-tls")}
		writeMeta    = vaultOp{"write custody custom metadata", write("custody/metadata/tls/demo/least-tls", map[string]any{"custom_metadata": map[string]any{"key_sha256": "00"}})}
		setVersions  = vaultOp{"set the custody mount's max_versions", write("custody/config", map[string]any{"max_versions": 5})}
		setCAS       = vaultOp{"set the custody mount's cas_required", write("custody/config", map[string]any{"cas_required": false})}
		deleteMeta   = vaultOp{"delete custody metadata", func(ctx context.Context, c *vaultapi.Client) error {
			_, err := c.Logical().DeleteWithContext(ctx, "custody/metadata/tls/demo/least-tls")
			return err
		}}
		// Cluster east's record, for the adoption role (keyward-adopter.hcl).
		writeEast    = vaultOp{"write cluster east's custody data", write("custody/data/tls/east/demo/least-tls", map[string]any{"data": map[string]any{"tls.key": "not-a-real-key"}})}
		readEast     = vaultOp{"read cluster east's custody data", read("custody/data/tls/east/demo/least-tls")}
		readEastMeta = vaultOp{"read cluster east's custody metadata", read("custody/metadata/tls/east/demo/least-tls")}
		readEastKeys = vaultOp{"read cluster east's custody record description", read("custody/subkeys/tls/east/demo/least-tls")}
		// Vault answers 400 (unknown serial) once the policy allows the call.
		revokeSerial = vaultOp{"revoke a serial at pki_int/revoke", func(ctx context.Context, c *vaultapi.Client) error {
			_, err := c.Logical().WriteWithContext(ctx, "pki_int/revoke", map[string]any{"serial_number": "00:11:22:33"})
			if vaultStatus(err) == http.StatusBadRequest {
				return nil
			}
			return err
		}}
		readPolicy  = vaultOp{"read sys/policies/acl/keyward-issuer", read("sys/policies/acl/keyward-issuer")}
		writePolicy = vaultOp{"write sys/policies/acl/keyward-escalate", write("sys/policies/acl/keyward-escalate", map[string]any{"policy": `path "*" { capabilities = ["sudo", "read"] }`})}
		listPolicy  = vaultOp{"list sys/policies/acl", func(ctx context.Context, c *vaultapi.Client) error {
			_, err := c.Logical().ListWithContext(ctx, "sys/policies/acl")
			return err
		}}
	)

	// Order matters only for the positive reads: the writer creates the
	// record the guard then reads the description and metadata of.
	for _, role := range []struct {
		name, policy string
		can, cannot  []vaultOp
	}{
		{
			name: "keyward-custody-writer", policy: framework.PolicyCustodyWriter,
			can:    []vaultOp{writeCustody, writeEast, readMetadata, readSubkeys, setVersions},
			cannot: []vaultOp{readCustody, readEast, writeOutside, writeMeta, setCAS, signKeyward, signBaseline, revokeSerial, readPolicy, writePolicy, listPolicy},
		},
		{
			name: "keyward-guard", policy: framework.PolicyGuard,
			can:    []vaultOp{readMetadata, readSubkeys},
			cannot: []vaultOp{readCustody, writeCustody, writeMeta, deleteMeta, setVersions, signKeyward, readPolicy, writePolicy},
		},
		{
			name: "keyward-issuer", policy: framework.PolicyIssuer,
			can:    []vaultOp{signKeyward},
			cannot: []vaultOp{writeCustody, readCustody, readMetadata, readSubkeys, signBaseline, issueKeyward, writePKIRole, revokeSerial, readPolicy, writePolicy, listPolicy},
		},
		{
			name: "keyward-adopter", policy: framework.PolicyAdopter,
			can:    []vaultOp{readEast, readEastMeta, readEastKeys},
			cannot: []vaultOp{readCustody, readMetadata, readSubkeys, writeCustody, writeEast, signKeyward, revokeSerial, readPolicy, writePolicy},
		},
		{
			name: "keyward-revoker", policy: framework.PolicyRevoker,
			can:    []vaultOp{revokeSerial},
			cannot: []vaultOp{signKeyward, issueKeyward, readCustody, readMetadata, writeCustody, readPolicy, writePolicy},
		},
	} {
		t.Run(role.name, func(t *testing.T) {
			c, auth, err := vaultLogin(ctx, t, env, framework.KeywardNamespace, framework.KeywardServiceAccount, framework.VaultAudience, role.name)
			if err != nil {
				t.Fatalf("Kubernetes login to role %s: %v", role.name, err)
			}
			if got, want := auth.TokenPolicies, []string{"default", role.policy}; !slices.Equal(got, want) {
				t.Errorf("token policies %v, want exactly %v", got, want)
			}
			if ttl := time.Duration(auth.LeaseDuration) * time.Second; ttl <= 0 || ttl > maxVaultTokenTTL {
				t.Errorf("token lease_duration %s, want > 0 and <= %s", ttl, maxVaultTokenTTL)
			}
			for _, op := range role.can {
				if err := op.do(ctx, c); err != nil {
					t.Errorf("%s must be able to %s: %v", role.name, op.name, err)
				}
			}
			for _, op := range role.cannot {
				if got := vaultStatus(op.do(ctx, c)); got != http.StatusForbidden {
					t.Errorf("%s: %s: status %d, want 403", role.name, op.name, got)
				}
			}
		})
	}

	t.Run("bindings", func(t *testing.T) {
		// The roles are bound to keyward-system/keyward with audience vault:
		// another ServiceAccount's token, or Keyward's with another audience,
		// gets no token.
		if _, _, err := vaultLogin(ctx, t, env, framework.CertManagerNamespace, framework.CertManagerServiceAccount, framework.VaultAudience, "keyward-custody-writer"); err == nil {
			t.Errorf("cert-manager's ServiceAccount logged in to role keyward-custody-writer")
		}
		if _, _, err := vaultLogin(ctx, t, env, framework.KeywardNamespace, framework.KeywardServiceAccount, "not-vault", "keyward-issuer"); err == nil {
			t.Errorf("a token with audience not-vault logged in to role keyward-issuer")
		}
	})
}

// ---------------------------------------------------------------------------
// Vault audit trail
// ---------------------------------------------------------------------------

// auditEntry is the part of a Vault file-audit line the trail checks.
type auditEntry struct {
	Type string `json:"type"`
	Auth struct {
		Accessor    string   `json:"accessor"`
		DisplayName string   `json:"display_name"`
		Policies    []string `json:"policies"`
	} `json:"auth"`
	Request struct {
		Path      string         `json:"path"`
		Operation string         `json:"operation"`
		Data      map[string]any `json:"data"`
	} `json:"request"`
	Response struct {
		Data map[string]any `json:"data"`
	} `json:"response"`
}

// readAudit parses every line of the audit log.
func readAudit(t *testing.T, path string) []auditEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditEntry
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e auditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit log line %d is not JSON: %v", i+1, err)
		}
		out = append(out, e)
	}
	return out
}

// auditHash is what the file audit device writes in place of s: its salted
// HMAC (sys/audit-hash), so entries can be matched without the raw value.
func auditHash(ctx context.Context, t *testing.T, root *vaultapi.Client, s string) string {
	t.Helper()
	sec, err := root.Logical().WriteWithContext(ctx, "sys/audit-hash/file", map[string]any{"input": s})
	if err != nil || sec == nil {
		t.Fatalf("computing an audit hash: %v", err)
	}
	h, _ := sec.Data["hash"].(string)
	if !strings.HasPrefix(h, "hmac-sha256:") {
		t.Fatalf("audit hash has an unexpected form")
	}
	return h
}

// nestedString is m[k1][k2]... as a string ("" when absent).
func nestedString(m map[string]any, keys ...string) string {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[k]
	}
	s, _ := cur.(string)
	return s
}

// TestVaultAuditTrail: after Keyward's custody writer stores a key and a
// consumer reads it, Vault's audit log names who did each (policy, token
// accessor, display name), records the key only as an HMAC, and nowhere
// holds the key itself or any token in the clear.
func TestVaultAuditTrail(t *testing.T) {
	env := framework.StartForTest(t, framework.Options{WithoutCertManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	root, err := env.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	const path = "custody/data/tls/demo/audit-tls"

	writer, writerAuth, err := vaultLogin(ctx, t, env, framework.KeywardNamespace, framework.KeywardServiceAccount, framework.VaultAudience, "keyward-custody-writer")
	if err != nil {
		t.Fatalf("custody writer login: %v", err)
	}
	writerSelf, err := writer.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Logical().WriteWithContext(ctx, path, map[string]any{"data": map[string]any{"tls.key": keyPEM}}); err != nil {
		t.Fatalf("custody write: %v", err)
	}

	consumerToken, err := env.Vault.TokenForPolicies(ctx, framework.PolicyConsumer)
	if err != nil {
		t.Fatal(err)
	}
	consumer := vaultClient(t, env.Vault.Addr)
	consumer.SetToken(consumerToken)
	consumerSelf, err := consumer.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := consumer.Logical().ReadWithContext(ctx, path)
	if err != nil || got == nil {
		t.Fatalf("consumer read: %v", err)
	}
	if nestedString(got.Data, "data", "tls.key") != keyPEM {
		t.Fatalf("the consumer did not read back the key that was written")
	}

	writerAccessor := auditHash(ctx, t, root, writerAuth.Accessor)
	consumerAccessor := auditHash(ctx, t, root, consumerSelf.Data["accessor"].(string))
	keyHash := auditHash(ctx, t, root, keyPEM)

	var write, readReq, readResp *auditEntry
	waitFor(t, 10*time.Second, "the custody write and read in the audit log", func(context.Context) (bool, error) {
		write, readReq, readResp = nil, nil, nil
		entries := readAudit(t, env.Vault.AuditLogPath)
		for i := range entries {
			e := &entries[i]
			if e.Request.Path != path {
				continue
			}
			switch {
			case e.Type == "request" && (e.Request.Operation == "create" || e.Request.Operation == "update"):
				write = e
			case e.Type == "request" && e.Request.Operation == "read":
				readReq = e
			case e.Type == "response" && e.Request.Operation == "read":
				readResp = e
			}
		}
		return write != nil && readReq != nil && readResp != nil, nil
	})

	if !slices.Contains(write.Auth.Policies, framework.PolicyCustodyWriter) {
		t.Errorf("audited custody write carries policies %v, want %s", write.Auth.Policies, framework.PolicyCustodyWriter)
	}
	if write.Auth.Accessor != writerAccessor {
		t.Errorf("audited custody write does not carry the writer's token accessor")
	}
	if want, _ := writerSelf.Data["display_name"].(string); write.Auth.DisplayName != want || !strings.Contains(want, framework.KeywardNamespace) {
		t.Errorf("audited custody write has display_name %q, want %q (naming the ServiceAccount)", write.Auth.DisplayName, want)
	}
	if nestedString(write.Request.Data, "data", "tls.key") != keyHash {
		t.Errorf("audited custody write does not record the key as its HMAC")
	}
	if !slices.Contains(readReq.Auth.Policies, framework.PolicyConsumer) {
		t.Errorf("audited custody read carries policies %v, want %s", readReq.Auth.Policies, framework.PolicyConsumer)
	}
	if readReq.Auth.Accessor != consumerAccessor {
		t.Errorf("audited custody read does not carry the consumer's token accessor")
	}
	if nestedString(readResp.Response.Data, "data", "tls.key") != keyHash {
		t.Errorf("audited custody read response does not record the key as its HMAC")
	}

	// The clear values must appear nowhere. PEM is JSON-escaped in a JSON
	// log ("\n"), so the base64 lines are searched one by one as well as the
	// whole value in both forms.
	escaped, _ := json.Marshal(keyPEM)
	needles := map[string]string{
		"the private key (PEM)":          keyPEM,
		"the private key (JSON-escaped)": strings.Trim(string(escaped), `"`),
		"a PEM private key marker":       "PRIVATE KEY-----",
		"the custody writer's token":     writerAuth.ClientToken,
		"the consumer's token":           consumerToken,
		"the root token":                 env.Vault.RootToken,
	}
	for i, line := range strings.Split(strings.TrimSpace(keyPEM), "\n") {
		if !strings.HasPrefix(line, "-----") {
			needles[fmt.Sprintf("line %d of the private key's base64", i)] = line
		}
	}
	audit, err := os.ReadFile(env.Vault.AuditLogPath)
	if err != nil {
		t.Fatal(err)
	}
	for what, needle := range needles {
		if i := bytes.Index(audit, []byte(needle)); i >= 0 {
			t.Errorf("the audit log holds %s in the clear (line %d)", what, bytes.Count(audit[:i], []byte("\n"))+1)
		}
	}
	t.Logf("audit log: %d entries, %d bytes; write and read attributed, key recorded only as HMAC", len(readAudit(t, env.Vault.AuditLogPath)), len(audit))
}

// ---------------------------------------------------------------------------
// Logs, events and status
// ---------------------------------------------------------------------------

// TestLogsHoldNoSecrets runs one custody issuance through the whole stack
// (cert-manager's CA issuer, Keyward's scrub webhook and Vault), then
// searches every component log, every Event and every Certificate and
// CertificateRequest status message for private keys and tokens.
func TestLogsHoldNoSecrets(t *testing.T) {
	st := keyward.StartStackForTest(t, keyward.StackOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	caClusterIssuer(t, st, "ca")
	custodyNamespace(t, st, "logs", nil)
	crt := newCertificate("logs", "web", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: cmapi.ClusterIssuerKind, Name: "ca"}, "web.example.com")
	if err := st.Client.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(crt), 40*time.Second)
	// The issuance must really have gone through custody, or there would be
	// nothing to leak.
	assertScrubbed(t, st, "logs", "web-tls", false)

	// StartStackForTest runs the same scan at every test's cleanup; here it
	// also has to prove it looked at something.
	r, err := st.LeakScan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range r.Hits {
		t.Error(h)
	}
	if r.LogFiles < 4 {
		t.Errorf("only %d log files in %s; the scan would prove little", r.LogFiles, st.Dir)
	}
	if r.Events == 0 || r.Certificates == 0 || r.CertificateRequests == 0 {
		t.Errorf("nothing to scan: %d Events, %d Certificates, %d CertificateRequests", r.Events, r.Certificates, r.CertificateRequests)
	}
	t.Logf("scanned %d log files, %d Events, %d Certificates, %d CertificateRequests: %d hits", r.LogFiles, r.Events, r.Certificates, r.CertificateRequests, len(r.Hits))
}
