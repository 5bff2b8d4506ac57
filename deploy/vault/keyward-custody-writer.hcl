# Keyward custody writer (scrub webhook and watcher): writes custody records
# (key, certificate, CA and the version's description, one data write each),
# reads their descriptions and version state, lists a namespace's records
# (the custody audit: one LIST per custody namespace each period), and may
# delete a record's history (garbage collection of records whose Secret is
# gone). At start-up it sets the mount's max_versions (--custody-max-versions)
# when it differs, and may change nothing else in the mount's config. It can
# NOT read key data back: there is deliberately no "read" on custody/data/.
path "custody/data/tls/*" {
  capabilities = ["create", "update"]
}
path "custody/subkeys/tls/*" {
  capabilities = ["read"]
}
path "custody/metadata/tls/*" {
  capabilities = ["read", "list", "delete"]
}
path "custody/config" {
  capabilities       = ["read", "update"]
  allowed_parameters = {
    "max_versions" = []
  }
}
