# Keyward custody guard: reads each record version's description (serial,
# validity, key fingerprint) to tell a genuine re-issue from one caused by
# redaction. The subkeys endpoint answers a version with every value
# removed: the description (written as key names) is visible, the private
# key is not. Metadata read covers records written before descriptions
# (their custom metadata).
path "custody/subkeys/tls/*" {
  capabilities = ["read"]
}
path "custody/metadata/tls/*" {
  capabilities = ["read"]
}
