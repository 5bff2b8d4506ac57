// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package awssm keeps custody records in AWS Secrets Manager: Store writes
// records and reads their metadata (the custody writer's and the guard's
// side), Reader reads one version with the key (a delivery agent's side).
// Secrets Manager's errors become the custody contract's
// (custody.ErrNotFound, custody.ErrConflict) here and nowhere else.
//
// # Names
//
// The record of Secret <namespace>/<secret> under the prefix
// "<prefix>[/<cluster>]" (custody.ClusterPrefix) is the secret named
//
//	<prefix>[/<cluster>]/<namespace>/<secret>
//
// Secret names allow [A-Za-z0-9/_+=.@-] and 512 characters. A namespace is
// a DNS-1123 label ([a-z0-9-], 63) and a Secret name a DNS-1123 subdomain
// ([a-z0-9.-], 253): every character is legal as it is, and neither has a
// '/', so the name is the path itself, reversible by splitting after the
// prefix (ParsePath) and collision-free; the prefix may then have at most
// 512-63-253-2 = 194 characters (MaxPrefixLength). Store.Path returns this
// name, which is what the placeholder's keyward.io/custody-path records
// and what `aws secretsmanager describe-secret --secret-id` takes. Keyward
// always passes the full name, never a partial ARN, so AWS's caveat about
// names ending in a dash and six characters (read as the ARN's random
// suffix in partial ARNs) does not apply; IAM policies match the ARN with
// "<name prefix>*" (deploy/aws).
//
// # Versions
//
// custody.Metadata.Version is an integer; Secrets Manager identifies a
// version by its VersionId, which is the ClientRequestToken of the write
// that created it. Version N of a record is written with the deterministic
// token "keyward-v" followed by N in 23 digits (VersionID), and with the
// staging labels AWSCURRENT and "v<N>" (VersionLabel) in the same
// PutSecretValue call. So:
//
//   - the current N is read from DescribeSecret's VersionIdsToStages: the
//     version holding AWSCURRENT, its id parsed back to N;
//   - Reader.Read(N) is GetSecretValue with VersionStage "v<N>" (checking
//     the returned VersionId is VersionID(N)), which needs no permission but
//     secretsmanager:GetSecretValue;
//   - versions are bounded: after each write Put removes the label
//     "v<K>" from versions K <= N-MaxVersions; Secrets Manager treats a
//     version without labels as deprecated and drops it (beyond 100
//     versions), and Read(K) is ErrNotFound from then on, as for a version
//     KV v2 pruned. MaxVersions is at most MaxVersionsLimit (10) because a
//     secret holds at most 20 staging labels (AWSCURRENT, AWSPREVIOUS and
//     the "v<N>" labels, with room for a writer that died before pruning).
//
// Deleting the record deletes the secret; a record written again afterwards
// is a new secret whose versions start at 1 again, as a KV v2 key does
// after `vault kv metadata delete`.
//
// # Payload and limits
//
// A version's SecretBinary is the record framed by custody/internal/payload
// (record name, write time, key, certificate, CA). SecretBinary holds at most
// 65,536 bytes, so a record's key+certificate+CA may have MaxRecordBytes;
// Put refuses a larger record before any call. A TLS record is a few KiB.
//
// # Metadata
//
// The record's public description is in the secret's tags, which
// DescribeSecret returns without secretsmanager:GetSecretValue (the guard's
// policy has DescribeSecret only): keyward:namespace, keyward:name,
// keyward:version (the version the other tags describe),
// keyward:certificate, keyward:issuer-name, keyward:issuer-kind,
// keyward:issuer-group, keyward:serial, keyward:not-before,
// keyward:not-after (RFC 3339) and keyward:key-sha256: 11 of the 50 tags a
// secret may have. A tag value holds 256 characters, enough for every field
// (Kubernetes names have 253); Put refuses a longer value before any call.
//
// # Check-and-set
//
// Secrets Manager has no conditional write. Put reads the current version N
// (DescribeSecret), refuses a cas other than N with custody.ErrConflict, and
// writes version N+1 with the token VersionID(N+1). The token is the
// precondition: Secrets Manager creates a version for a token once, and
// answers a second PutSecretValue with the same token and another value
// with ResourceExistsException, which Put reports as custody.ErrConflict.
// Two writers that both read N therefore cannot both write N+1, and a
// writer whose N is stale collides with the version N+1 that already
// exists. What remains, and why the store declares CASBestEffort:
//
//   - the precondition is an idempotency token, not a version check: two
//     writers with the same cas and byte-identical payloads both succeed
//     (they wrote the same version; the payload carries the write time, so
//     this happens only for a retried request of one writer);
//   - the tags are not versioned and TagResource takes no condition: a
//     writer that stalls between its PutSecretValue (version N+1) and its
//     TagResource, while another writes N+2 and its tags, overwrites the
//     newer tags with N+1's. Metadata then reports Torn (keyward:version is
//     not the current version; never a mix of two versions' fields) until
//     the next write. TestResidualRace shows it.
//   - after a record is deleted and re-created, a writer holding a
//     cas from the old secret collides only if the new secret reached the
//     same version.
//
// With cas -1 (no check) Put retries a collision a few times against the
// new current version.
//
// # Torn writes
//
// A write is PutSecretValue (data and the version's labels, one call), then
// TagResource (metadata). Between the two, or if the writer dies there,
// AWSCURRENT is on a version the tags do not describe: Metadata returns only
// Version and Torn, as the Vault store does, and the guard retries. Put
// returns an error when its TagResource fails, so the caller never treats
// a torn write as confirmed. A new record is created without a value
// (CreateSecret with the identity tags only) and has no current version
// until its first PutSecretValue: Metadata reports it as not found.
//
// # Delete
//
// Delete calls DeleteSecret with ForceDeleteWithoutRecovery. A recovery
// window (7 to 30 days) keeps the name taken: the record could not be
// written again until the window ends, so a record deleted by mistake would
// block its own re-issue for a week. Custody needs no recovery copy: the
// record's older versions and cert-manager's re-issue are the recovery.
// A secret an operator scheduled for deletion by hand is reported as not
// found, and Put on it fails with Secrets Manager's own explanation.
//
// # Listing
//
// Store.List (custody.Lister, for the custody audit) is ListSecrets with
// the name filter "<prefix>[/<cluster>]/<namespace>/" (a case-sensitive
// prefix match), MaxResults 100, following NextToken; each name is parsed
// back and kept only if it is a record of exactly that namespace, so
// "…/team-a/" never yields a record of "team-ab" (the trailing '/' already
// excludes it; the check guards the decoding). ListSecrets leaves out
// secrets scheduled for deletion, and is eventually consistent: the audit
// confirms a placeholder missing from the list with a metadata read before
// it acts. secretsmanager:ListSecrets has no resource-level scoping; only
// the custody writer's policy grants it (deploy/aws).
//
// # Calls, retries, errors, credentials
//
// Every Store and Reader call is bounded by Options.Timeout whatever the
// caller's context allows. The SDK's standard retryer retries throttling
// (ThrottlingException), 5xx answers and connection errors with jittered
// backoff, at most Options.MaxAttempts attempts a request and without the
// client-side retry quota; then the call fails with an error naming the
// operation, the attempts and the AWS error code. Errors carry the SDK's
// message (operation, status, request ID, AWS error code and message) and
// never a request or response body, so never key material.
// Credentials come from the SDK's default chain (on EKS: IRSA or EKS Pod
// Identity web-identity tokens), never static keys unless
// Options.Credentials says so (tests). Options.Endpoint overrides the
// regional endpoint for a VPC interface endpoint (or the contract fake).
package awssm
