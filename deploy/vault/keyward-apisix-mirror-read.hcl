# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# The token APISIX itself holds when the keyward agent's apisix sink runs in
# secret-ref mode (--apisix-mode secret-ref): APISIX's Vault secret manager
# reads SSL keys from a KV version 1 mount at TLS handshake time, and KV v1
# only (it cannot read custody/, which is KV v2). The agent mirrors the
# records it serves into the mount "apisix-mirror" and mints this token for
# APISIX (see keyward-agent-apisix-mirror.hcl). Read-only on the mirror,
# nothing else: a stolen APISIX token exposes the keys of that one gateway.
# The policy name is the default of --apisix-token-policy.
#
# The mount name is fixed here and in keyward-agent-apisix-mirror.hcl; to use
# another --apisix-mirror-mount, change both files. One mirror mount per
# gateway keeps gateways from reading each other's keys.
path "apisix-mirror/*" {
  capabilities = ["read"]
}
