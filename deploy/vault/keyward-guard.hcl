# Keyward custody guard: reads custody metadata (serial, validity, key
# fingerprint) to tell a genuine re-issue from one caused by redaction.
path "custody/metadata/tls/*" {
  capabilities = ["read"]
}
