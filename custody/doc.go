// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package custody is Keyward's custody record contract, and nothing else:
//
//   - the labels and annotations that turn a kubernetes.io/tls Secret into a
//     placeholder naming its custody record, and ParsePlaceholder, the one
//     rule every reader (scrub webhook, watcher, guard, delivery agent) uses
//     to read them;
//   - Record and Metadata, what a custody store holds for one Secret, with
//     the record's data-field names;
//   - Store, the interface every store adapter implements (Vault KV v2 in
//     custody/vaultkv; other stores go beside it), and its error classes;
//   - the key fingerprint and serial helpers both sides compute the same way.
//
// It depends on the standard library and Kubernetes' core/v1 and meta/v1
// types only, so a program that only reads custody records (a Go server
// using package delivery) compiles no controller.
package custody
