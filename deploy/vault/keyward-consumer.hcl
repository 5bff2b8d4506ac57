# Example consumer (delivery agent of one gateway): reads the custody records of
# the Secrets it serves, and nothing else. Copy per consumer and narrow the path
# to its namespace and Secret names. With a cluster name (the chart's
# clusterName) records live at custody/data/tls/<cluster>/<namespace>/<secret>:
# add the cluster segment, e.g. custody/data/tls/my-cluster/demo/*; the paths
# below are the dev stack's (no cluster name).
path "custody/data/tls/demo/*" {
  capabilities = ["read"]
}
path "custody/metadata/tls/demo/*" {
  capabilities = ["read"]
}
