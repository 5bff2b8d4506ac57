// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// memCgroup is a memory cgroup the scale phase's keyward process runs in,
// limited like the chart's container (resources.limits.memory), so that the
// process sets its Go memory limit from it as it would in a pod.
type memCgroup struct {
	dir string
	v2  bool
}

// newMemCgroup creates a memory cgroup limited to limit bytes: under the
// cgroup v1 memory hierarchy when there is one, else under the v2 root.
// It needs root (or a delegated hierarchy).
func newMemCgroup(limit int64) (*memCgroup, error) {
	name := fmt.Sprintf("keyward-bench-%d", os.Getpid())
	var errs []error
	for _, c := range []memCgroup{
		{dir: filepath.Join("/sys/fs/cgroup/memory", name)},
		{dir: filepath.Join("/sys/fs/cgroup", name), v2: true},
	} {
		if _, err := os.Stat(filepath.Dir(c.dir)); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Mkdir(c.dir, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		file := "memory.limit_in_bytes"
		if c.v2 {
			file = "memory.max"
		}
		if err := os.WriteFile(filepath.Join(c.dir, file), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
			errs = append(errs, err)
			_ = os.Remove(c.dir)
			continue
		}
		return &c, nil
	}
	return nil, fmt.Errorf("no memory cgroup could be created: %w", errors.Join(errs...))
}

func (c *memCgroup) describe() string {
	if c.v2 {
		return "cgroup v2 " + c.dir
	}
	return "cgroup v1 " + c.dir
}

// peak is the cgroup's highest memory use (the process's anonymous memory
// and the page cache charged to it), in bytes.
func (c *memCgroup) peak() (int64, error) {
	file := "memory.max_usage_in_bytes"
	if c.v2 {
		file = "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// remove deletes the cgroup once no process is left in it.
func (c *memCgroup) remove() error { return os.Remove(c.dir) }
