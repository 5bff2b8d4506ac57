// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package gcpsm keeps custody records in Google Cloud Secret Manager: Store
// writes records and reads their metadata (the custody writer's and the
// guard's side), Reader reads one version with the key (a delivery agent's
// side). Secret Manager's errors become the custody contract's
// (custody.ErrNotFound, custody.ErrConflict) here and nowhere else.
//
// # Names
//
// A record <namespace>/<secret> under the prefix "<prefix>[/<cluster>]" is
// the secret
//
//	projects/<project>/secrets/<prefix>_<cluster>_<namespace>_<escaped secret>
//
// Secret IDs allow [A-Za-z0-9_-] and 255 characters. Prefix segments,
// cluster and namespace are DNS-1123 labels (no '_', no '.'), so '_'
// separates them; a Secret name is a DNS-1123 subdomain, whose only
// character a secret ID lacks is '.', escaped as "__" (a DNS subdomain
// never has two dots in a row, nor one at either end, so the escape is
// unambiguous). The mapping is reversible (RecordName) and keeps the
// namespace readable as an ID prefix, which is what an IAM condition on
// resource.name can match: an agent is granted
// secretmanager.versions.access on "…/secrets/tls_prod_shop_" and nothing
// else (deploy/gcp). When the escaped ID would pass 255 characters (secret
// names can have 253), the secret part becomes "_" followed by the SHA-256
// of the secret name in hex (an escaped name never starts with '_'), still
// after the readable namespace prefix; the full name is then in the
// secret's annotation keyward-record and in every version's payload, which
// Metadata and Reader check, so a hash collision is an error, never another
// record's key.
//
// # Versions
//
// Secret Manager numbers a secret's versions 1, 2, 3 … and never reuses a
// number, even for a destroyed version: the record's version is the
// secret's version number. Deleting the record deletes the secret; a record
// written again after that starts at 1 again, as a Vault KV v2 key does
// after `vault kv metadata delete`. A version's payload is the record
// framed by custody/internal/payload (name, write time, key, certificate,
// CA), at most 64 KiB (MaxRecordBytes of key+certificate+CA, checked
// before any call). The current version is the newest one; when it is
// disabled or destroyed the record counts as absent (ErrNotFound).
//
// # Metadata
//
// The record's public description is in the secret's annotations (they
// hold up to 16 KiB, where labels allow 63 lower-case characters a value),
// readable with secretmanager.secrets.get; the current version number and
// state with secretmanager.versions.get on the "latest" alias (documented as
// the most recently created version, whatever its state; no list order is
// relied on). Neither gives secretmanager.versions.access.
// Annotations belong to the secret, not to a version, so they name the
// version they describe (keyward-version). A write is two calls,
// AddSecretVersion then UpdateSecret: between them (or if the writer dies
// there), the newest version is not the annotated one and Metadata reports
// Torn with the newest version, as the Vault store does.
//
// # Check-and-set
//
// AddSecretVersion takes no precondition; UpdateSecret takes the secret's
// etag. Put therefore takes a lease: it reads the secret (etag, current
// version), checks cas against the current version, and writes the
// annotation keyward-pending (its start time) with that etag; only then
// does it add the version, and it writes the new metadata with the etag the
// lease returned, removing the lease. Two Keyward writers that read the
// same etag cannot both take the lease (the second gets FAILED_PRECONDITION,
// reported as custody.ErrConflict); a writer that finds a live lease gets
// custody.ErrConflict too. A write that fails before adding its version
// restores the annotations it replaced, releasing the lease. Residual races, why this is CASBestEffort and not
// strict: a lease older than LeaseTTL is taken over (its writer died, or
// stalled past its own Timeout: if such a writer's AddSecretVersion still
// lands, Metadata reports Torn until the next write), writers' clocks are
// assumed within LeaseTTL-Timeout of each other, and anything that adds a
// version outside Keyward (gcloud) is not serialised at all.
//
// # Listing
//
// Store.List (custody.Lister, for the custody audit) is ListSecrets on the
// project with the filter name:<prefix>_<cluster>_<namespace>_ (a
// substring match), following page tokens. Each secret ID is mapped back
// and kept only if it is a record of exactly that namespace (a namespace
// has no '_', so "shop_" never matches "shop-eu", and the check also drops
// a longer prefix that merely contains the filter); a hashed ID's name
// comes from its keyward-record annotation, checked against the hash. It
// needs secretmanager.secrets.list, which IAM checks on the project, not
// on secrets: a condition on the secret-name prefix cannot narrow it, and
// it shows every secret's labels and annotations (never a payload). Only
// the custody writer is granted it (deploy/gcp).
//
// # Limits, retries, authentication
//
// Every Store or Reader call is bounded by Options.Timeout. RESOURCE_EXHAUSTED
// (quota) is retried with backoff at most MaxAttempts times in all, then
// returned as a clear error; reads also retry UNAVAILABLE. Errors carry
// Secret Manager's code and message (which name resources, never payloads).
// Versions older than the newest MaxVersions are destroyed after each
// write. Authentication is the client library's default (Application
// Default Credentials: GKE Workload Identity on a pod), never a key file
// unless Options.ClientOptions say so.
package gcpsm
