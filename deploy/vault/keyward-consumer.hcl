# Example consumer (delivery agent of one gateway): reads the custody records of
# the Secrets it serves, and nothing else. Copy per consumer and narrow the path
# to its namespace and Secret names.
path "custody/data/tls/demo/*" {
  capabilities = ["read"]
}
path "custody/metadata/tls/demo/*" {
  capabilities = ["read"]
}
