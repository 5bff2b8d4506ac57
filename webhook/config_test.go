// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"testing"

	"github.com/google/cel-go/cel"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
)

// TestSecretScrubMatchConditions evaluates the CEL conditions the way the
// apiserver does for an unstructured object: all must be true to call us.
func TestSecretScrubMatchConditions(t *testing.T) {
	t.Parallel()
	env, err := cel.NewEnv(cel.Variable("object", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	var progs []cel.Program
	for _, mc := range SecretScrubMatchConditions() {
		ast, iss := env.Compile(mc.Expression)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", mc.Name, iss.Err())
		}
		p, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		progs = append(progs, p)
	}
	ann := map[string]any{"cert-manager.io/certificate-name": "web"}
	tests := []struct {
		name   string
		object map[string]any
		want   bool
	}{
		{"key-bearing tls secret", map[string]any{"type": "kubernetes.io/tls", "metadata": map[string]any{"annotations": ann}, "data": map[string]any{"tls.key": "LS0t", "tls.crt": "LS0t"}}, true},
		{"only key.der", map[string]any{"type": "kubernetes.io/tls", "metadata": map[string]any{"annotations": ann}, "data": map[string]any{"tls.key": "", "key.der": "MAA="}}, true},
		{"placeholder", map[string]any{"type": "kubernetes.io/tls", "metadata": map[string]any{"annotations": ann}, "data": map[string]any{"tls.key": "", "tls.crt": "LS0t"}}, false},
		{"no data", map[string]any{"type": "kubernetes.io/tls", "metadata": map[string]any{"annotations": ann}}, false},
		{"no tls.key entry", map[string]any{"type": "kubernetes.io/tls", "metadata": map[string]any{"annotations": ann}, "data": map[string]any{"tls.crt": "LS0t"}}, false},
		{"no annotations", map[string]any{"type": "kubernetes.io/tls", "metadata": map[string]any{}, "data": map[string]any{"tls.key": "LS0t"}}, false},
		{"empty certificate-name", map[string]any{"type": "kubernetes.io/tls", "metadata": map[string]any{"annotations": map[string]any{"cert-manager.io/certificate-name": ""}}, "data": map[string]any{"tls.key": "LS0t"}}, false},
		{"opaque with key (refused by the handler)", map[string]any{"type": "Opaque", "metadata": map[string]any{"annotations": ann}, "data": map[string]any{"tls.key": "LS0t"}}, true},
		{"sds reference with key", map[string]any{"type": "gateway.envoyproxy.io/sds", "metadata": map[string]any{"annotations": ann}, "data": map[string]any{"tls.key": "LS0t"}}, true},
		{"other type with key", map[string]any{"type": "example.com/other", "metadata": map[string]any{"annotations": ann}, "data": map[string]any{"tls.key": "LS0t"}}, false},
		{"no type", map[string]any{"metadata": map[string]any{"annotations": ann}, "data": map[string]any{"tls.key": "LS0t"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := true
			for i, p := range progs {
				v, _, err := p.Eval(map[string]any{"object": tc.object})
				if err != nil {
					t.Fatalf("condition %d: %v", i, err)
				}
				got = got && v.Value().(bool)
			}
			if got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMutatingWebhookConfiguration(t *testing.T) {
	t.Parallel()
	ignore := admissionregistrationv1.Ignore
	cfg := MutatingWebhookConfiguration(ConfigOptions{
		Service:             &admissionregistrationv1.ServiceReference{Namespace: "keyward", Name: "keyward-webhook", Port: ptr.To(int32(443))},
		CABundle:            []byte("ca"),
		SecretFailurePolicy: &ignore,
		GuardTimeoutSeconds: 3,
	})
	if cfg.Name != "keyward" || len(cfg.Webhooks) != 2 {
		t.Fatalf("name %q, %d webhooks", cfg.Name, len(cfg.Webhooks))
	}
	sec, guard := cfg.Webhooks[0], cfg.Webhooks[1]
	if *sec.ClientConfig.Service.Path != SecretScrubPath || *guard.ClientConfig.Service.Path != GuardPath {
		t.Errorf("paths %q %q", *sec.ClientConfig.Service.Path, *guard.ClientConfig.Service.Path)
	}
	if sec.ClientConfig.Service.Name != "keyward-webhook" || string(sec.ClientConfig.CABundle) != "ca" {
		t.Errorf("client config %+v", sec.ClientConfig)
	}
	if *sec.FailurePolicy != admissionregistrationv1.Ignore || *guard.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failure policies %s %s", *sec.FailurePolicy, *guard.FailurePolicy)
	}
	if *sec.TimeoutSeconds != 10 || *guard.TimeoutSeconds != 3 {
		t.Errorf("timeouts %d %d", *sec.TimeoutSeconds, *guard.TimeoutSeconds)
	}
	if *sec.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun {
		t.Errorf("scrub side effects %s", *sec.SideEffects)
	}
	wantSel := metav1.LabelSelector{MatchLabels: map[string]string{"keyward.io/custody": "enabled"}}
	if sec.NamespaceSelector.String() != wantSel.String() || guard.NamespaceSelector.String() != wantSel.String() {
		t.Errorf("namespace selectors %v %v", sec.NamespaceSelector, guard.NamespaceSelector)
	}
	r := sec.Rules[0]
	if r.Resources[0] != "secrets" || len(r.Operations) != 2 {
		t.Errorf("scrub rule %+v", r)
	}
	g := guard.Rules[0]
	if g.APIGroups[0] != "cert-manager.io" || g.Resources[0] != "certificates/status" || g.Operations[0] != admissionregistrationv1.Update {
		t.Errorf("guard rule %+v", g)
	}

	byURL := MutatingWebhookConfiguration(ConfigOptions{URL: "https://127.0.0.1:9443/"})
	if *byURL.Webhooks[0].ClientConfig.URL != "https://127.0.0.1:9443"+SecretScrubPath || byURL.Webhooks[0].ClientConfig.Service != nil {
		t.Errorf("url config %+v", byURL.Webhooks[0].ClientConfig)
	}
}

func TestMutatingWebhookConfigurationAdoption(t *testing.T) {
	t.Parallel()
	cfg := MutatingWebhookConfiguration(ConfigOptions{URL: "https://127.0.0.1:9443", Adoption: true})
	if len(cfg.Webhooks) != 3 || cfg.Webhooks[2].Name != AdoptWebhookName {
		t.Fatalf("want the adoption webhook third, got %d webhooks", len(cfg.Webhooks))
	}
	w := cfg.Webhooks[2]
	if *w.ClientConfig.URL != "https://127.0.0.1:9443"+AdoptPath || *w.FailurePolicy != admissionregistrationv1.Fail ||
		*w.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun {
		t.Errorf("adoption webhook %+v", w)
	}
	if r := w.Rules[0]; r.Resources[0] != "certificates" || len(r.Operations) != 1 || r.Operations[0] != admissionregistrationv1.Create {
		t.Errorf("adoption rule %+v", r)
	}
	sel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Matches(labels.Set{"keyward.io/custody": "enabled"}) || !sel.Matches(labels.Set{"keyward.io/custody": "enabled", "keyward.io/adopt-from-cluster": "east"}) ||
		sel.Matches(labels.Set{"keyward.io/adopt-from-cluster": "east"}) {
		t.Errorf("adoption namespaceSelector %q: want custody namespaces with the adoption label only", sel)
	}
	// The other two keep the plain custody selector.
	if len(cfg.Webhooks[0].NamespaceSelector.MatchExpressions) != 0 {
		t.Errorf("the adoption label leaked into the scrub webhook's selector")
	}
}
