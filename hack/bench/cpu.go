// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTimes is the CPU time (user + system) consumed so far by this process
// and by each of its child processes (etcd, kube-apiserver, vault), by
// command name. It shows where an arm's work went, including the components
// an in-process CPU profile cannot see.
func cpuTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	if d, ok := procCPU("self"); ok {
		out["harness (cert-manager + Keyward + harness)"] = d
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, pid := range strings.Fields(string(b)) {
			comm, err := os.ReadFile(filepath.Join("/proc", pid, "comm"))
			if err != nil {
				continue
			}
			if d, ok := procCPU(pid); ok {
				out[strings.TrimSpace(string(comm))] += d
			}
		}
	}
	return out
}

func procCPU(pid string) (time.Duration, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// After ")": state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / clockTicks, true
}

// cpuDelta is after − before per component.
func cpuDelta(before, after map[string]time.Duration) map[string]time.Duration {
	d := map[string]time.Duration{}
	for k, v := range after {
		d[k] = v - before[k]
	}
	return d
}

// describeCPU renders a delta as "name 1.23 s, …", largest first.
func describeCPU(d map[string]time.Duration) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return d[keys[i]] > d[keys[j]] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.2f s", k, d[k].Seconds())
	}
	return strings.Join(parts, ", ")
}

// sumDurations is the total of a cpuTimes delta.
func sumDurations(d map[string]time.Duration) time.Duration {
	var t time.Duration
	for _, v := range d {
		t += v
	}
	return t
}

// Idle detection before a measured phase: the stack counts as idle once all
// its processes together used less than idleCPUShare of one CPU over the
// last idleWindow, sampled every idleSample.
const (
	idleCPUShare = 0.25
	idleWindow   = 2 * time.Second
	idleSample   = 500 * time.Millisecond
)

// drain is what waitIdle saw: how long the stack took to go idle and the
// CPU it used meanwhile.
type drain struct {
	Waited, CPU time.Duration
	// Reached is false when the stack was still busy at the limit.
	Reached bool
}

// waitIdle waits until the stack is idle (see idleCPUShare), at most limit.
// A phase that starts while the previous one's work is still being done
// (cert-manager's informer handlers run behind their watches, and some of
// them scan a whole namespace per event) would be charged with that work:
// arm b used to pay for the backlog arm a left in cert-manager's
// self-signed Secret handler. This samples CPU counters; it waits for no
// event of the system under test.
func waitIdle(ctx context.Context, limit time.Duration) (drain, error) {
	start := time.Now()
	first := sumCPU(cpuTimes())
	window := []time.Duration{first}
	perWindow := time.Duration(idleCPUShare * float64(idleWindow))
	need := int(idleWindow / idleSample)
	for {
		select {
		case <-ctx.Done():
			return drain{}, ctx.Err()
		case <-time.After(idleSample):
		}
		now := sumCPU(cpuTimes())
		window = append(window, now)
		if len(window) > need+1 {
			window = window[1:]
		}
		if len(window) == need+1 && window[need]-window[0] < perWindow {
			return drain{Waited: time.Since(start), CPU: now - first, Reached: true}, nil
		}
		if time.Since(start) >= limit {
			return drain{Waited: time.Since(start), CPU: now - first}, nil
		}
	}
}
