// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package memlimit gives the Go runtime a soft memory limit derived from the
// memory limit of the cgroup the process runs in (a container's
// resources.limits.memory). Without one, the garbage collector lets the heap
// grow to twice what is live before it collects, whatever the container's
// limit, and a process whose live heap fits the limit can still be killed by
// the kernel for memory it was only about to free. With one, it collects
// harder as the process nears the limit.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// Source says where the runtime's memory limit came from.
const (
	SourceDisabled = "disabled"   // ratio 0: left as the runtime had it
	SourceEnv      = "GOMEMLIMIT" // the environment variable, which wins
	SourceCgroup   = "cgroup"     // ratio × the cgroup's limit
	SourceNone     = "none"       // no cgroup limit found: left unset
)

// Result is what Apply did.
type Result struct {
	Source string
	// Cgroup is the cgroup's memory limit in bytes (0: none found or not
	// looked up).
	Cgroup int64
	// Limit is the runtime's soft memory limit after Apply
	// (math.MaxInt64: none).
	Limit int64
}

// Apply sets the runtime's soft memory limit to ratio × the memory limit of
// this process's cgroup, unless ratio is 0 or GOMEMLIMIT is set (the runtime
// has then applied it already). It changes nothing when no limit is found.
func Apply(ratio float64) (Result, error) {
	return apply(ratio, os.Getenv("GOMEMLIMIT"), os.DirFS("/"))
}

func apply(ratio float64, env string, root fs.FS) (Result, error) {
	current := debug.SetMemoryLimit(-1)
	switch {
	case ratio < 0 || ratio > 1:
		return Result{Limit: current}, fmt.Errorf("memory limit ratio %v is not between 0 and 1", ratio)
	case ratio == 0:
		return Result{Source: SourceDisabled, Limit: current}, nil
	case env != "":
		return Result{Source: SourceEnv, Limit: current}, nil
	}
	limit, err := CgroupLimit(root)
	if err != nil {
		return Result{Limit: current}, err
	}
	if limit == 0 {
		return Result{Source: SourceNone, Limit: current}, nil
	}
	set := int64(float64(limit) * ratio)
	debug.SetMemoryLimit(set)
	return Result{Source: SourceCgroup, Cgroup: limit, Limit: set}, nil
}

// unlimited: cgroup v1 reports "no limit" as a page-rounded MaxInt64.
const unlimited = int64(1) << 62

// CgroupLimit returns the lowest memory limit, in bytes, on the path from
// this process's cgroup up to the root of its hierarchy, in cgroup v2
// (memory.max) and v1 (memory.limit_in_bytes) alike; 0 when there is none.
// root is the file system root (os.DirFS("/")), so that tests can lay out
// /proc and /sys as they please.
func CgroupLimit(root fs.FS) (int64, error) {
	membership, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/self/cgroup: %w", err)
	}
	mountinfo, err := fs.ReadFile(root, "proc/self/mountinfo")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/self/mountinfo: %w", err)
	}
	mounts := parseMounts(mountinfo)
	var lowest int64
	for _, m := range parseMembership(membership) {
		for _, mt := range mounts {
			if !mt.serves(m) {
				continue
			}
			limit, err := mt.limit(root, m.path)
			if err != nil {
				return 0, err
			}
			if limit > 0 && (lowest == 0 || limit < lowest) {
				lowest = limit
			}
		}
	}
	return lowest, nil
}

// membership is one line of /proc/self/cgroup: v2 (no controllers) or a v1
// hierarchy with its controllers.
type membership struct {
	v2          bool
	controllers []string
	path        string
}

func parseMembership(b []byte) []membership {
	var out []membership
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			out = append(out, membership{v2: true, path: f[2]})
			continue
		}
		out = append(out, membership{controllers: strings.Split(f[1], ","), path: f[2]})
	}
	return out
}

// mount is a cgroup file system from /proc/self/mountinfo: root is the
// cgroup path mounted at point.
type mount struct {
	v2          bool
	root, point string
	options     []string
}

func parseMounts(b []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			out = append(out, mount{v2: true, root: f[3], point: f[4]})
		case "cgroup":
			out = append(out, mount{root: f[3], point: f[4], options: strings.Split(g[2], ",")})
		}
	}
	return out
}

func (mt mount) serves(m membership) bool {
	if mt.v2 || m.v2 {
		return mt.v2 && m.v2
	}
	for _, c := range m.controllers {
		if c == "memory" && slices.Contains(mt.options, "memory") {
			return true
		}
	}
	return false
}

// limit walks from the directory of cgroup path p up to the mount point and
// returns the lowest limit found (0: none).
func (mt mount) limit(root fs.FS, p string) (int64, error) {
	// Mounted below the hierarchy's root (a container's view), p is under
	// mt.root, or the process is outside what is mounted (its cgroup
	// namespace's root): start at the mount point then.
	rel := "/"
	switch {
	case mt.root == "/":
		rel = p
	case strings.HasPrefix(p, mt.root+"/"):
		rel = p[len(mt.root):]
	}
	file := "memory.limit_in_bytes"
	if mt.v2 {
		file = "memory.max"
	}
	var lowest int64
	for dir := path.Join(mt.point, rel); ; dir = path.Dir(dir) {
		v, err := readLimit(root, strings.TrimPrefix(path.Join(dir, file), "/"))
		if err != nil {
			return 0, err
		}
		if v > 0 && (lowest == 0 || v < lowest) {
			lowest = v
		}
		if dir == mt.point || dir == "/" {
			return lowest, nil
		}
	}
}

// readLimit reads one limit file: 0 when it is absent, "max" or v1's
// unlimited value.
func readLimit(root fs.FS, name string) (int64, error) {
	b, err := fs.ReadFile(root, name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading /%s: %w", name, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading /%s: %q is not a byte count", name, s)
	}
	if v >= unlimited || v <= 0 {
		return 0, nil
	}
	return v, nil
}

// Describe renders r for a log line.
func (r Result) Describe() string {
	limit := "none"
	if r.Limit != math.MaxInt64 {
		limit = strconv.FormatInt(r.Limit>>20, 10) + " MiB"
	}
	if r.Source == SourceCgroup {
		return fmt.Sprintf("%s (from the cgroup's %d MiB)", limit, r.Cgroup>>20)
	}
	return fmt.Sprintf("%s (%s)", limit, r.Source)
}
