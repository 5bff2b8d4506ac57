// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package gateway holds what the API-gateway sinks (delivery/apisix and
// delivery/kong) share: how they keep key material and credentials out of
// the messages a gateway's Admin API sends back, how they read the Admin
// API credential from a mounted file, what identifies a delivered bundle,
// and the defaulting of their options.
package gateway

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keyward-io/keyward/delivery"
)

// maxMessageLength bounds a gateway message kept in an error.
const maxMessageLength = 512

// Redact returns msg, a message a gateway's Admin API sent back, safe to put
// in an error: withheld whole if it quotes a PEM private key (schema errors
// may quote the value they reject), with every non-empty secret replaced by
// "[redacted]", and cut to 512 bytes (then ending in "…").
func Redact(msg string, secrets ...[]byte) string {
	if strings.Contains(msg, "PRIVATE KEY") {
		return "[message withheld: it quotes key material]"
	}
	for _, s := range secrets {
		if len(s) > 0 {
			msg = strings.ReplaceAll(msg, string(s), "[redacted]")
		}
	}
	if len(msg) > maxMessageLength {
		msg = msg[:maxMessageLength] + "…"
	}
	return msg
}

// ReadSecretFile returns the content of the file at path without leading
// and trailing white space, and an error if it cannot be read or holds
// nothing else. what names the secret in errors ("admin key": "reading
// admin key file: …", "admin key file <path> is empty"); the errors never
// quote the content.
func ReadSecretFile(path, what string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s file: %w", what, err)
	}
	secret := strings.TrimSpace(string(raw))
	if secret == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	return secret, nil
}

// Revision identifies a delivered bundle; sinks compare it to skip sending
// what a gateway already has. The version alone is not enough: custody
// versions restart at 1 when a custody mount is rebuilt after a disaster,
// with new keys.
type Revision struct {
	version           int
	keySHA256, serial string
}

// RevisionOf returns the revision of b.
func RevisionOf(b *delivery.Bundle) Revision {
	return Revision{version: b.Version, keySHA256: b.KeySHA256, serial: b.Serial}
}

// Or returns s, or def when s is empty.
func Or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// OrDuration returns d, or def when d is zero.
func OrDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
