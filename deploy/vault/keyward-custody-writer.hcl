# Keyward custody writer (scrub webhook and watcher): creates and updates custody
# records and their metadata, and may delete a record's history (garbage
# collection of records whose Secret is gone). It can NOT read key data back:
# there is deliberately no "read" on custody/data/.
path "custody/data/tls/*" {
  capabilities = ["create", "update"]
}
path "custody/metadata/tls/*" {
  capabilities = ["read", "create", "update", "delete"]
}
