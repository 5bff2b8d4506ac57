// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package delivery

// onMemoryFS cannot tell on this platform; the files sink then needs AllowNonTmpfs.
func onMemoryFS(string) (bool, string, error) { return false, "an unchecked filesystem", nil }
