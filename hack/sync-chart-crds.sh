#!/usr/bin/env bash
# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Copies the files the Helm chart cannot reach on its own (Helm only reads
# files inside the chart directory) into deploy/charts/keyward/:
#   deploy/crds/vault.keyward.io_*.yaml    -> crds/            (installed by Helm before templates)
#   deploy/prometheus/keyward-rules.yaml   -> files/keyward-rules.yaml (PrometheusRule)
# The sources are authoritative; never edit the copies. Stale copies in crds/
# whose source is gone are removed.
#
# Usage: hack/sync-chart-crds.sh          update the copies
#        hack/sync-chart-crds.sh --check  exit 1 and list differences instead
# The chart tests in deploy/test run the same comparison.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="${root}/deploy/charts/keyward"
check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

shopt -s nullglob
crds=("${root}"/deploy/crds/vault.keyward.io_*.yaml)
if [[ ${#crds[@]} -eq 0 ]]; then
  echo "no CRDs in deploy/crds; run hack/generate.sh first" >&2
  exit 1
fi

# Pairs of source and copy.
pairs=()
for src in "${crds[@]}"; do
  pairs+=("${src}" "${chart}/crds/$(basename "${src}")")
done
pairs+=("${root}/deploy/prometheus/keyward-rules.yaml" "${chart}/files/keyward-rules.yaml")

drift=0
for ((i = 0; i < ${#pairs[@]}; i += 2)); do
  src="${pairs[i]}" dst="${pairs[i + 1]}"
  if cmp -s "${src}" "${dst}"; then
    continue
  fi
  if ${check}; then
    echo "out of date: ${dst#"${root}"/} (source ${src#"${root}"/})" >&2
    drift=1
  else
    mkdir -p "$(dirname "${dst}")"
    cp "${src}" "${dst}"
    echo "updated ${dst#"${root}"/}"
  fi
done

# Copies without a source (a CRD that was renamed or removed).
for dst in "${chart}"/crds/*.yaml; do
  if [[ ! -f "${root}/deploy/crds/$(basename "${dst}")" ]]; then
    if ${check}; then
      echo "stale: ${dst#"${root}"/} has no source in deploy/crds" >&2
      drift=1
    else
      rm -f "${dst}"
      echo "removed ${dst#"${root}"/}"
    fi
  fi
done

if ${check} && [[ ${drift} -ne 0 ]]; then
  echo "run hack/sync-chart-crds.sh to update the chart's copies" >&2
  exit 1
fi
