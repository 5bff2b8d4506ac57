# cert-manager's built-in Vault issuer, used as the baseline in tests and
# benchmarks: signs with its own role only.
path "pki_int/sign/cert-manager" {
  capabilities = ["create", "update"]
}
