// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package scrubber keeps TLS private keys out of the Kubernetes API: it moves
// the key of every cert-manager kubernetes.io/tls Secret in a custody
// namespace to a custody.Store (Vault KV v2) and leaves a placeholder Secret behind.
//
// Decisions this package owns:
//
//   - What moves (Plan, pure): tls.key (emptied, the Secret type requires the
//     entry); tls.crt and ca.crt stay, except in strict mode, where they move
//     too and their validity stays in annotations. Secrets whose other
//     entries hold key material (key.der, tls-combined.pem with a key,
//     keystore.jks, keystore.p12) are refused: cert-manager cannot re-derive
//     them from an emptied key and would fail or loop. Invalid input
//     (malformed or encrypted PEM, a key without a certificate, a mismatched
//     pair) is refused too, with an error naming the Secret; nothing moves.
//   - Order (Scrubber): custody write with check-and-set against the record's
//     current version first; the placeholder only once the store confirmed.
//     Dry-run requests plan (so they fail as a real request would) but
//     write nothing.
//   - Backstop (SetupWatcher): the watcher scrubs whatever the webhook missed,
//     updating the Secret with its live resourceVersion, and records the
//     exposure: scrub time minus the time of the last write of the Secret's
//     data according to managedFields (creationTimestamp when no entry
//     touched data). Those times are truncated to the second, so a sample can
//     overstate by up to a second; an earlier write of the same key followed
//     by another data write is not counted. It also measures
//     next-private-key Secrets' lifetimes.
//   - Lost records (audit): a placeholder whose custody record is missing
//     loses its custody annotations and label, once, so the guard no longer
//     vetoes and cert-manager re-issues. A placeholder that lost its markers
//     while its record still holds the key of its tls.crt gets them back.
package scrubber
