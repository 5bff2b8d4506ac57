// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"fmt"
	"syscall"
)

// Filesystem magic numbers from statfs(2).
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

// onMemoryFS reports whether dir is on tmpfs or ramfs, and names its filesystem type.
func onMemoryFS(dir string) (bool, string, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false, "", err
	}
	switch uint64(st.Type) {
	case tmpfsMagic:
		return true, "tmpfs", nil
	case ramfsMagic:
		return true, "ramfs", nil
	}
	return false, fmt.Sprintf("filesystem type 0x%x", uint64(st.Type)), nil
}
