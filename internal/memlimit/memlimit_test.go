// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package memlimit

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
	"testing/fstest"
)

const (
	mountsV2 = "30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	// A hybrid host: v1 memory controller, an empty v2 hierarchy beside it.
	mountsHybrid = "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
		"31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n" +
		"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	// A container's view of v1: the pod's cgroup is mounted as the root.
	mountsV1Container = "34 30 0:31 /kubepods/pod1/c1 /sys/fs/cgroup/memory ro,nosuid master:15 - cgroup cgroup rw,memory\n"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestCgroupLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want int64
	}{
		{"v2 container, own cgroup namespace", fstest.MapFS{
			"proc/self/cgroup":           file("0::/\n"),
			"proc/self/mountinfo":        file(mountsV2),
			"sys/fs/cgroup/memory.max":   file("268435456\n"),
			"sys/fs/cgroup/cpu.max":      file("max 100000\n"),
			"sys/fs/cgroup/memory.peak":  file("1\n"),
			"sys/fs/cgroup/unrelated.id": file("x\n"),
		}, 256 << 20},
		{"v2 nested: the lower of the cgroup and its parent", fstest.MapFS{
			"proc/self/cgroup":                          file("0::/kubepods/pod1/c1\n"),
			"proc/self/mountinfo":                       file(mountsV2),
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": file("max\n"),
			"sys/fs/cgroup/kubepods/pod1/memory.max":    file("134217728\n"),
			"sys/fs/cgroup/kubepods/memory.max":         file("1073741824\n"),
		}, 128 << 20},
		{"v2 without any limit", fstest.MapFS{
			"proc/self/cgroup":         file("0::/user.slice\n"),
			"proc/self/mountinfo":      file(mountsV2),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0},
		{"v1 hybrid host", fstest.MapFS{
			"proc/self/cgroup":    file("4:memory:/keyward\n1:cpu:/\n0::/\n"),
			"proc/self/mountinfo": file(mountsHybrid),
			"sys/fs/cgroup/memory/keyward/memory.limit_in_bytes": file("268435456\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":         file("9223372036854771712\n"),
		}, 256 << 20},
		{"v1 unlimited", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n0::/\n"),
			"proc/self/mountinfo":                        file(mountsHybrid),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, 0},
		{"v1 container: cgroup path below the mounted root", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/kubepods/pod1/c1\n"),
			"proc/self/mountinfo":                        file(mountsV1Container),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("201326592\n"),
		}, 192 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := CgroupLimit(tc.fs)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("CgroupLimit = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCgroupLimitErrors(t *testing.T) {
	t.Parallel()
	if _, err := CgroupLimit(fstest.MapFS{}); err == nil {
		t.Error("no /proc/self/cgroup: want an error")
	}
	_, err := CgroupLimit(fstest.MapFS{
		"proc/self/cgroup":         file("0::/\n"),
		"proc/self/mountinfo":      file(mountsV2),
		"sys/fs/cgroup/memory.max": file("lots\n"),
	})
	if err == nil {
		t.Error("memory.max \"lots\": want an error")
	}
}

// TestApply changes the runtime's memory limit, which is process-wide: it
// does not run in parallel and puts the limit back.
func TestApply(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	limited := fstest.MapFS{
		"proc/self/cgroup":         file("0::/\n"),
		"proc/self/mountinfo":      file(mountsV2),
		"sys/fs/cgroup/memory.max": file("268435456\n"),
	}

	debug.SetMemoryLimit(math.MaxInt64)
	ratio := 0.9
	r, err := apply(ratio, "", limited)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(float64(256<<20) * ratio)
	if r.Source != SourceCgroup || r.Cgroup != 256<<20 || r.Limit != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("apply(0.9) = %+v, runtime limit %d; want %d from the cgroup", r, debug.SetMemoryLimit(-1), want)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	for _, tc := range []struct {
		name, env, source string
		ratio             float64
	}{
		{"ratio 0", "", SourceDisabled, 0},
		{"GOMEMLIMIT set", "100MiB", SourceEnv, 0.9},
	} {
		r, err := apply(tc.ratio, tc.env, limited)
		if err != nil || r.Source != tc.source || r.Limit != math.MaxInt64 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
			t.Errorf("%s: apply = %+v, %v, runtime limit %d; want source %s and the limit untouched", tc.name, r, err, debug.SetMemoryLimit(-1), tc.source)
		}
	}
	if r, err := apply(0.9, "", fstest.MapFS{"proc/self/cgroup": file("0::/\n"), "proc/self/mountinfo": file(mountsV2)}); err != nil || r.Source != SourceNone || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("no limit file: apply = %+v, %v; want source none and the limit untouched", r, err)
	}
	if _, err := apply(1.5, "", limited); err == nil {
		t.Error("ratio 1.5: want an error")
	}
}

// TestCgroupLimitHere reads this machine's real /proc and /sys: whatever
// the limit, the lookup itself must work on Linux.
func TestCgroupLimitHere(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Fatalf("this test needs Linux's /proc: %v", err)
	}
	if _, err := CgroupLimit(os.DirFS("/")); err != nil {
		t.Errorf("CgroupLimit on this machine: %v", err)
	}
}
