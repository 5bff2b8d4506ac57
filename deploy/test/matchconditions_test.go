// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// checkMatchConditions compiles every CEL matchCondition the way the
// apiserver sees webhook objects (dynamically typed JSON) and evaluates the
// conditions of both webhooks against admission requests they must, and must
// not, be called for. All conditions of a webhook must hold for a call.
func checkMatchConditions(t *testing.T, wh *admissionregistrationv1.MutatingWebhookConfiguration) {
	t.Helper()
	env, err := cel.NewEnv(
		cel.Variable("object", cel.DynType),
		cel.Variable("oldObject", cel.DynType),
		cel.Variable("request", cel.DynType),
	)
	if err != nil {
		t.Fatalf("creating CEL environment: %v", err)
	}
	programs := map[string][]cel.Program{}
	for _, w := range wh.Webhooks {
		for _, mc := range w.MatchConditions {
			ast, iss := env.Compile(mc.Expression)
			if iss.Err() != nil {
				t.Errorf("%s: matchCondition %s does not compile: %v", w.Name, mc.Name, iss.Err())
				continue
			}
			if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
				t.Errorf("%s: matchCondition %s yields %s, want bool", w.Name, mc.Name, ast.OutputType())
			}
			prg, err := env.Program(ast)
			if err != nil {
				t.Fatalf("%s: matchCondition %s: %v", w.Name, mc.Name, err)
			}
			programs[w.Name] = append(programs[w.Name], prg)
		}
	}

	calls := func(webhookName, object, oldObject string) bool {
		t.Helper()
		vars := map[string]any{"object": decode(t, object), "oldObject": decode(t, oldObject), "request": map[string]any{}}
		for _, prg := range programs[webhookName] {
			out, _, err := prg.Eval(vars)
			if err != nil {
				// The apiserver treats an evaluation error like failurePolicy;
				// the conditions must guard every field access instead.
				t.Errorf("%s: evaluating on %s: %v", webhookName, object, err)
				return false
			}
			if out.Value() != true {
				return false
			}
		}
		return true
	}

	const tlsWithKey = `{"type":"kubernetes.io/tls","metadata":{"annotations":{"cert-manager.io/certificate-name":"demo"}},"data":{"tls.crt":"Y2VydA==","tls.key":"a2V5"}}`
	for _, tc := range []struct {
		name, object string
		want         bool
	}{
		{"cert-manager TLS Secret with key", tlsWithKey, true},
		{"redacted placeholder", `{"type":"kubernetes.io/tls","metadata":{"annotations":{"cert-manager.io/certificate-name":"demo"}},"data":{"tls.crt":"Y2VydA==","tls.key":""}}`, false},
		{"placeholder with key.der left over", `{"type":"kubernetes.io/tls","metadata":{"annotations":{"cert-manager.io/certificate-name":"demo"}},"data":{"tls.key":"","key.der":"a2V5"}}`, true},
		{"empty certificate-name annotation", `{"type":"kubernetes.io/tls","metadata":{"annotations":{"cert-manager.io/certificate-name":""}},"data":{"tls.key":"a2V5"}}`, false},
		{"placeholder with empty keystore", `{"type":"kubernetes.io/tls","metadata":{"annotations":{"cert-manager.io/certificate-name":"demo"}},"data":{"tls.key":"","keystore.p12":""}}`, false},
		{"TLS Secret not from cert-manager", `{"type":"kubernetes.io/tls","metadata":{},"data":{"tls.key":"a2V5"}}`, false},
		{"opaque Secret with annotation (refused by the handler)", `{"type":"Opaque","metadata":{"annotations":{"cert-manager.io/certificate-name":"demo"}},"data":{"tls.key":"a2V5"}}`, true},
		{"SDS reference Secret with a key", `{"type":"gateway.envoyproxy.io/sds","metadata":{"annotations":{"cert-manager.io/certificate-name":"demo"}},"data":{"tls.key":"a2V5","url":"dW5peDovLy94","secretName":"YS9i"}}`, true},
		{"opaque Secret without annotation", `{"type":"Opaque","metadata":{},"data":{"tls.key":"a2V5"}}`, false},
		{"Secret without type or data", `{"metadata":{"annotations":{"cert-manager.io/certificate-name":"demo"}}}`, false},
	} {
		if got := calls(scrubWebhook, tc.object, "{}"); got != tc.want {
			t.Errorf("%s called for %s = %v, want %v", scrubWebhook, tc.name, got, tc.want)
		}
	}

	const (
		ready           = `{"type":"Ready","status":"True","reason":"Ready"}`
		notReadyNoKey   = `{"type":"Ready","status":"False","reason":"MissingData"}`
		notReadyNew     = `{"type":"Ready","status":"False","reason":"DoesNotExist"}`
		notReadyPair    = `{"type":"Ready","status":"False","reason":"InvalidKeyPair"}`
		issuingNoKey    = `{"type":"Issuing","status":"True","reason":"MissingData"}`
		issuingMismat   = `{"type":"Issuing","status":"True","reason":"SecretMismatch"}`
		issuingManual   = `{"type":"Issuing","status":"True","reason":"ManuallyTriggered"}`
		issuingNew      = `{"type":"Issuing","status":"True","reason":"DoesNotExist"}`
		issuingRenew    = `{"type":"Issuing","status":"True","reason":"Renewing"}`
		notIssuing      = `{"type":"Issuing","status":"False","reason":"Done"}`
		issuingNoReason = `{"type":"Issuing","status":"True"}`
		certWithout     = `{"metadata":{"name":"demo"},"spec":{}}`
	)
	cert := func(conds ...string) string {
		return `{"metadata":{"name":"demo"},"status":{"conditions":[` + strings.Join(conds, ",") + `]}}`
	}
	for _, tc := range []struct {
		name, object, old string
		want              bool
	}{
		{"Issuing for missing data", cert(ready, issuingNoKey), cert(ready), true},
		{"Issuing for key mismatch", cert(ready, issuingMismat), cert(ready), true},
		{"Issuing, old had no status", cert(issuingNoKey), certWithout, true},
		{"Issuing already set", cert(ready, issuingNoKey), cert(ready, issuingRenew), false},
		{"manual renewal", cert(ready, issuingManual), cert(ready), false},
		{"renewal with its own reason", cert(ready, issuingRenew), cert(ready), false},
		{"Issuing without reason", cert(ready, issuingNoReason), cert(ready), false},
		{"Issuing False", cert(ready, notIssuing), cert(ready), false},
		{"Ready turns False for missing data", cert(notReadyNoKey), cert(ready), true},
		{"Ready False, reason changes to InvalidKeyPair", cert(notReadyPair), cert(notReadyNoKey), true},
		{"Ready False for missing data again (re-decided on every write)", cert(notReadyNoKey), cert(notReadyNoKey), true},
		{"new Certificate not ready yet", cert(notReadyNew), certWithout, false},
		{"issuance of a Secret cert-manager's cache lacks", cert(notReadyNew, issuingNew), cert(notReadyNew), true},
		{"issuance ends, not Ready yet", cert(notReadyNew), cert(notReadyNew, issuingNew), true},
		{"issuance ends Ready", cert(ready), cert(ready, issuingRenew), false},
		{"issuance fails", cert(notReadyNew, notIssuing), cert(notReadyNew, issuingNew), false},
		{"Ready stays True", cert(ready), cert(ready), false},
		{"no status", certWithout, certWithout, false},
	} {
		if got := calls(guardWebhook, tc.object, tc.old); got != tc.want {
			t.Errorf("%s called for %s = %v, want %v", guardWebhook, tc.name, got, tc.want)
		}
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test object %s: %v", s, err)
	}
	return v
}
