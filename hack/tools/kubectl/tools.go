// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package tools pins kubectl to the Kubernetes release the stack's
// kube-apiserver is built from, so `go build k8s.io/kubernetes/cmd/kubectl`
// resolves from this module's go.mod (`make dev` puts it in bin/).
package tools

import _ "k8s.io/kubernetes/cmd/kubectl"
