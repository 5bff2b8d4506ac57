// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Command etcd is the stock etcd server, built from the pinned module so tests
// and the demo never download a binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
