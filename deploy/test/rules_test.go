// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const runbookBase = "https://github.com/keyward-io/keyward/blob/main/docs/operations.md#"

// wantAlerts are the alerts operators are promised (docs/operations.md has a
// runbook section for each), one entry per rule: an alert with a warning and
// a critical rule is listed twice.
func wantAlerts() []string {
	return []string{
		"KeywardAgentCertificateExpiringSoon", // warning: within 7 days
		"KeywardAgentCertificateExpiringSoon", // critical: within a day
		"KeywardAgentDeliveryFailing",
		"KeywardCertificatePastRenewal",
		"KeywardCustodyWriteErrors",
		"KeywardGuardErrors",
		"KeywardIssuerNotReady",
		"KeywardKMSErrors",
		"KeywardKMSUnhealthy",
		"KeywardKeyExposed",
		"KeywardNextPrivateKeyLongLived",
		"KeywardRevocationFailing",
		"KeywardScrubLatencyHigh",
		"KeywardSignErrors",
		"KeywardTLSReferenceUnservable",
	}
}

func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(filepath.Join(root, "deploy", "prometheus", "keyward-rules.yaml"),
		false, model.LegacyValidation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	anchors := markdownAnchors(t, filepath.Join(root, "docs", "operations.md"))
	known := KnownMetrics()

	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: recording rule %q; this file holds alerts only", g.Name, r.Record)
				continue
			}
			alerts = append(alerts, r.Alert)
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: expression does not parse: %v", r.Alert, err)
				continue
			}
			for _, name := range metricNames(expr) {
				if _, ok := known[name]; !ok {
					t.Errorf("%s uses metric %s, which is not in KnownMetrics", r.Alert, name)
				}
			}
			if r.Labels["severity"] != "warning" && r.Labels["severity"] != "critical" {
				t.Errorf("%s: severity label %q, want warning or critical", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: annotation %s is missing", r.Alert, a)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
			if !ok {
				t.Errorf("%s: runbook_url %q does not point into %s", r.Alert, r.Annotations["runbook_url"], runbookBase)
			} else if !anchors[anchor] {
				t.Errorf("%s: runbook anchor #%s is not a heading in docs/operations.md", r.Alert, anchor)
			} else if anchor != strings.ToLower(r.Alert) {
				t.Errorf("%s: runbook anchor #%s is not the alert's own section", r.Alert, anchor)
			}
		}
	}
	sort.Strings(alerts)
	if got, want := strings.Join(alerts, ","), strings.Join(wantAlerts(), ","); got != want {
		t.Errorf("alerts = %s\nwant     %s", got, want)
	}
}

// TestMetricNamesExtracted guards metricNames, which the rule and dashboard
// checks rely on.
func TestMetricNamesExtracted(t *testing.T) {
	t.Parallel()
	p := parser.NewParser(parser.Options{})
	for _, tc := range []struct {
		expr string
		want string
	}{
		{`histogram_quantile(0.99, sum by (le) (rate(keyward_scrub_duration_seconds_bucket[5m])))`, "keyward_scrub_duration_seconds"},
		{`increase(keyward_custody_write_errors_total[10m]) > 0 or up`, "keyward_custody_write_errors_total,up"},
		{`{__name__="keyward_key_exposure_seconds_count"}`, "keyward_key_exposure_seconds"},
		{`count(x_sum) - count(y_count)`, "x,y"},
	} {
		expr, err := p.ParseExpr(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(metricNames(expr), ","); got != tc.want {
			t.Errorf("metricNames(%s) = %s, want %s", tc.expr, got, tc.want)
		}
	}
}

// metricNames returns the sorted metric names an expression selects, with
// the _bucket, _count and _sum suffixes of histograms removed.
func metricNames(expr parser.Expr) []string {
	seen := map[string]bool{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
		}
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			name = strings.TrimSuffix(name, suffix)
		}
		if name != "" {
			seen[name] = true
		}
		return nil
	})
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var headingRE = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)

// markdownAnchors returns the GitHub-style anchors of a Markdown file's
// headings: lower case, spaces to hyphens, punctuation other than - and _
// dropped.
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading runbooks: %v", err)
	}
	anchors := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
				b.WriteRune(r)
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}
