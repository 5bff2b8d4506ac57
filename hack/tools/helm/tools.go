// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package tools pins the helm CLI, which renders and installs Keyward's chart
// (deploy/charts/keyward) and is used by the chart tests in deploy/test. It
// lives in its own module so helm's large dependency tree never reaches
// Keyward's go.mod. Build it with:
//
//	GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go build -o ../../../bin/helm helm.sh/helm/v3/cmd/helm
package tools

import _ "helm.sh/helm/v3/cmd/helm"
