// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package tools pins Let's Encrypt's test ACME server, pebble, which the ACME
// e2e tests and `make demo`/`make dev` run as the ACME CA.
package tools

import _ "github.com/letsencrypt/pebble/v2/cmd/pebble"
