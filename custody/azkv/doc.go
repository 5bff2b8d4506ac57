// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package azkv keeps custody records in Azure Key Vault secrets: Store
// writes records and reads their metadata (the custody writer's and the
// guard's side), Reader reads one version with the key (a delivery agent's
// side). Key Vault's errors become the custody contract's
// (custody.ErrNotFound, custody.ErrConflict) here and nowhere else.
//
// # Names
//
// Key Vault secret names allow [0-9a-zA-Z-], 127 characters, and compare
// case-insensitively, so upper-case letters cannot carry meaning. The
// record "<prefix>[/<cluster>]/<namespace>/<secret>" is escaped with '-' as
// the escape character: "-" becomes "--", "." becomes "-d" and "/" becomes
// "-s" (tls/prod + shop/web.example.com → tls-sprod-sshop-sweb-dexample-dcom).
// The escape is reversible (RecordName). When the result would pass 127
// characters, the namespace and secret part becomes "-h" followed by the
// SHA-256 of "<namespace>/<secret>" in hex (tls-sprod-s-h3fa4…); the
// namespace and name are then in every version's tags (keyward-namespace,
// keyward-name) and in its value, which Metadata and Reader check, so a
// hash collision is an error, never another record's key.
//
// # Versions
//
// Key Vault version IDs are opaque 32-hex strings. Every version Keyward
// writes carries the tag keyward-version=N, N one more than the highest
// tag among the secret's versions, and that is the record's version. To
// find version N (Reader.Read) or the current one (Metadata), the store
// lists the secret's versions' properties (tags included, values never)
// and picks the tag. The current version is the highest tag; if no
// enabled version has it the record counts as absent (ErrNotFound).
// Versions cannot be deleted one by one: after each write the versions
// older than the newest MaxVersions are disabled (a disabled version's
// value cannot be read by anyone until re-enabled), and the list grows by
// one entry per write until the record is deleted.
//
// # Metadata
//
// The record's public description is in the version's tags and content
// type, readable with the data action secrets/readMetadata/action (list
// and properties) without secrets/getSecret/action (the value). Tags are
// per version and written in the same SetSecret call as the value, so a
// version's metadata is never torn from its data. Torn reports a lost
// race instead (below): two enabled versions with the current tag.
//
// # Check-and-set
//
// SetSecret takes no precondition (no etag, no If-Match). Put reads the
// current version, checks cas, writes version N+1, then lists the versions
// again: if any other version is tagged N+1 or higher, this writer lost:
// it disables its own version, moves its tag aside (keyward-superseded)
// and withdraws. Two racing writers can both withdraw, but not both win,
// provided the versions list reads its own writes; a writer that withdrew
// tries again (a few times, after a pause longer than a withdrawal takes)
// while the record is still at its cas, so that a race among writers with
// the same cas ends with one winner and custody.ErrConflict for the others.
// A withdrawn write burns its number, so record versions can have gaps.
// In the window between a loser's write and its withdrawal,
// Metadata reports Torn (two enabled versions with tag N+1) and Reader
// picks the earliest-created of them. This is CASBestEffort: the race is
// detected after the write, not prevented. A reader that asks Key Vault
// for the "latest" version (CSI driver, az CLI) may get a loser's disabled
// version: read records through Reader.
//
// # Delete, soft delete and purge
//
// Delete disables every version, deletes the secret (Key Vault keeps it
// soft-deleted for the vault's retention) and, unless Options.KeepDeleted,
// purges it so the key is gone for good. With purge protection on the
// vault the purge is refused: the record stays soft-deleted with every
// version disabled, and the next Put of that record recovers the secret
// and writes the next version (numbers keep rising) instead of failing on
// the reserved name.
//
// # Listing
//
// Store.List (custody.Lister, for the custody audit) lists the vault's
// secret properties (GET /secrets, following nextLink): Key Vault has no
// server-side name filter, so the names are decoded and only the records of
// exactly that namespace under the store's prefix are kept (the escape
// makes "tls-sprod-sshop-s" a different prefix from "tls-sprod-sshop--eu-s");
// a hashed name's namespace and name come from the tags of its newest
// version, checked against the hash. The cost grows with the vault's
// secrets, not the namespace's: keep Keyward's vault for Keyward.
// Soft-deleted secrets are not listed. Listing needs
// secrets/readMetadata/action on the vault, which the writer (and the
// guard, for version lists) already holds (deploy/azure).
//
// # Limits, retries, authentication
//
// A value holds at most 25 KiB: the record (custody/internal/payload,
// base64) allows MaxRecordBytes of key+certificate+CA, checked before any
// call. Every Store or Reader call is bounded by Options.Timeout. 429 is
// retried up to MaxRetries times honouring Retry-After (a Retry-After
// longer than MaxRetryDelay gives up at once), then returned as a clear
// error; reads also retry 408 and 5xx, writes do not (a repeated SetSecret
// would add a version). Authentication is azidentity's
// DefaultAzureCredential unless Options.Credential is set: Azure Workload
// Identity on AKS, never a stored client secret unless the environment
// provides one.
package azkv
