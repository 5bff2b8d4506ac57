#!/usr/bin/env bash
# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Configures a Vault for Keyward, idempotently (re-running converges):
#   - PKI: root CA mount "pki", intermediate "pki_int" signed by it, roles
#     "keyward" (Keyward's issuer) and "cert-manager" (baseline issuer);
#   - KV v2 "custody" with a bounded version history;
#   - a file audit device;
#   - the ACL policies in this directory (*.hcl), one per component;
#   - Kubernetes auth with a reviewer ServiceAccount bound to
#     system:auth-delegator, and one role per Keyward component.
#
# Requires: vault, jq; kubectl (a context for the target cluster) unless both
# KUBERNETES_CA_FILE and KUBERNETES_REVIEWER_JWT_FILE are set.
# Environment:
#   VAULT_ADDR, VAULT_TOKEN      admin access to Vault (required)
#   KUBERNETES_HOST              apiserver URL as Vault reaches it (required)
#   KUBERNETES_CA_FILE           apiserver CA PEM (default: from the kubectl context)
#   KUBERNETES_REVIEWER_JWT_FILE token Vault uses for TokenReview, of a
#                                ServiceAccount bound to system:auth-delegator
#                                (default: the script creates one, see README)
#   KUBERNETES_AUTH_MOUNT        auth mount name (default kubernetes)
#   KEYWARD_NAMESPACE            Keyward's namespace (default keyward-system)
#   KEYWARD_SERVICE_ACCOUNT      Keyward's ServiceAccount (default keyward)
#   CERT_MANAGER_NAMESPACE       (default cert-manager)
#   CERT_MANAGER_SERVICE_ACCOUNT (default cert-manager)
#   PKI_DOMAINS                  comma-separated domains the roles may sign (default example.com)
#   PKI_ROLE_MAX_TTL             longest certificate the roles sign (default 2160h)
#   CUSTODY_MAX_VERSIONS         versions kept per custody record (default 5)
#   AUDIT_FILE                   audit log path on the Vault server (default /vault/logs/audit.log)
#   ROOT_CA_MODE                 "internal" (default): generate the root in Vault.
#                                "external": never create a root; sign the
#                                intermediate CSR offline and import it (see README).
#   CONSUMER_NAMESPACE, CONSUMER_SERVICE_ACCOUNT
#                                example consumer role bound to keyward-consumer (default demo/demo-consumer)
#   AGENT_NAMESPACE, AGENT_SERVICE_ACCOUNT
#                                keyward agent role bound to keyward-agent (default demo/keyward-agent,
#                                as in deploy/examples/agent-rbac.yaml)
#   APISIX_MIRROR                "true": also enable the KV v1 mount apisix-mirror and the role
#                                keyward-agent-apisix for the apisix sink's secret-ref mode (default false)
#   APISIX_AGENT_SERVICE_ACCOUNT ServiceAccount of that agent, in AGENT_NAMESPACE (default keyward-agent-apisix)
#   KMS                          "true": also set up `keyward kms`, the apiserver's KMS v2 plugin:
#                                Transit mount "transit", key "kubernetes-secrets", AppRole auth and the
#                                role keyward-kms (policy keyward-kms.hcl); prints the role ID and writes a
#                                secret ID to KMS_SECRET_ID_FILE (default ./keyward-kms.secret-id, 0600)
#                                unless that file already holds one
#   KMS_CERT_FILE                with KMS=true: also enable cert auth with a role keyward-kms trusting this
#                                CA PEM, for plugins that log in with a TLS client certificate instead
#   ADOPT_FROM_CLUSTER           a cluster name: write the policy keyward-adopter for that cluster's
#                                custody records (read on custody/data/tls/<name>/* and its metadata)
#                                and the role keyward-adopter bound to Keyward's ServiceAccount, for a
#                                cluster that adopts them (chart adoption.enabled; docs/operations.md)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

: "${VAULT_ADDR:?set VAULT_ADDR}"
: "${VAULT_TOKEN:?set VAULT_TOKEN}"
: "${KUBERNETES_HOST:?set KUBERNETES_HOST to the apiserver URL as Vault reaches it}"
auth_mount="${KUBERNETES_AUTH_MOUNT:-kubernetes}"
kw_ns="${KEYWARD_NAMESPACE:-keyward-system}"
kw_sa="${KEYWARD_SERVICE_ACCOUNT:-keyward}"
cm_ns="${CERT_MANAGER_NAMESPACE:-cert-manager}"
cm_sa="${CERT_MANAGER_SERVICE_ACCOUNT:-cert-manager}"
domains="${PKI_DOMAINS:-example.com}"
role_max_ttl="${PKI_ROLE_MAX_TTL:-2160h}"
max_versions="${CUSTODY_MAX_VERSIONS:-5}"
audit_file="${AUDIT_FILE:-/vault/logs/audit.log}"
root_mode="${ROOT_CA_MODE:-internal}"
consumer_ns="${CONSUMER_NAMESPACE:-demo}"
consumer_sa="${CONSUMER_SERVICE_ACCOUNT:-demo-consumer}"
agent_ns="${AGENT_NAMESPACE:-demo}"
agent_sa="${AGENT_SERVICE_ACCOUNT:-keyward-agent}"
apisix_mirror="${APISIX_MIRROR:-false}"
apisix_agent_sa="${APISIX_AGENT_SERVICE_ACCOUNT:-keyward-agent-apisix}"
reviewer_ns="${kw_ns}"
reviewer_sa="vault-token-reviewer"

log() { printf '==> %s\n' "$*" >&2; }

# mounted <type-prefix: secrets|auth|audit> <path>: is something mounted there?
mounted() {
  local kind="$1" path="$2"
  case "${kind}" in
    secrets) vault secrets list -format=json | jq -e --arg p "${path}/" 'has($p)' >/dev/null ;;
    auth) vault auth list -format=json | jq -e --arg p "${path}/" 'has($p)' >/dev/null ;;
    audit) vault audit list -format=json 2>/dev/null | jq -e --arg p "${path}/" 'has($p)' >/dev/null ;;
  esac
}

# --- PKI ------------------------------------------------------------------
if ! mounted secrets pki; then
  log "enabling root PKI at pki/"
  vault secrets enable -path=pki pki
fi
vault secrets tune -max-lease-ttl=87600h pki >/dev/null

if [[ "${root_mode}" == "internal" ]]; then
  # The intermediate certificate points clients at these (AIA and CRL).
  vault write pki/config/urls \
    issuing_certificates="${VAULT_ADDR}/v1/pki/ca" \
    crl_distribution_points="${VAULT_ADDR}/v1/pki/crl" >/dev/null
  if ! vault read -format=json pki/cert/ca 2>/dev/null | jq -e '.data.certificate | length > 0' >/dev/null; then
    # A root generated inside Vault is convenient for trials. In production
    # the root's key should never be online: use ROOT_CA_MODE=external.
    log "generating root CA in pki/ (internal; see README for an offline root)"
    vault write -format=json pki/root/generate/internal \
      common_name="Keyward Root CA" issuer_name="root" key_type=ec key_bits=384 ttl=87600h >/dev/null
  fi
fi

if ! mounted secrets pki_int; then
  log "enabling intermediate PKI at pki_int/"
  vault secrets enable -path=pki_int pki
fi
vault secrets tune -max-lease-ttl=43800h pki_int >/dev/null
# Set before the intermediate exists, so every certificate it signs says where
# to fetch its issuer and CRL (Vault warns when a CA is made without them).
vault write pki_int/config/urls \
  issuing_certificates="${VAULT_ADDR}/v1/pki_int/ca" \
  crl_distribution_points="${VAULT_ADDR}/v1/pki_int/crl" >/dev/null

if ! vault read -format=json pki_int/cert/ca 2>/dev/null | jq -e '.data.certificate | length > 0' >/dev/null; then
  log "creating the intermediate CA"
  csr="$(vault write -format=json pki_int/intermediate/generate/internal \
    common_name="Keyward Intermediate CA" key_name="intermediate" key_type=ec key_bits=256 | jq -r .data.csr)"
  if [[ "${root_mode}" == "internal" ]]; then
    signed="$(vault write -format=json pki/root/sign-intermediate csr="${csr}" format=pem_bundle ttl=43800h | jq -r .data.certificate)"
    vault write pki_int/intermediate/set-signed certificate="${signed}" >/dev/null
    # generate/internal takes no issuer_name: the issuer only exists once the
    # signed certificate is imported. It becomes the default (the imported
    # issuer that has a key), so name it through that reference.
    vault patch pki_int/issuer/default issuer_name="intermediate" >/dev/null
  else
    printf '%s\n' "${csr}" >pki_int.csr
    log "ROOT_CA_MODE=external: sign pki_int.csr with your offline root, then run:"
    log "  vault write pki_int/intermediate/set-signed certificate=@signed-chain.pem"
    log "and re-run this script."
    exit 3
  fi
fi

for role in keyward cert-manager; do
  # Both roles are used through sign/<role> only: the CSR's key type decides
  # (key_type=any), and the private key never reaches Vault's PKI.
  vault write "pki_int/roles/${role}" \
    allowed_domains="${domains}" allow_subdomains=true allow_bare_domains=true \
    allow_localhost=false allow_ip_sans=false enforce_hostnames=true \
    require_cn=false key_type=any max_ttl="${role_max_ttl}" \
    server_flag=true client_flag=false >/dev/null
done

# --- Custody KV -----------------------------------------------------------
if ! mounted secrets custody; then
  log "enabling KV v2 at custody/"
  vault secrets enable -path=custody -version=2 kv
fi
# A few versions survive a re-issue, so the previous key is not lost at once.
# cas_required stays off: Keyward uses check-and-set on its own writes.
vault write custody/config max_versions="${max_versions}" >/dev/null

# Opt-in KV v1 mirror for APISIX's own Vault secret manager, which cannot read
# KV v2 (see keyward-apisix-mirror-read.hcl). The name is fixed in the policies.
if [[ "${apisix_mirror}" == "true" ]] && ! mounted secrets apisix-mirror; then
  log "enabling KV v1 at apisix-mirror/ (APISIX_MIRROR=true)"
  vault secrets enable -path=apisix-mirror -version=1 kv
fi

# --- Audit ----------------------------------------------------------------
if ! mounted audit file; then
  log "enabling the file audit device at ${audit_file}"
  vault audit enable file file_path="${audit_file}"
fi

# --- Policies -------------------------------------------------------------
for f in "${here}"/*.hcl; do
  name="$(basename "${f}" .hcl)"
  vault policy write "${name}" "${f}" >/dev/null
  log "policy ${name}"
done

# --- Kubernetes auth ------------------------------------------------------
# Secrets reach Vault through files (vault write key=@file), never on a
# command line, where any local user could read them from the process list.
tmp_dir="$(mktemp -d)"
trap 'rm -rf "${tmp_dir}"' EXIT

# create_reviewer <out-file>: creates the reviewer ServiceAccount, binds it to
# system:auth-delegator and writes its long-lived token to <out-file>. The
# token comes from a service-account-token Secret, which the cluster's token
# controller (in kube-controller-manager) fills in.
create_reviewer() {
  local out="$1"
  log "reviewer ServiceAccount ${reviewer_ns}/${reviewer_sa} (system:auth-delegator)"
  kubectl get namespace "${reviewer_ns}" >/dev/null 2>&1 || kubectl create namespace "${reviewer_ns}" >/dev/null
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ${reviewer_sa}
  namespace: ${reviewer_ns}
---
apiVersion: v1
kind: Secret
metadata:
  name: ${reviewer_sa}-token
  namespace: ${reviewer_ns}
  annotations:
    kubernetes.io/service-account.name: ${reviewer_sa}
type: kubernetes.io/service-account-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: vault-token-reviewer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:auth-delegator
subjects:
  - kind: ServiceAccount
    name: ${reviewer_sa}
    namespace: ${reviewer_ns}
EOF
  for _ in $(seq 1 30); do
    (umask 077 && kubectl -n "${reviewer_ns}" get secret "${reviewer_sa}-token" -o jsonpath='{.data.token}' | base64 -d >"${out}") || true
    [[ -s "${out}" ]] && return 0
    sleep 1
  done
  echo "the token controller did not fill Secret ${reviewer_ns}/${reviewer_sa}-token; set KUBERNETES_REVIEWER_JWT_FILE instead" >&2
  return 1
}

reviewer_jwt_file="${KUBERNETES_REVIEWER_JWT_FILE:-}"
if [[ -z "${reviewer_jwt_file}" ]]; then
  reviewer_jwt_file="${tmp_dir}/reviewer.jwt"
  create_reviewer "${reviewer_jwt_file}"
fi
[[ -s "${reviewer_jwt_file}" ]] || { echo "reviewer token file ${reviewer_jwt_file} is missing or empty" >&2; exit 1; }

k8s_ca_file="${KUBERNETES_CA_FILE:-}"
if [[ -z "${k8s_ca_file}" ]]; then
  k8s_ca_file="${tmp_dir}/kubernetes-ca.pem"
  kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"${k8s_ca_file}"
fi
[[ -s "${k8s_ca_file}" ]] || { echo "Kubernetes CA file ${k8s_ca_file} is missing or empty" >&2; exit 1; }

if ! mounted auth "${auth_mount}"; then
  log "enabling Kubernetes auth at auth/${auth_mount}/"
  vault auth enable -path="${auth_mount}" kubernetes
fi
vault write "auth/${auth_mount}/config" \
  kubernetes_host="${KUBERNETES_HOST}" \
  kubernetes_ca_cert=@"${k8s_ca_file}" \
  token_reviewer_jwt=@"${reviewer_jwt_file}" \
  disable_local_ca_jwt=true >/dev/null

# k8s_role <name> <sa> <namespace> <policies> [<ttl> <max-ttl>]: short-lived
# tokens (15m, renewable up to 1h unless given), audience vault.
k8s_role() {
  vault write "auth/${auth_mount}/role/$1" \
    bound_service_account_names="$2" \
    bound_service_account_namespaces="$3" \
    audience=vault \
    token_policies="$4" \
    token_ttl="${5:-15m}" token_max_ttl="${6:-1h}" >/dev/null
  log "kubernetes auth role $1 -> $3/$2 ($4)"
}
k8s_role keyward-issuer "${kw_sa}" "${kw_ns}" keyward-issuer
k8s_role keyward-custody-writer "${kw_sa}" "${kw_ns}" keyward-custody-writer
k8s_role keyward-guard "${kw_sa}" "${kw_ns}" keyward-guard
# Revocation of superseded certificates (issuers' spec.revocation.auth).
k8s_role keyward-revoker "${kw_sa}" "${kw_ns}" keyward-revoker
k8s_role cert-manager "${cm_sa}" "${cm_ns}" cert-manager-baseline
if [[ -n "${ADOPT_FROM_CLUSTER:-}" ]]; then
  [[ "${ADOPT_FROM_CLUSTER}" =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
    { echo "ADOPT_FROM_CLUSTER=${ADOPT_FROM_CLUSTER} is not a DNS label" >&2; exit 1; }
  # keyward-adopter.hcl with the source cluster's name in place of "east".
  sed "s#custody/\(data\|metadata\)/tls/east/#custody/\1/tls/${ADOPT_FROM_CLUSTER}/#" \
    "${here}/keyward-adopter.hcl" | vault policy write keyward-adopter - >/dev/null
  log "policy keyward-adopter (records of cluster ${ADOPT_FROM_CLUSTER})"
  k8s_role keyward-adopter "${kw_sa}" "${kw_ns}" keyward-adopter
fi
# Example consumer: copy per workload and narrow keyward-consumer.hcl.
k8s_role keyward-consumer "${consumer_sa}" "${consumer_ns}" keyward-consumer
# keyward agent (deploy/examples/*-agent.yaml): copy per gateway with its own
# narrowed copy of keyward-agent.hcl. No renewal past 15 minutes: the agent
# logs in again with a fresh projected ServiceAccount token instead.
k8s_role keyward-agent "${agent_sa}" "${agent_ns}" keyward-agent 15m 15m
if [[ "${apisix_mirror}" == "true" ]]; then
  # keyward-apisix-mirror-read too: Vault lets a token mint only policies it holds.
  k8s_role keyward-agent-apisix "${apisix_agent_sa}" "${agent_ns}" \
    keyward-agent,keyward-agent-apisix-mirror,keyward-apisix-mirror-read 15m 15m
fi

if [[ "${KMS:-false}" == "true" ]]; then
  # The KMS plugin runs before the apiserver: it cannot use Kubernetes auth.
  mounted secrets transit || vault secrets enable transit >/dev/null
  vault read transit/keys/kubernetes-secrets >/dev/null 2>&1 ||
    vault write -f transit/keys/kubernetes-secrets type=aes256-gcm96 >/dev/null
  # The apiserver cannot decrypt Secrets wrapped with a deleted key: forbid deletion.
  vault write transit/keys/kubernetes-secrets/config deletion_allowed=false exportable=false >/dev/null
  mounted auth approle || vault auth enable approle >/dev/null
  # Short-lived, renewable tokens; the plugin renews them and logs in again
  # with its secret ID when Vault refuses a renewal.
  vault write auth/approle/role/keyward-kms token_policies=keyward-kms \
    token_ttl=15m token_max_ttl=1h secret_id_ttl=0 secret_id_num_uses=0 token_type=service >/dev/null
  kms_role_id="$(vault read -field=role_id auth/approle/role/keyward-kms/role-id)"
  kms_secret_file="${KMS_SECRET_ID_FILE:-./keyward-kms.secret-id}"
  if [[ -s "${kms_secret_file}" ]]; then
    log "keyward kms: AppRole role keyward-kms, role ID ${kms_role_id}; keeping the secret ID in ${kms_secret_file}"
  else
    (umask 077; vault write -f -field=secret_id auth/approle/role/keyward-kms/secret-id > "${kms_secret_file}")
    log "keyward kms: AppRole role keyward-kms, role ID ${kms_role_id}; secret ID written to ${kms_secret_file}"
  fi
  if [[ -n "${KMS_CERT_FILE:-}" ]]; then
    mounted auth cert || vault auth enable cert >/dev/null
    vault write auth/cert/certs/keyward-kms certificate=@"${KMS_CERT_FILE}" \
      token_policies=keyward-kms token_ttl=15m token_max_ttl=1h >/dev/null
    log "keyward kms: cert auth role keyward-kms trusts ${KMS_CERT_FILE}"
  fi
fi

log "done. Root CA (distribute to clients):"
# -field prints no trailing newline; add one so the PEM can be appended to.
if root_pem="$(vault read -field=certificate pki/cert/ca 2>/dev/null)"; then
  printf '%s\n' "${root_pem}"
else
  log "(root is external)"
fi
