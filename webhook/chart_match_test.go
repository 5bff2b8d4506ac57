// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"os"
	"strings"
	"testing"
	"unicode"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// TestChartMatchConditionsAreTheGoOnes: the Helm chart writes the scrub and
// guard webhooks' CEL matchConditions out by hand; they must say what
// SecretScrubMatchConditions and GuardMatchConditions say (compared without
// white space, which YAML folding changes), or a chart install calls the
// webhooks for other updates than the ones the handlers are built for.
func TestChartMatchConditionsAreTheGoOnes(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../deploy/charts/keyward/templates/webhook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	chart := chartMatchConditions(t, string(raw))
	for webhookName, want := range map[string][]admissionregistrationv1.MatchCondition{
		"secret-scrub.keyward.io":  SecretScrubMatchConditions(),
		"custody-guard.keyward.io": GuardMatchConditions(),
	} {
		got := chart[webhookName]
		if len(got) != len(want) {
			t.Errorf("%s: the chart has %d matchConditions, Go %d", webhookName, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i].Name != want[i].Name || squeeze(got[i].Expression) != squeeze(want[i].Expression) {
				t.Errorf("%s: chart matchCondition %d is\n  %s: %s\nGo says\n  %s: %s",
					webhookName, i, got[i].Name, got[i].Expression, want[i].Name, want[i].Expression)
			}
		}
	}
}

func squeeze(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// chartMatchConditions reads the matchConditions of each webhook in the
// template: "- name:" entries at webhook level, then under
// "matchConditions:" each "- name:" with an "expression:" either quoted on
// one line or folded (>-) over the more indented lines after it.
func chartMatchConditions(t *testing.T, text string) map[string][]admissionregistrationv1.MatchCondition {
	t.Helper()
	out := map[string][]admissionregistrationv1.MatchCondition{}
	lines := strings.Split(text, "\n")
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	webhookName, inConditions, condIndent := "", false, 0
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "  - name: "):
			webhookName, inConditions = strings.TrimPrefix(l, "  - name: "), false
		case trimmed == "matchConditions:":
			inConditions, condIndent = true, indent(l)
		case inConditions && trimmed != "" && indent(l) <= condIndent:
			inConditions = false
		case inConditions && strings.HasPrefix(trimmed, "- name: "):
			out[webhookName] = append(out[webhookName], admissionregistrationv1.MatchCondition{Name: strings.TrimPrefix(trimmed, "- name: ")})
		case inConditions && strings.HasPrefix(trimmed, "expression: "):
			conds := out[webhookName]
			if len(conds) == 0 {
				t.Fatalf("webhook.yaml line %d: expression before any matchCondition name", i+1)
			}
			expr := strings.TrimPrefix(trimmed, "expression: ")
			if expr == ">-" {
				var parts []string
				for i+1 < len(lines) && indent(lines[i+1]) > indent(l) {
					i++
					parts = append(parts, strings.TrimSpace(lines[i]))
				}
				expr = strings.Join(parts, " ")
			} else {
				expr = strings.Trim(expr, `"`)
			}
			conds[len(conds)-1].Expression = expr
		}
	}
	return out
}
