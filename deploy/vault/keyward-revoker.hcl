# Keyward revoker: may only revoke certificates of the PKI mount its issuers
# sign with, by serial number (spec.revocation.auth of a VaultIssuer or
# VaultClusterIssuer; docs/revocation.md). It cannot sign, issue, read
# certificates or keys, rotate or tidy the CRL, or touch custody data.
#
# Vault cannot narrow this further: `update` on <mount>/revoke may revoke any
# certificate the mount has issued (to any role, by any client), not only
# those Keyward's issuer signed. Give this role to Keyward alone, and to no
# issuer's signing login. revoke-with-key is not granted: it takes a private
# key, and Keyward never holds one.
path "pki_int/revoke" {
  capabilities = ["update"]
}
