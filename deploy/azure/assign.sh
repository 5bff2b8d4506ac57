#!/usr/bin/env bash
# Role definitions and assignments for Keyward on Azure Key Vault (RBAC
# permission model), with Azure Workload Identity (federated credentials on
# user-assigned managed identities; no client secrets).
#
#   SUBSCRIPTION_ID=… RG=… VAULT=… KEYWARD_MI_PRINCIPAL=… ./assign.sh
#   AGENT_MI_PRINCIPAL=… SECRETS="tls-sprod-sshop-sweb …" ./assign.sh agent
set -euo pipefail
: "${SUBSCRIPTION_ID:?}" "${RG:?}" "${VAULT:?}"
VAULT_SCOPE="/subscriptions/$SUBSCRIPTION_ID/resourceGroups/$RG/providers/Microsoft.KeyVault/vaults/$VAULT"
here=$(dirname "$0")

define() {
  sed "s/SUBSCRIPTION_ID/$SUBSCRIPTION_ID/" "$here/$1" > "/tmp/$1"
  az role definition create --role-definition "/tmp/$1" >/dev/null || az role definition update --role-definition "/tmp/$1" >/dev/null
}

if [ "${1:-}" != agent ]; then
  define keyward-custody-writer.json
  define keyward-guard.json
  define keyward-agent.json
  : "${KEYWARD_MI_PRINCIPAL:?}"
  for role in "Keyward custody writer" "Keyward custody guard"; do
    az role assignment create --assignee-object-id "$KEYWARD_MI_PRINCIPAL" --assignee-principal-type ServicePrincipal \
      --role "$role" --scope "$VAULT_SCOPE"
  done
  exit 0
fi

# Agents. Azure cannot scope a role assignment to a name prefix: either give
# each namespace its own vault (assign at the vault: SECRETS unset), or
# assign per secret (the secret must exist first, i.e. after its first
# issuance; Keyward does not create assignments itself).
: "${AGENT_MI_PRINCIPAL:?}"
if [ -z "${SECRETS:-}" ]; then
  az role assignment create --assignee-object-id "$AGENT_MI_PRINCIPAL" --assignee-principal-type ServicePrincipal \
    --role "Keyward agent" --scope "$VAULT_SCOPE"
else
  for s in $SECRETS; do
    az role assignment create --assignee-object-id "$AGENT_MI_PRINCIPAL" --assignee-principal-type ServicePrincipal \
      --role "Keyward agent" --scope "$VAULT_SCOPE/secrets/$s"
  done
fi
