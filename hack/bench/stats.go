// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// median is the median of xs (the mean of the middle two for an even
// count); false when xs is empty.
func median(xs []float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	r := slices.Clone(xs)
	slices.Sort(r)
	if len(r)%2 == 1 {
		return r[len(r)/2], true
	}
	return (r[len(r)/2-1] + r[len(r)/2]) / 2, true
}

// sample is a set of measured durations.
type sample []time.Duration

// summary is what the report prints for one sample.
type summary struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
	Mean                    time.Duration
}

// quantile is the nearest-rank quantile of a sample (q in [0,1]); nearest rank
// so that every reported figure is one that was actually measured.
func (s sample) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := append(sample(nil), s...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func (s sample) summary() summary {
	if len(s) == 0 {
		return summary{}
	}
	var total time.Duration
	for _, d := range s {
		total += d
	}
	return summary{
		N: len(s), Min: s.quantile(0), P50: s.quantile(0.5), P90: s.quantile(0.9),
		P99: s.quantile(0.99), Max: s.quantile(1), Mean: total / time.Duration(len(s)),
	}
}

// raw renders the sorted sample in milliseconds, for the report's raw figures.
func (s sample) raw() string {
	sorted := append(sample(nil), s...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	parts := make([]string, len(sorted))
	for i, d := range sorted {
		parts[i] = fmt.Sprintf("%.1f", ms(d))
	}
	return strings.Join(parts, " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtD prints a duration in milliseconds with sensible precision.
func fmtD(d time.Duration) string {
	m := ms(d)
	switch {
	case m >= 1000:
		return fmt.Sprintf("%.2f s", m/1000)
	case m >= 10:
		return fmt.Sprintf("%.0f ms", m)
	default:
		return fmt.Sprintf("%.2f ms", m)
	}
}

// histogram is a snapshot of one Prometheus histogram series: cumulative
// bucket counts by upper bound, plus count and sum.
type histogram struct {
	Bounds []float64
	Counts []uint64 // cumulative, same length as Bounds
	Count  uint64
	Sum    float64
}

// gatherHistogram reads the series of a histogram family whose labels include
// all of want (nil: the unlabelled series or the sum of all series).
func gatherHistogram(reg prometheus.Gatherer, name string, want map[string]string) (histogram, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return histogram{}, fmt.Errorf("gathering metrics: %w", err)
	}
	var h histogram
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m.GetLabel(), want) || m.GetHistogram() == nil {
				continue
			}
			ph := m.GetHistogram()
			if h.Bounds == nil {
				for _, b := range ph.GetBucket() {
					h.Bounds = append(h.Bounds, b.GetUpperBound())
				}
				h.Counts = make([]uint64, len(h.Bounds))
			}
			for i, b := range ph.GetBucket() {
				if i < len(h.Counts) {
					h.Counts[i] += b.GetCumulativeCount()
				}
			}
			h.Count += ph.GetSampleCount()
			h.Sum += ph.GetSampleSum()
		}
	}
	return h, nil
}

// gatherCounter sums the series of a counter family whose labels include want.
func gatherCounter(reg prometheus.Gatherer, name string, want map[string]string) (float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, fmt.Errorf("gathering metrics: %w", err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m.GetLabel(), want) && m.GetCounter() != nil {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v, nil
}

func labelsMatch(have []*dto.LabelPair, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range have {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// minus is the histogram of the observations made between before and h.
func (h histogram) minus(before histogram) histogram {
	d := histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts)), Count: h.Count - before.Count, Sum: h.Sum - before.Sum}
	for i := range h.Counts {
		d.Counts[i] = h.Counts[i]
		if i < len(before.Counts) {
			d.Counts[i] -= before.Counts[i]
		}
	}
	return d
}

// quantile estimates a quantile the way PromQL's histogram_quantile does:
// linear interpolation inside the bucket that holds the rank. Observations
// above the last bound report the last bound (a lower limit; see
// aboveLastBound).
func (h histogram) quantile(q float64) (time.Duration, bool) {
	if h.Count == 0 || len(h.Bounds) == 0 {
		return 0, false
	}
	rank := q * float64(h.Count)
	lower, prev := 0.0, uint64(0)
	for i, ub := range h.Bounds {
		c := h.Counts[i]
		if float64(c) >= rank {
			inBucket := float64(c - prev)
			frac := 1.0
			if inBucket > 0 {
				frac = (rank - float64(prev)) / inBucket
			}
			return time.Duration((lower + (ub-lower)*frac) * float64(time.Second)), true
		}
		lower, prev = ub, c
	}
	return time.Duration(h.Bounds[len(h.Bounds)-1] * float64(time.Second)), true
}

func (h histogram) mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return time.Duration(h.Sum / float64(h.Count) * float64(time.Second))
}

// describe renders count, mean, p50 and p99 of a histogram delta.
func (h histogram) describe() string {
	if h.Count == 0 {
		return "no observations"
	}
	p50, _ := h.quantile(0.5)
	p99, _ := h.quantile(0.99)
	return fmt.Sprintf("n=%d, mean %s, p50 ≈ %s, p99 ≈ %s (bucket-interpolated)", h.Count, fmtD(h.mean()), fmtD(p50), fmtD(p99))
}
