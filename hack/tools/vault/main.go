// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Command vault is the stock Vault server CLI, built from the pinned module so
// tests and the demo never download a binary.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
