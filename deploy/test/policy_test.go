// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
)

const policyName = "keyward-certificate-policy"

// certificatePolicy is one rendering of the certificate policy's three objects.
type certificatePolicy struct {
	params  *corev1.ConfigMap
	policy  *admissionregistrationv1.ValidatingAdmissionPolicy
	binding *admissionregistrationv1.ValidatingAdmissionPolicyBinding
}

func policyObjects(t *testing.T, m *manifests) certificatePolicy {
	t.Helper()
	var p certificatePolicy
	for _, cm := range all[*corev1.ConfigMap](m) {
		if cm.Name == policyName {
			p.params = cm
		}
	}
	if p.params == nil {
		t.Fatalf("no ConfigMap %s", policyName)
	}
	p.policy = one[*admissionregistrationv1.ValidatingAdmissionPolicy](t, m)
	p.binding = one[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, m)
	return p
}

func shippedPolicy(t *testing.T) certificatePolicy {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "policy", "certificate-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifests(newScheme(t), data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.typed) != 3 || len(m.foreign) != 0 {
		t.Fatalf("deploy/policy/certificate-policy.yaml holds %d objects, want the ConfigMap, the policy and its binding", len(m.typed)+len(m.foreign))
	}
	return policyObjects(t, m)
}

func renderWith(t *testing.T, values string) *manifests {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := RenderChart(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifests(newScheme(t), out)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCertificatePolicyChartMatchesFile: the chart, enabled with its default
// values, renders exactly deploy/policy/certificate-policy.yaml (labels aside).
func TestCertificatePolicyChartMatchesFile(t *testing.T) {
	t.Parallel()
	file := shippedPolicy(t)
	chart := policyObjects(t, renderWith(t, "certificatePolicy:\n  enabled: true\n"))

	if chart.params.Namespace != ReleaseNamespace || file.params.Namespace != ReleaseNamespace {
		t.Errorf("ConfigMap namespaces: chart %q, file %q, want %s", chart.params.Namespace, file.params.Namespace, ReleaseNamespace)
	}
	if !reflect.DeepEqual(chart.params.Data, file.params.Data) {
		t.Errorf("ConfigMap data differ:\nchart %v\nfile  %v", chart.params.Data, file.params.Data)
	}
	if chart.policy.Name != file.policy.Name || !reflect.DeepEqual(chart.policy.Spec, file.policy.Spec) {
		t.Errorf("ValidatingAdmissionPolicy differs from deploy/policy/certificate-policy.yaml (copy the spec into templates/certificatepolicy.yaml)")
	}
	if chart.binding.Name != file.binding.Name || !reflect.DeepEqual(chart.binding.Spec, file.binding.Spec) {
		t.Errorf("binding differs:\nchart %+v\nfile  %+v", chart.binding.Spec, file.binding.Spec)
	}

	// What the docs promise about the shipped objects.
	b, p := file.binding.Spec, file.policy.Spec
	if p.FailurePolicy == nil || *p.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy = %v, want Fail (parameterNotFoundAction Deny only denies with Fail)", p.FailurePolicy)
	}
	if b.ParamRef == nil || b.ParamRef.ParameterNotFoundAction == nil || *b.ParamRef.ParameterNotFoundAction != admissionregistrationv1.DenyAction {
		t.Errorf("paramRef = %+v, want parameterNotFoundAction Deny", b.ParamRef)
	} else if b.ParamRef.Name != file.params.Name || b.ParamRef.Namespace != file.params.Namespace {
		t.Errorf("paramRef names %s/%s, the ConfigMap is %s/%s", b.ParamRef.Namespace, b.ParamRef.Name, file.params.Namespace, file.params.Name)
	}
	if !reflect.DeepEqual(b.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) {
		t.Errorf("validationActions = %v, want [Deny]", b.ValidationActions)
	}
	if b.PolicyName != file.policy.Name {
		t.Errorf("binding names policy %s, the policy is %s", b.PolicyName, file.policy.Name)
	}
	checkNamespaceSelector(t, "certificate policy binding", b.MatchResources.NamespaceSelector)
}

// TestCertificatePolicyChartValues: off by default, every value reaches the
// ConfigMap or the binding, and an empty issuer list is refused.
func TestCertificatePolicyChartValues(t *testing.T) {
	t.Parallel()
	m := renderAndDecode(t, "")
	if n := len(all[*admissionregistrationv1.ValidatingAdmissionPolicy](m)) + len(all[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](m)); n != 0 {
		t.Errorf("the policy is rendered although certificatePolicy.enabled is false by default")
	}

	p := policyObjects(t, renderWith(t, `custody:
  namespaceSelector:
    matchLabels: {keyward.io/custody: enabled}
    matchExpressions: [{key: tier, operator: In, values: [prod]}]
certificatePolicy:
  enabled: true
  validationActions: [Warn, Audit]
  allowedIssuers: [VaultClusterIssuer.vault.keyward.io/vault, "ClusterIssuer.cert-manager.io/*"]
  rsaMinSize: 3072
  ecdsaSizes: []
  allowEd25519: true
  minDuration: 24h
  maxDuration: 720h
  minRenewBefore: 1h
  maxRenewBeforePercentage: 40
  allowKeystores: true
  allowAdditionalOutputFormats: true
`))
	want := map[string]string{
		"allowedIssuers": "VaultClusterIssuer.vault.keyward.io/vault, ClusterIssuer.cert-manager.io/*",
		"rsaMinSize":     "3072", "ecdsaSizes": "", "allowEd25519": "true",
		"minDuration": "24h", "maxDuration": "720h", "minRenewBefore": "1h", "maxRenewBeforePercentage": "40",
		"allowKeystores": "true", "allowAdditionalOutputFormats": "true",
	}
	if !reflect.DeepEqual(p.params.Data, want) {
		t.Errorf("ConfigMap data = %v, want %v", p.params.Data, want)
	}
	if got := p.binding.Spec.ValidationActions; !reflect.DeepEqual(got, []admissionregistrationv1.ValidationAction{"Warn", "Audit"}) {
		t.Errorf("validationActions = %v, want [Warn Audit]", got)
	}
	checkNamespaceSelector(t, "certificate policy binding", p.binding.Spec.MatchResources.NamespaceSelector)

	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte("certificatePolicy:\n  enabled: true\n  allowedIssuers: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RenderChart(f); err == nil || !strings.Contains(err.Error(), "certificatePolicy.allowedIssuers must not be empty") {
		t.Errorf("empty allowedIssuers: err = %v, want a refusal", err)
	}
}

// TestCertificatePolicyCEL compiles every expression of the shipped policy
// in an environment close to the apiserver's (the extended strings library,
// optional types, dynamically typed object and params) and evaluates it on a
// few Certificates, with no evaluation error allowed: with failurePolicy
// Fail an error is a denial. The real apiserver runs the full table in
// e2e/policy_test.go; this one answers in milliseconds.
func TestCertificatePolicyCEL(t *testing.T) {
	t.Parallel()
	file := shippedPolicy(t)
	env, err := cel.NewEnv(
		cel.HomogeneousAggregateLiterals(), cel.CrossTypeNumericComparisons(true), cel.OptionalTypes(),
		ext.Strings(ext.StringsVersion(2)), ext.Sets(),
		cel.Variable("object", cel.DynType), cel.Variable("oldObject", cel.DynType),
		cel.Variable("params", cel.DynType), cel.Variable("request", cel.DynType),
		cel.Variable("variables", cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		t.Fatal(err)
	}
	compile := func(what, expr string) cel.Program {
		t.Helper()
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Fatalf("%s does not compile: %v", what, iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return prg
	}
	params := map[string]any{"metadata": map[string]any{"name": file.params.Name, "namespace": file.params.Namespace}, "data": toAny(file.params.Data)}
	source := " (ConfigMap keyward-system/keyward-certificate-policy, key "
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"compliant", `{"privateKey":{"algorithm":"ECDSA","size":384,"rotationPolicy":"Always"},"duration":"24h","renewBefore":"8h"}`, ""},
		{"everything unset", `{}`, ""},
		{"RSA 1024", `{"privateKey":{"size":1024}}`, "keyward certificate policy: spec.privateKey.size 1024 is below the minimum RSA size 2048" + source + "rsaMinSize)"},
		{"duration 59m", `{"duration":"59m"}`, "keyward certificate policy: spec.duration 59m is below the minimum 1h" + source + "minDuration)"},
		{"renewBeforePercentage 5 of 1h", `{"duration":"1h","renewBeforePercentage":5}`, "keyward certificate policy: spec.renewBeforePercentage 5 of spec.duration 1h (renewBefore 3m0s) is below the minimum 5m" + source + "minRenewBefore)"},
		{"rotation Never", `{"privateKey":{"rotationPolicy":"Never"}}`, "keyward certificate policy: spec.privateKey.rotationPolicy Never is not allowed: the key is held in Vault, not in the Secret, so it cannot be reused; use Always or leave it unset (not configurable)"},
		{"bad duration", `{"duration":"90 days"}`, `keyward certificate policy: spec.duration "90 days" is not a Go duration like 2160h or 90m`},
	} {
		var spec map[string]any
		if err := json.Unmarshal([]byte(tc.spec), &spec); err != nil {
			t.Fatal(err)
		}
		spec = wholeNumbersAsInts(spec).(map[string]any)
		spec["issuerRef"] = map[string]any{"name": "vault", "kind": "VaultClusterIssuer", "group": "vault.keyward.io"}
		vars := map[string]any{
			"object": map[string]any{"spec": spec}, "oldObject": nil, "params": params,
			"request": map[string]any{"operation": "CREATE"},
		}
		// The apiserver evaluates variables lazily; evaluating them in order
		// and keeping an error as the value has the same effect: an
		// expression fails only if it reaches the erroring variable.
		variables := map[string]ref.Val{}
		vars["variables"] = variables
		for _, v := range file.policy.Spec.Variables {
			out, _, err := compile("variable "+v.Name, v.Expression).Eval(vars)
			if err != nil {
				out = types.NewErr("%v", err)
			}
			variables[v.Name] = out
		}
		var got string
		for i, v := range file.policy.Spec.Validations {
			out, _, err := compile("validation", v.Expression).Eval(vars)
			if err != nil {
				t.Errorf("%s: validation %d fails to evaluate: %v", tc.name, i, err)
				continue
			}
			if out == types.True || got != "" {
				continue
			}
			msg, _, err := compile("messageExpression", v.MessageExpression).Eval(vars)
			if err != nil {
				t.Errorf("%s: messageExpression %d fails to evaluate: %v", tc.name, i, err)
				continue
			}
			got, _ = msg.Value().(string)
		}
		if got != tc.want {
			t.Errorf("%s: message\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// wholeNumbersAsInts turns JSON's float64 whole numbers into int64, as the
// apiserver's unstructured objects hold them (CEL int, not double).
func wholeNumbersAsInts(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = wholeNumbersAsInts(e)
		}
	case []any:
		for i, e := range x {
			x[i] = wholeNumbersAsInts(e)
		}
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
