# Keyward custody writer (scrub webhook and watcher): creates and updates custody
# records and their metadata, lists a namespace's records (the custody audit:
# one LIST per custody namespace each period), and may delete a record's
# history (garbage collection of records whose Secret is gone). It can NOT read key data back:
# there is deliberately no "read" on custody/data/.
path "custody/data/tls/*" {
  capabilities = ["create", "update"]
}
path "custody/metadata/tls/*" {
  capabilities = ["read", "list", "create", "update", "delete"]
}
