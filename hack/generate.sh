#!/usr/bin/env bash
# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Regenerates everything controller-gen derives from Go markers:
#   issuer/api/v1alpha1/zz_generated.deepcopy.go  (deepcopy)
#   deploy/crds/vault.keyward.io_*.yaml            (CRDs)
#   deploy/rbac/issuer-role.yaml                   (the issuer's ClusterRole)
# controller-gen is built from hack/tools/controller-gen (its own module) into
# bin/ when missing. Run from anywhere: `bash hack/generate.sh`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

cg="${root}/bin/controller-gen"
if [[ ! -x "${cg}" ]]; then
  (cd hack/tools/controller-gen && go build -o "${cg}" sigs.k8s.io/controller-tools/cmd/controller-gen)
fi

header="$(mktemp)"
trap 'rm -f "${header}"' EXIT
printf '// Copyright 2026 The Keyward Authors.\n// SPDX-License-Identifier: Apache-2.0\n' >"${header}"

"${cg}" object:headerFile="${header}" paths=./issuer/api/...
"${cg}" crd paths=./issuer/api/... output:crd:artifacts:config=deploy/crds
"${cg}" rbac:roleName=keyward-issuer paths=./issuer/... output:rbac:artifacts:config=deploy/rbac
mv deploy/rbac/role.yaml deploy/rbac/issuer-role.yaml

# controller-gen writes YAML without a license header; add ours.
for f in deploy/crds/vault.keyward.io_*.yaml deploy/rbac/issuer-role.yaml; do
  { printf '# Copyright 2026 The Keyward Authors.\n# SPDX-License-Identifier: Apache-2.0\n'; cat "${f}"; } >"${f}.tmp"
  mv "${f}.tmp" "${f}"
done
