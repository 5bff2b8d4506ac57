// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

// The certificate policy scenario applies deploy/policy/certificate-policy.yaml,
// the file operators apply, to the stack's real kube-apiserver, which
// evaluates it itself (ValidatingAdmissionPolicy, CEL). Certificates are
// written as unstructured objects, so every field is exactly what a user's
// YAML would hold ("59m", not a Go duration's "59m0s"), and judged with
// server-side dry-run creates: nothing is stored, the decision is the
// apiserver's.

const (
	policyNS        = "policy"  // custody namespace the policy binds to
	policyOutsideNS = "outside" // no custody label: not checked
	policyName      = "keyward-certificate-policy"
	// policyDenied is how the apiserver prefixes a denial of this policy.
	policyDenied = "ValidatingAdmissionPolicy '" + policyName + "' with binding '" + policyName + "' denied request: "
	policyPrefix = "keyward certificate policy: "
)

// policyKey is the end of every rule's message: the ConfigMap key it reads.
func policyKey(key string) string {
	return " (ConfigMap " + framework.KeywardNamespace + "/" + policyName + ", key " + key + ")"
}

// policyCase is one Certificate and the policy's verdict on it.
type policyCase struct {
	name string
	ns   string         // policyNS when empty
	spec map[string]any // set over the minimal spec (secretName, dnsNames, issuerRef)
	want string         // the policy's message; empty: admitted
}

// TestCertificatePolicy: the shipped certificate policy refuses each
// violation with a message naming the rule, the field and the ConfigMap key,
// admits the boundary values, ignores namespaces outside custody, follows
// edits of its ConfigMap (and fails closed without it), and lets compliant
// Certificates from Keyward's Vault issuer and from an ACME CA issue into
// custody as usual.
func TestCertificatePolicy(t *testing.T) {
	t.Parallel()
	st := keyward.StartStackForTest(t, keyward.StackOptions{Framework: framework.Options{ACME: true}})
	ctx := context.Background()
	if _, err := st.CreateACMEClusterIssuer(ctx, "acme", framework.ACMEProfileDefault); err != nil {
		t.Fatal(err)
	}
	vault := keywardClusterIssuer(st, "vault")
	if err := st.Client.Create(ctx, vault); err != nil {
		t.Fatal(err)
	}
	custodyNamespace(t, st, policyNS, nil)
	if err := st.CreateNamespace(ctx, policyOutsideNS, nil); err != nil {
		t.Fatal(err)
	}

	shipped := applyCertificatePolicy(t, st)
	rsa1024 := policyCertificate(policyNS, "probe", map[string]any{"privateKey": map[string]any{"size": int64(1024)}})
	took := waitPolicyDecision(t, st, rsa1024, policyPrefix+"spec.privateKey.size 1024 is below the minimum RSA size 2048"+policyKey("rsaMinSize"))
	t.Logf("policy enforced %s after it was applied", took)

	// Compliant Certificates, created now (their creation is admitted by
	// the policy) so that issuance runs while the rules are checked. The ACME
	// one leaves every key and lifetime field unset: cert-manager's defaults
	// (RSA 2048, 2160h, renewBefore a third, rotation Always) comply.
	waitClusterIssuerReady(t, st.Client, "acme", time.Minute)
	waitKeywardIssuerReady(t, st.Client, vault)
	internal := policyCertificate(policyNS, "internal", map[string]any{
		"duration": "24h", "renewBefore": "8h",
		"privateKey": map[string]any{"algorithm": "ECDSA", "size": int64(384), "rotationPolicy": "Always"},
	})
	public := policyCertificate(policyNS, "public", map[string]any{
		"dnsNames":  []any{"policy." + framework.ACMEZone},
		"issuerRef": map[string]any{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "acme"},
	})
	for _, crt := range []*unstructured.Unstructured{internal, public} {
		if err := st.Client.Create(ctx, crt); err != nil {
			t.Fatalf("creating compliant Certificate %s: %v", crt.GetName(), err)
		}
	}

	t.Run("rules with the shipped limits", func(t *testing.T) {
		for _, cases := range [][]policyCase{policyKeyCases(), policyLifetimeCases(), policyOutputCases()} {
			checkPolicyCases(t, st, cases)
		}
	})
	t.Run("ConfigMap edits change the decision", func(t *testing.T) { policyEdits(t, st, shipped, public) })
	t.Run("without its ConfigMap the policy denies", func(t *testing.T) { policyWithoutConfigMap(t, st, shipped) })
	t.Run("Warn and Audit admit with a warning", func(t *testing.T) { policyWarnMode(t, st, rsa1024) })
	t.Run("compliant Certificates issue into custody", func(t *testing.T) {
		for _, crt := range []*unstructured.Unstructured{internal, public} {
			created := crt.GetCreationTimestamp().Time
			ready := waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(crt), 3*time.Minute)
			waitSettled(t, st, ready)
			_, rec := assertScrubbed(t, st, policyNS, ready.Spec.SecretName, false)
			t.Logf("%s (%s/%s): Ready %s after creation, key in custody version %d", crt.GetName(),
				ready.Spec.IssuerRef.Kind, ready.Spec.IssuerRef.Name, readySince(ready).Sub(created).Round(time.Second), rec.Version)
		}
	})
	assertNoKeyAtRest(t, st, policyNS, false)
}

// policyCertificate is a Certificate with only the required fields (the
// VaultClusterIssuer "vault") plus spec.
func policyCertificate(ns, name string, spec map[string]any) *unstructured.Unstructured {
	s := map[string]any{
		"secretName": name + "-tls",
		"dnsNames":   []any{name + ".example.com"},
		"issuerRef":  map[string]any{"group": "vault.keyward.io", "kind": "VaultClusterIssuer", "name": "vault"},
	}
	maps.Copy(s, spec)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     s,
	}}
}

// applyCertificatePolicy creates the objects of the shipped file and returns
// them as read (the ConfigMap's data is the shipped defaults).
func applyCertificatePolicy(t *testing.T, st *keyward.Stack) []*unstructured.Unstructured {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "policy", "certificate-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeManifests(t, data)
	for _, o := range objs {
		if err := st.Client.Create(context.Background(), o.DeepCopy()); err != nil {
			t.Fatalf("applying %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	return objs
}

// policyDecision asks the apiserver, with a server-side dry-run create,
// whether crt is admitted: "" if it is, the policy's message if the policy
// denies it, an error for any other answer.
func policyDecision(ctx context.Context, c client.Client, crt *unstructured.Unstructured) (string, error) {
	return policyAnswer(crt.GetName(), c.Create(ctx, crt.DeepCopy(), client.DryRunAll))
}

// policyAnswer reads the answer to a write of Certificate name: "" when
// admitted, the policy's message when the policy denied it. A rule denies
// with reason Forbidden (the policy sets it); the apiserver's own denial for
// a missing ConfigMap carries reason Invalid.
func policyAnswer(name string, err error) (string, error) {
	if err == nil {
		return "", nil
	}
	prefix := fmt.Sprintf("certificates.cert-manager.io %q is forbidden: %s", name, policyDenied)
	msg, ok := strings.CutPrefix(err.Error(), prefix)
	own := strings.HasPrefix(msg, policyPrefix)
	if ok && (own && apierrors.IsForbidden(err) || !own && apierrors.IsInvalid(err)) {
		return msg, nil
	}
	return "", err
}

// waitPolicyDecision polls until the apiserver's decision on crt is want
// and returns how long that took: the apiserver compiles a new policy, and
// sees a ConfigMap edit, a moment after the write.
func waitPolicyDecision(t *testing.T, st *keyward.Stack, crt *unstructured.Unstructured, want string) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, 30*time.Second, fmt.Sprintf("the policy's decision on %s to be %q", crt.GetName(), want), func(ctx context.Context) (bool, error) {
		got, err := policyDecision(ctx, st.Client, crt)
		if err == nil && got != want {
			err = fmt.Errorf("decision %q", got)
		}
		return err == nil, err
	})
	return time.Since(start).Round(time.Millisecond)
}

func checkPolicyCases(t *testing.T, st *keyward.Stack, cases []policyCase) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.ns
			if ns == "" {
				ns = policyNS
			}
			crt := policyCertificate(ns, fmt.Sprintf("case-%d", i), tc.spec)
			got, err := policyDecision(context.Background(), st.Client, crt)
			if err != nil {
				t.Fatalf("spec %v: %v", tc.spec, err)
			}
			if got != tc.want {
				t.Errorf("spec %v:\n got %q\nwant %q", tc.spec, got, tc.want)
			}
		})
	}
}

func policyKeyCases() []policyCase {
	key := func(fields map[string]any) map[string]any { return map[string]any{"privateKey": fields} }
	return []policyCase{
		{name: "everything unset: RSA 2048, 2160h, rotation Always", spec: nil},
		{name: "RSA 2048", spec: key(map[string]any{"algorithm": "RSA", "size": int64(2048)})},
		{name: "RSA 2047", spec: key(map[string]any{"algorithm": "RSA", "size": int64(2047)}),
			want: policyPrefix + "spec.privateKey.size 2047 is below the minimum RSA size 2048" + policyKey("rsaMinSize")},
		{name: "RSA 1024, algorithm unset", spec: key(map[string]any{"size": int64(1024)}),
			want: policyPrefix + "spec.privateKey.size 1024 is below the minimum RSA size 2048" + policyKey("rsaMinSize")},
		{name: "ECDSA P-256", spec: key(map[string]any{"algorithm": "ECDSA", "size": int64(256)})},
		{name: "ECDSA P-384", spec: key(map[string]any{"algorithm": "ECDSA", "size": int64(384)})},
		{name: "ECDSA size unset (256)", spec: key(map[string]any{"algorithm": "ECDSA"})},
		{name: "ECDSA P-521", spec: key(map[string]any{"algorithm": "ECDSA", "size": int64(521)}),
			want: policyPrefix + "spec.privateKey.size 521 is not an allowed ECDSA size (allowed: 256, 384)" + policyKey("ecdsaSizes")},
		{name: "Ed25519", spec: key(map[string]any{"algorithm": "Ed25519"}),
			want: policyPrefix + "spec.privateKey.algorithm Ed25519 is not allowed" + policyKey("allowEd25519")},
		{name: "rotationPolicy Always", spec: key(map[string]any{"rotationPolicy": "Always"})},
		{name: "rotationPolicy Never", spec: key(map[string]any{"rotationPolicy": "Never"}),
			want: policyPrefix + "spec.privateKey.rotationPolicy Never is not allowed: the key is held in Vault, not in the Secret, " +
				"so it cannot be reused; use Always or leave it unset (not configurable)"},
		{name: "any issuer by default, kind and group unset", spec: map[string]any{"issuerRef": map[string]any{"name": "ca"}}},
		{name: "outside custody: RSA 1024 is not checked", ns: policyOutsideNS, spec: key(map[string]any{"size": int64(1024)})},
	}
}

func policyLifetimeCases() []policyCase {
	return []policyCase{
		{name: "duration 1h", spec: map[string]any{"duration": "1h"}},
		{name: "duration 59m", spec: map[string]any{"duration": "59m"},
			want: policyPrefix + "spec.duration 59m is below the minimum 1h" + policyKey("minDuration")},
		{name: "duration 2160h", spec: map[string]any{"duration": "2160h"}},
		{name: "duration 2160h1s", spec: map[string]any{"duration": "2160h1s"},
			want: policyPrefix + "spec.duration 2160h1s is above the maximum 2160h" + policyKey("maxDuration")},
		{name: "duration not a Go duration", spec: map[string]any{"duration": "90 days"},
			want: policyPrefix + `spec.duration "90 days" is not a Go duration like 2160h or 90m`},
		{name: "renewBefore 5m", spec: map[string]any{"renewBefore": "5m"}},
		{name: "renewBefore 4m59s", spec: map[string]any{"renewBefore": "4m59s"},
			want: policyPrefix + "spec.renewBefore 4m59s is below the minimum 5m" + policyKey("minRenewBefore")},
		{name: "renewBefore 50% of 2h", spec: map[string]any{"duration": "2h", "renewBefore": "1h"}},
		{name: "renewBefore above 50% of 2h", spec: map[string]any{"duration": "2h", "renewBefore": "1h1m"},
			want: policyPrefix + "spec.renewBefore 1h1m is 50.9% of spec.duration 2h, above the maximum 50%" + policyKey("maxRenewBeforePercentage")},
		{name: "renewBefore above 50% of the default duration", spec: map[string]any{"renewBefore": "1081h"},
			want: policyPrefix + "spec.renewBefore 1081h is 50.1% of spec.duration (unset, cert-manager's default 2160h), above the maximum 50%" +
				policyKey("maxRenewBeforePercentage")},
		{name: "renewBeforePercentage 50", spec: map[string]any{"renewBeforePercentage": int64(50)}},
		{name: "renewBeforePercentage 51", spec: map[string]any{"renewBeforePercentage": int64(51)},
			want: policyPrefix + "spec.renewBeforePercentage 51 is above the maximum 50%" + policyKey("maxRenewBeforePercentage")},
		{name: "renewBeforePercentage 9 of 1h (5m24s)", spec: map[string]any{"duration": "1h", "renewBeforePercentage": int64(9)}},
		{name: "renewBeforePercentage 8 of 1h", spec: map[string]any{"duration": "1h", "renewBeforePercentage": int64(8)},
			want: policyPrefix + "spec.renewBeforePercentage 8 of spec.duration 1h (renewBefore 4m48s) is below the minimum 5m" + policyKey("minRenewBefore")},
	}
}

func policyOutputCases() []policyCase {
	keystore := func(kind string, create bool) map[string]any {
		return map[string]any{"keystores": map[string]any{kind: map[string]any{"create": create, "passwordSecretRef": map[string]any{"name": "pw"}}}}
	}
	return []policyCase{
		{name: "pkcs12 keystore not created", spec: keystore("pkcs12", false)},
		{name: "jks keystore", spec: keystore("jks", true),
			want: policyPrefix + "spec.keystores.jks is not allowed: a keystore holds the private key" + policyKey("allowKeystores")},
		{name: "pkcs12 keystore", spec: keystore("pkcs12", true),
			want: policyPrefix + "spec.keystores.pkcs12 is not allowed: a keystore holds the private key" + policyKey("allowKeystores")},
		{name: "additional output formats", spec: map[string]any{"additionalOutputFormats": []any{map[string]any{"type": "DER"}, map[string]any{"type": "CombinedPEM"}}},
			want: policyPrefix + "spec.additionalOutputFormats DER, CombinedPEM is not allowed: these formats hold the private key" + policyKey("allowAdditionalOutputFormats")},
	}
}

// policyEdits: the operator's edits of the ConfigMap take effect without
// touching the policy, for new Certificates and spec changes, not for
// metadata updates of existing ones.
func policyEdits(t *testing.T, st *keyward.Stack, shipped []*unstructured.Unstructured, public *unstructured.Unstructured) {
	defaults := shippedPolicyData(t, shipped)
	issuer := func(kind, group, name string) map[string]any {
		return map[string]any{"issuerRef": map[string]any{"kind": kind, "group": group, "name": name}}
	}
	const allowed = "VaultClusterIssuer.vault.keyward.io/vault, ClusterIssuer.cert-manager.io/acme, VaultIssuer.vault.keyward.io/*"
	data := maps.Clone(defaults)
	data["allowedIssuers"] = allowed
	setPolicyData(t, st, data)
	notAllowed := func(ref string) string {
		return policyPrefix + "spec.issuerRef " + ref + " is not an allowed issuer (allowed: " + allowed + ")" + policyKey("allowedIssuers")
	}
	ca := policyCertificate(policyNS, "ca", map[string]any{"issuerRef": map[string]any{"name": "ca"}})
	t.Logf("allowedIssuers edit enforced after %s", waitPolicyDecision(t, st, ca, notAllowed("Issuer.cert-manager.io/ca")))
	checkPolicyCases(t, st, []policyCase{
		{name: "listed VaultClusterIssuer", spec: nil},
		{name: "listed ACME ClusterIssuer", spec: issuer("ClusterIssuer", "cert-manager.io", "acme")},
		{name: "any VaultIssuer", spec: issuer("VaultIssuer", "vault.keyward.io", "team")},
		{name: "ClusterIssuer not listed", spec: issuer("ClusterIssuer", "cert-manager.io", "selfsigned"),
			want: notAllowed("ClusterIssuer.cert-manager.io/selfsigned")},
		{name: "other VaultClusterIssuer", spec: issuer("VaultClusterIssuer", "vault.keyward.io", "other"),
			want: notAllowed("VaultClusterIssuer.vault.keyward.io/other")},
	})

	data = maps.Clone(defaults)
	data["rsaMinSize"] = "3072"
	setPolicyData(t, st, data)
	const unsetBelow = policyPrefix + "spec.privateKey.size (unset, cert-manager's RSA default 2048) is below the minimum RSA size 3072"
	rsa2048 := policyCertificate(policyNS, "rsa", map[string]any{"privateKey": map[string]any{"algorithm": "RSA", "size": int64(2048)}})
	t.Logf("rsaMinSize edit enforced after %s", waitPolicyDecision(t, st, rsa2048,
		policyPrefix+"spec.privateKey.size 2048 is below the minimum RSA size 3072"+policyKey("rsaMinSize")))
	checkPolicyCases(t, st, []policyCase{
		{name: "RSA by default", spec: nil, want: unsetBelow + policyKey("rsaMinSize")},
		{name: "RSA 3072", spec: map[string]any{"privateKey": map[string]any{"size": int64(3072)}}},
	})
	// The ACME Certificate, RSA 2048 by default, was admitted before the
	// edit: its labels still change, its spec no longer does.
	ctx := context.Background()
	label := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"team":"web"}}}`))
	if err := st.Client.Patch(ctx, public.DeepCopy(), label); err != nil {
		t.Errorf("labelling the existing Certificate: %v", err)
	}
	dns := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"dnsNames":["policy.`+framework.ACMEZone+`","www.policy.`+framework.ACMEZone+`"]}}`))
	got, err := policyAnswer(public.GetName(), st.Client.Patch(ctx, public.DeepCopy(), dns, client.DryRunAll))
	if err != nil || got != unsetBelow+policyKey("rsaMinSize") {
		t.Errorf("changing the existing Certificate's dnsNames: got %q (%v), want %q", got, err, unsetBelow+policyKey("rsaMinSize"))
	}

	data = maps.Clone(defaults)
	data["rsaMinSize"] = "3k"
	delete(data, "maxDuration")
	setPolicyData(t, st, data)
	compliant := policyCertificate(policyNS, "compliant", nil)
	waitPolicyDecision(t, st, compliant, policyPrefix+"ConfigMap "+framework.KeywardNamespace+"/"+policyName+
		` is invalid: key rsaMinSize must be a whole number of bits, like 2048, got "3k"; key maxDuration is missing`)

	setPolicyData(t, st, defaults)
	waitPolicyDecision(t, st, compliant, "")
}

// policyWithoutConfigMap: parameterNotFoundAction Deny (with failurePolicy
// Fail) refuses every Certificate in scope while the ConfigMap is missing.
func policyWithoutConfigMap(t *testing.T, st *keyward.Stack, shipped []*unstructured.Unstructured) {
	ctx := context.Background()
	cm := policyConfigMap(t, shipped)
	if err := st.Client.Delete(ctx, cm.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	compliant := policyCertificate(policyNS, "compliant", nil)
	t.Logf("missing ConfigMap denies after %s", waitPolicyDecision(t, st, compliant,
		"failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"))
	checkPolicyCases(t, st, []policyCase{{name: "outside custody still admitted", ns: policyOutsideNS}})
	if err := st.Client.Create(ctx, cm.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	t.Logf("restored ConfigMap admits after %s", waitPolicyDecision(t, st, compliant, ""))
}

func policyConfigMap(t *testing.T, shipped []*unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	for _, o := range shipped {
		if o.GetKind() == "ConfigMap" && o.GetName() == policyName {
			return o
		}
	}
	t.Fatalf("the shipped policy has no ConfigMap %s", policyName)
	return nil
}

func shippedPolicyData(t *testing.T, shipped []*unstructured.Unstructured) map[string]string {
	t.Helper()
	data, ok, err := unstructured.NestedStringMap(policyConfigMap(t, shipped).Object, "data")
	if err != nil || !ok || len(data) == 0 {
		t.Fatalf("the shipped ConfigMap has no data (%v)", err)
	}
	return data
}

// setPolicyData replaces the policy ConfigMap's data, as an operator's edit.
func setPolicyData(t *testing.T, st *keyward.Stack, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	cm := &corev1.ConfigMap{}
	if err := st.Client.Get(ctx, client.ObjectKey{Namespace: framework.KeywardNamespace, Name: policyName}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data = data
	if err := st.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
}

// policyWarnMode: the rollout's dry run. With validationActions [Warn,
// Audit] a violating Certificate is admitted and the client gets the rule's
// message as an API warning; [Deny] refuses it again.
func policyWarnMode(t *testing.T, st *keyward.Stack, violating *unstructured.Unstructured) {
	ctx := context.Background()
	actions := func(list string) {
		t.Helper()
		binding := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: policyName}}
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"validationActions":`+list+`}}`))
		if err := st.Client.Patch(ctx, binding, patch); err != nil {
			t.Fatal(err)
		}
	}
	actions(`["Warn","Audit"]`)
	w := &policyWarnings{}
	cfg := rest.CopyConfig(st.RESTConfig)
	cfg.WarningHandlerWithContext = w
	c, err := client.New(cfg, client.Options{Scheme: st.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	rsaMessage := policyPrefix + "spec.privateKey.size 1024 is below the minimum RSA size 2048" + policyKey("rsaMinSize")
	want := "Validation failed for ValidatingAdmissionPolicy '" + policyName + "' with binding '" + policyName + "': " + rsaMessage
	waitFor(t, 30*time.Second, "a warning instead of a denial", func(ctx context.Context) (bool, error) {
		got := w.after(func() error { return c.Create(ctx, violating.DeepCopy(), client.DryRunAll) })
		return slices.Contains(got, want), nil
	})
	actions(`["Deny"]`)
	waitPolicyDecision(t, st, violating, rsaMessage)
}

// policyWarnings collects the API warnings of one request.
type policyWarnings struct {
	mu    sync.Mutex
	texts []string
}

func (w *policyWarnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.texts = append(w.texts, text)
}

// after runs write and returns the warnings it got, or nothing if it failed.
func (w *policyWarnings) after(write func() error) []string {
	w.mu.Lock()
	w.texts = nil
	w.mu.Unlock()
	if write() != nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.texts)
}
