// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package tools pins kube-apiserver so `go build k8s.io/kubernetes/cmd/kube-apiserver`
// resolves from this module's go.mod.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
