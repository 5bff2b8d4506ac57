# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# keyward agent (`keyward agent`, the delivery sidecar of one gateway or
# server): reads the custody records of the Secrets it serves and nothing
# else. It reads exactly the version a placeholder's keyward.io/custody-version
# annotation names (GET custody/data/tls/<namespace>/<secret>?version=N); the
# response carries the version's created_time, so it needs no metadata read,
# no list, and no write anywhere.
#
# Records live at custody/data/tls/<cluster>/<namespace>/<secret> when
# Keyward runs with a cluster name (--cluster-name; the chart requires
# clusterName), and at custody/data/tls/<namespace>/<secret> without one
# (the embedded dev stack of `make dev` and the tests). Put the cluster
# segment into every path below for a chart install, e.g.
# custody/data/tls/prod-eu-1/demo/*.
#
# This example grants the namespace "demo" of deploy/examples. Copy it per
# consumer (one Kubernetes auth role and one policy each) and narrow it to the
# Secrets that consumer serves, one path per --secret, e.g.
#
#   path "custody/data/tls/demo/web-tls" {
#     capabilities = ["read"]
#   }
#
# A single policy for agents in many namespaces can be templated on the
# namespace of the ServiceAccount that logged in, which Vault's Kubernetes
# auth records as alias metadata. Replace auth_kubernetes_0123abcd with the
# accessor of your Kubernetes auth mount
# (vault auth list -format=json | jq -r '.["kubernetes/"].accessor'):
#
#   path "custody/data/tls/{{identity.entity.aliases.auth_kubernetes_0123abcd.metadata.service_account_namespace}}/*" {
#     capabilities = ["read"]
#   }
#
# Then every agent reads all custody records of its own namespace, and no
# other; bind the role to the agents' ServiceAccount names only (never "*"),
# or any workload in those namespaces could log in with it.
path "custody/data/tls/demo/*" {
  capabilities = ["read"]
}
