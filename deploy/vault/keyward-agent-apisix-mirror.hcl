# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Opt-in, only for the keyward agent's apisix sink in secret-ref mode
# (--apisix-mode secret-ref, --apisix-mirror-mount apisix-mirror): given in
# addition to keyward-agent (the custody read) and keyward-apisix-mirror-read, on a
# Kubernetes auth role of its own (deploy/vault/setup.sh, APISIX_MIRROR=true).
# Inline mode needs none of this.
#
# Keeping keys in a second place is the price of APISIX's Vault support,
# which reads KV version 1 only; prefer inline mode unless APISIX must fetch
# keys itself.

# Write, list and remove the mirror copies of the records the agent serves
# (list: it finds the versions it no longer needs).
path "apisix-mirror/*" {
  capabilities = ["create", "update", "delete", "list"]
}

# Mint the token APISIX reads the mirror with. It must be an orphan: a child
# token dies with its parent, and the agent's own Vault token is a 15-minute
# Kubernetes auth login that it replaces by logging in again. create-orphan
# needs no sudo; it is ACL'd here instead. The token can carry the
# keyward-apisix-mirror-read policy (and "default") and nothing else: Vault only lets
# a non-sudo token mint policies it holds itself, which is why the agent's
# role also carries keyward-apisix-mirror-read; the parameter list below keeps it from
# copying keyward-agent or this policy into the token. Its lifetime comes from
# --apisix-token-ttl.
path "auth/token/create-orphan" {
  capabilities        = ["update"]
  required_parameters = ["policies"]
  allowed_parameters = {
    "policies"          = ["keyward-apisix-mirror-read"]
    "ttl"               = []
    "explicit_max_ttl"  = []
    "renewable"         = []
    "display_name"      = []
    "meta"              = []
    "no_default_policy" = []
  }
}

# No revoke rights: the sink revokes APISIX's previous token with that token
# itself (auth/token/revoke-self, in Vault's default policy, which the minted
# token keeps). auth/token/revoke-accessor is deliberately not granted: it
# cannot be limited to the tokens the agent minted.
