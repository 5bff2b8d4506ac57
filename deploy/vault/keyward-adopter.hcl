# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Keyward adoption (flag --vault-adopt-role, chart adoption.vaultRole): reads
# the custody records of ANOTHER cluster, so that a Certificate created in a
# namespace labelled keyward.io/adopt-from-cluster=<that cluster> takes over
# its key instead of issuing a new one (docs/operations.md, "Moving to
# another cluster without re-keying"). The copy is written to this cluster's
# own records by the custody writer role, never by this one.
#
# This policy is the one place that says which clusters this cluster may
# adopt from: the namespace label alone grants nothing. The example allows
# cluster "east"; copy it per target cluster and list each source cluster
# (records live at custody/data/tls/<cluster>/<namespace>/<secret>). Narrow
# it further to namespaces when only some move, e.g.
#
#   path "custody/data/tls/east/shop/*" {
#     capabilities = ["read"]
#   }
#
# Remove the role (or the paths) once the move is done.
path "custody/data/tls/east/*" {
  capabilities = ["read"]
}
path "custody/subkeys/tls/east/*" {
  capabilities = ["read"]
}
path "custody/metadata/tls/east/*" {
  capabilities = ["read"]
}
