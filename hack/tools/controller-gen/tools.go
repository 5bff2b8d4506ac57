// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package tools pins controller-gen, which generates Keyward's CRDs, RBAC and
// deepcopy code (see hack/generate.sh). It lives in its own module so the
// generator's dependencies never leak into Keyward's go.mod.
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
