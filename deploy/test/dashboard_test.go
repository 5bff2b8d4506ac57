// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package deploytest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource *datasource     `json:"datasource"`
	GridPos    *map[string]int `json:"gridPos"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaVars replaces Grafana's built-in variables with values PromQL
// accepts; label-matcher variables such as $namespace sit inside quotes
// and parse as they are.
func grafanaVars() *strings.Replacer {
	return strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "6h")
}

func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "keyward-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard needs a title and a stable uid")
	}
	hasDSVar := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" {
			hasDSVar = true
		}
	}
	if !hasDSVar {
		t.Errorf("dashboard has no datasource variable; panels would be bound to one Prometheus")
	}

	p := parser.NewParser(parser.Options{})
	known := KnownMetrics()
	used := map[string]bool{}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, pn := range ps {
			if ids[pn.ID] || pn.ID == 0 {
				t.Errorf("panel %q: id %d is zero or repeated", pn.Title, pn.ID)
			}
			ids[pn.ID] = true
			if pn.GridPos == nil || pn.Title == "" {
				t.Errorf("panel %d needs a title and gridPos", pn.ID)
			}
			walk(pn.Panels)
			if pn.Type == "row" {
				continue
			}
			if pn.Datasource == nil || pn.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the ${datasource} variable", pn.Title)
			}
			if len(pn.Targets) == 0 {
				t.Errorf("panel %q has no queries", pn.Title)
			}
			for _, tg := range pn.Targets {
				expr, err := p.ParseExpr(grafanaVars().Replace(tg.Expr))
				if err != nil {
					t.Errorf("panel %q query %s does not parse: %v\n%s", pn.Title, tg.RefID, err, tg.Expr)
					continue
				}
				for _, name := range metricNames(expr) {
					used[name] = true
					if _, ok := known[name]; !ok {
						t.Errorf("panel %q uses metric %s, which is not in KnownMetrics", pn.Title, name)
					}
				}
			}
		}
	}
	walk(d.Panels)

	// What the dashboard promises to show.
	for _, m := range []string{
		"keyward_issuer_sign_total",
		"keyward_issuer_sign_duration_seconds",
		"keyward_scrub_duration_seconds",
		"keyward_key_exposure_seconds",
		"keyward_next_private_key_lifetime_seconds",
		"keyward_custody_write_errors_total",
		"keyward_guard_decisions_total",
		"certmanager_certificate_expiration_timestamp_seconds",
		"keyward_agent_delivery_failures_total",
		"keyward_agent_delivery_latency_seconds",
		"keyward_agent_certificate_expiry_seconds",
	} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}
