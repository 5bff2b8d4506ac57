# Keyward issuer: may only sign CSRs with its own PKI role. It cannot issue
# (Vault-generated keys), read custody data, or change PKI configuration.
path "pki_int/sign/keyward" {
  capabilities = ["create", "update"]
}
