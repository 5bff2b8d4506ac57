// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/keyward-io/keyward/guard"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/cel/environment"
)

// guardTestMatcher compiles GuardMatchConditions the way the apiserver does
// for a mutating webhook (webhook/accessors.go in k8s.io/apiserver): base
// environment, authorizer declared, no params; mode NewExpressions is the
// stricter one used when a configuration is created or updated.
func guardTestMatcher(t *testing.T, mode environment.Type) matchconditions.Matcher {
	t.Helper()
	compiler := plugincel.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	var exprs []plugincel.ExpressionAccessor
	for _, mc := range GuardMatchConditions() {
		exprs = append(exprs, &matchconditions.MatchCondition{Name: mc.Name, Expression: mc.Expression})
	}
	eval := compiler.CompileCondition(exprs, plugincel.OptionalVariableDeclarations{HasAuthorizer: true}, mode)
	if errs := eval.CompilationErrors(); len(errs) > 0 {
		t.Fatalf("compiling match conditions: %v", errs)
	}
	fail := admissionregistrationv1.Fail
	return matchconditions.NewMatcher(eval, &fail, "webhook", "admit", GuardWebhookName)
}

func guardTestUnstructured(t *testing.T, obj any) runtime.Object {
	t.Helper()
	if obj == nil {
		return nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatalf("converting to unstructured: %v", err)
	}
	return &unstructured.Unstructured{Object: m}
}

// guardTestMatch runs the compiled conditions on an UPDATE of
// certificates/status from old to new (raw maps, as the apiserver sees a CR).
func guardTestMatch(t *testing.T, m matchconditions.Matcher, old, new runtime.Object) matchconditions.MatchResult {
	t.Helper()
	gvk := cmapi.SchemeGroupVersion.WithKind("Certificate")
	gvr := cmapi.SchemeGroupVersion.WithResource("certificates")
	op := admission.Update
	if old == nil {
		op = admission.Create
	}
	attr := admission.NewAttributesRecord(new, old, gvk, "apps", "web", gvr, "status", op, nil, false, nil)
	va := &admission.VersionedAttributes{Attributes: attr, VersionedKind: gvk, VersionedObject: new, VersionedOldObject: old}
	return m.Match(context.Background(), va, nil, nil)
}

func guardTestCert(conds ...cmapi.CertificateCondition) *cmapi.Certificate {
	c := &cmapi.Certificate{
		TypeMeta:   metav1.TypeMeta{APIVersion: "cert-manager.io/v1", Kind: "Certificate"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps"},
		Spec:       cmapi.CertificateSpec{SecretName: "web-tls", IssuerRef: cmmeta.IssuerReference{Name: "ca"}},
	}
	c.Status.Conditions = conds
	return c
}

func guardTestCondition(typ cmapi.CertificateConditionType, status cmmeta.ConditionStatus, reason string) cmapi.CertificateCondition {
	now := metav1.NewTime(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	return cmapi.CertificateCondition{Type: typ, Status: status, Reason: reason, Message: "m", LastTransitionTime: &now}
}

func TestGuardMatchConditions(t *testing.T) {
	t.Parallel()
	for _, mode := range []environment.Type{environment.NewExpressions, environment.StoredExpressions} {
		guardTestMatcher(t, mode)
	}
	m := guardTestMatcher(t, environment.StoredExpressions)

	const (
		issuing = cmapi.CertificateConditionIssuing
		ready   = cmapi.CertificateConditionReady
		yes     = cmmeta.ConditionTrue
		no      = cmmeta.ConditionFalse
	)
	cond := guardTestCondition
	tests := []struct {
		name     string
		old, new *cmapi.Certificate
		// raw overrides new with an object the typed API cannot express.
		raw  map[string]any
		want bool
	}{
		{name: "no status", old: guardTestCert(), new: guardTestCert(), want: false},
		{name: "Issuing MissingData appears", old: guardTestCert(cond(ready, yes, "Ready")), new: guardTestCert(cond(ready, yes, "Ready"), cond(issuing, yes, "MissingData")), want: true},
		{name: "Issuing InvalidKeyPair appears", old: guardTestCert(), new: guardTestCert(cond(issuing, yes, "InvalidKeyPair")), want: true},
		{name: "Issuing SecretMismatch appears", old: guardTestCert(), new: guardTestCert(cond(issuing, yes, "SecretMismatch")), want: true},
		{name: "Issuing False to True MissingData", old: guardTestCert(cond(issuing, no, "Failed")), new: guardTestCert(cond(issuing, yes, "MissingData")), want: true},
		{name: "Issuing ManuallyTriggered is not sent", old: guardTestCert(cond(ready, yes, "Ready")), new: guardTestCert(cond(ready, yes, "Ready"), cond(issuing, yes, "ManuallyTriggered")), want: false},
		{name: "Issuing Renewing is not sent", old: guardTestCert(), new: guardTestCert(cond(issuing, yes, "Renewing")), want: false},
		{name: "Issuing already True", old: guardTestCert(cond(issuing, yes, "Renewing")), new: guardTestCert(cond(issuing, yes, "MissingData")), want: false},
		{name: "Issuing removed", old: guardTestCert(cond(issuing, yes, "MissingData")), new: guardTestCert(), want: false},
		{name: "issuance completes, not yet Ready", old: guardTestCert(cond(ready, no, "DoesNotExist"), cond(issuing, yes, "DoesNotExist")), new: guardTestCert(cond(ready, no, "DoesNotExist")), want: true},
		{name: "renewal completes while Ready", old: guardTestCert(cond(ready, yes, "Ready"), cond(issuing, yes, "Renewing")), new: guardTestCert(cond(ready, yes, "Ready")), want: false},
		{name: "issuance fails (Issuing False)", old: guardTestCert(cond(ready, no, "DoesNotExist"), cond(issuing, yes, "DoesNotExist")), new: guardTestCert(cond(ready, no, "DoesNotExist"), cond(issuing, no, "Failed")), want: false},
		{name: "no issuance under way", old: guardTestCert(cond(ready, no, "DoesNotExist")), new: guardTestCert(cond(ready, no, "Failed")), want: false},
		{name: "Ready True to False MissingData", old: guardTestCert(cond(ready, yes, "Ready")), new: guardTestCert(cond(ready, no, "MissingData")), want: true},
		{name: "Ready absent to False MissingData", old: guardTestCert(), new: guardTestCert(cond(ready, no, "MissingData")), want: true},
		{name: "Ready False DoesNotExist to False MissingData", old: guardTestCert(cond(ready, no, "DoesNotExist")), new: guardTestCert(cond(ready, no, "MissingData")), want: true},
		{name: "Ready False MissingData carried over", old: guardTestCert(cond(ready, no, "MissingData")), new: guardTestCert(cond(ready, no, "MissingData")), want: true},
		{name: "Ready False DoesNotExist stays", old: guardTestCert(cond(ready, no, "DoesNotExist")), new: guardTestCert(cond(ready, no, "DoesNotExist")), want: false},
		{name: "Issuing DoesNotExist appears (the trigger's cache may lag)", old: guardTestCert(cond(ready, no, "DoesNotExist")), new: guardTestCert(cond(ready, no, "DoesNotExist"), cond(issuing, yes, "DoesNotExist")), want: true},
		{name: "Issuing DoesNotExist while Issuing already True", old: guardTestCert(cond(issuing, yes, "Renewing")), new: guardTestCert(cond(issuing, yes, "DoesNotExist")), want: false},
		{name: "Ready True to False Expired", old: guardTestCert(cond(ready, yes, "Ready")), new: guardTestCert(cond(ready, no, "Expired")), want: false},
		{name: "Ready stays True", old: guardTestCert(cond(ready, yes, "Ready")), new: guardTestCert(cond(ready, yes, "Ready")), want: false},
		{name: "no old object", old: nil, new: guardTestCert(cond(ready, no, "MissingData")), want: true},
		{
			name: "conditions without reason are skipped without error",
			old:  guardTestCert(),
			raw: map[string]any{
				"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
				"metadata": map[string]any{"name": "web", "namespace": "apps"},
				"status":   map[string]any{"conditions": []any{map[string]any{"type": "Issuing", "status": "True"}, map[string]any{"type": "Ready"}}},
			},
			want: false,
		},
		{
			name: "old conditions without status are tolerated",
			raw: map[string]any{
				"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
				"metadata": map[string]any{"name": "web", "namespace": "apps"},
				"status":   map[string]any{"conditions": []any{map[string]any{"type": "Issuing", "status": "True", "reason": "MissingData"}}},
			},
			old:  &cmapi.Certificate{Status: cmapi.CertificateStatus{Conditions: []cmapi.CertificateCondition{{Type: issuing}}}},
			want: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var newObj runtime.Object
			if tc.raw != nil {
				newObj = &unstructured.Unstructured{Object: tc.raw}
			} else {
				newObj = guardTestUnstructured(t, tc.new)
			}
			var oldObj runtime.Object
			if tc.old != nil {
				oldObj = guardTestUnstructured(t, tc.old)
			}
			res := guardTestMatch(t, m, oldObj, newObj)
			if res.Error != nil {
				t.Fatalf("match conditions errored: %v", res.Error)
			}
			if res.Matches != tc.want {
				t.Fatalf("Matches = %v (failed condition %q), want %v", res.Matches, res.FailedConditionName, tc.want)
			}
			if tc.raw == nil {
				if got := guard.Candidate(tc.old, tc.new); got != tc.want {
					t.Fatalf("guard.Candidate = %v, disagrees with the CEL conditions (%v)", got, tc.want)
				}
			}
		})
	}
}

func TestGuardMatchConditionNames(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, mc := range GuardMatchConditions() {
		if mc.Name == "" || seen[mc.Name] || mc.Expression == "" {
			t.Fatalf("bad or duplicate match condition %+v", mc)
		}
		seen[mc.Name] = true
	}
}
