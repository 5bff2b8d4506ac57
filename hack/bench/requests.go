// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// apiRequests reads kube-apiserver's apiserver_request_total counter, summed
// by "VERB resource[/subresource]" over codes and scopes. The counter covers
// every client (cert-manager, Keyward, the harness), so an arm's delta is
// the whole API traffic its issuance caused.
func (b *bench) apiRequests(ctx context.Context) (map[string]float64, error) {
	raw, err := b.kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading kube-apiserver /metrics: %w", err)
	}
	return parseRequestTotals(raw), nil
}

func parseRequestTotals(raw []byte) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndex(line, "}")
		if end < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(line[len("apiserver_request_total{"):end], ",") {
			k, val, ok := strings.Cut(kv, "=")
			if ok {
				labels[k] = strings.Trim(val, `"`)
			}
		}
		key := labels["verb"] + " " + labels["resource"]
		if s := labels["subresource"]; s != "" {
			key += "/" + s
		}
		out[key] += v
	}
	return out
}

func requestDelta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if x := v - before[k]; x > 0 {
			d[k] = x
		}
	}
	return d
}

// requestRow is one line of the per-Certificate request comparison.
type requestRow struct {
	Key  string
	A, B float64 // requests per Certificate
}

// compareRequests lists request kinds by how many more per Certificate arm
// b made than arm a, largest first, and the totals.
func compareRequests(a, b map[string]float64, n int) (rows []requestRow, totalA, totalB float64) {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		r := requestRow{Key: k, A: a[k] / float64(n), B: b[k] / float64(n)}
		totalA += r.A
		totalB += r.B
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		di, dj := math.Abs(rows[i].B-rows[i].A), math.Abs(rows[j].B-rows[j].A)
		if di != dj {
			return di > dj
		}
		return rows[i].Key < rows[j].Key
	})
	return rows, totalA, totalB
}
