#!/usr/bin/env bash
# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Installs one Debian package the tests run for real, when its command is
# missing; nothing else is downloaded. The package's service is not started
# (a policy-rc.d refuses it for the install): the tests run their own
# process on a loopback port.
#   hack/install-deb.sh <command> <package> <what the tests use it for>
# `make tools` uses it for nginx (nginx-light, the delivery e2e test's
# gateway) and named (bind9, the DNS server of the ACME DNS-01 tests).
set -euo pipefail
cmd="$1" pkg="$2" why="$3"
if command -v "${cmd}" >/dev/null 2>&1 || [ -x "/usr/sbin/${cmd}" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "${cmd} is missing: install Debian's ${pkg} (apt-get install ${pkg}) as root" >&2
  exit 1
fi
echo "installing ${pkg} (Debian package) for ${why}"
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkg}" >/dev/null
