#!/usr/bin/env bash
# IAM bindings for Keyward on GCP Secret Manager, with GKE Workload Identity
# Federation principals (no service-account keys anywhere).
#
#   PROJECT_ID=my-proj CLUSTER=prod NAMESPACES="shop payments" ./bindings.sh
#
# Record secrets are named <prefix>_<cluster>_<namespace>_<secret> (see
# custody/gcpsm), so an IAM condition on the resource name's prefix scopes a
# binding to one cluster or one namespace. IAM conditions see the project
# NUMBER in resource.name, not the project ID.
set -euo pipefail
: "${PROJECT_ID:?}" "${CLUSTER:?}"
PREFIX=${PREFIX:-tls}
KEYWARD_NS=${KEYWARD_NS:-keyward}
KEYWARD_SA=${KEYWARD_SA:-keyward}
AGENT_SA=${AGENT_SA:-keyward-agent}
NUM=$(gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)')
POOL="principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$PROJECT_ID.svc.id.goog/subject"
SECRETS="projects/$NUM/secrets/${PREFIX}_${CLUSTER}_"

# The custody writer and the guard run in Keyward's own pod (one
# ServiceAccount; the chart can split them). Conditioned on this cluster's
# records only.
for role in keywardCustodyWriter keywardGuard; do
  gcloud projects add-iam-policy-binding "$PROJECT_ID" \
    --member="$POOL/ns/$KEYWARD_NS/sa/$KEYWARD_SA" \
    --role="projects/$PROJECT_ID/roles/$role" \
    --condition="title=keyward-$role-$CLUSTER,expression=resource.name.startsWith(\"$SECRETS\")"
done

# The custody audit lists a namespace's records (ListSecrets). The permission
# is checked on the project, which no secret-name condition matches: the
# lister role is bound to the writer alone, on the project, unconditioned
# (it lists names and metadata, never payloads). With a separate guard
# service account, do not bind it there.
gcloud projects add-iam-policy-binding "$PROJECT_ID" \
  --member="$POOL/ns/$KEYWARD_NS/sa/$KEYWARD_SA" \
  --role="projects/$PROJECT_ID/roles/keywardCustodyLister" \
  --condition=None

# Each namespace's agent may read the payloads of that namespace's records
# and nothing else. The trailing '_' matters: namespaces contain no '_', so
# "shop_" never matches namespace "shop-eu".
for ns in ${NAMESPACES:-}; do
  gcloud projects add-iam-policy-binding "$PROJECT_ID" \
    --member="$POOL/ns/$ns/sa/$AGENT_SA" \
    --role="roles/secretmanager.secretAccessor" \
    --condition="title=keyward-agent-$CLUSTER-$ns,expression=resource.name.startsWith(\"$SECRETS${ns}_\")"
done
