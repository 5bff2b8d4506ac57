#!/usr/bin/env bash
# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# The delivery e2e test terminates TLS in a real nginx, Debian's package
# (nginx-light). Install it when it is missing; nothing else is downloaded.
# The package's service is not started: the test runs its own nginx.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "nginx is missing: install Debian's nginx-light (apt-get install nginx-light) as root" >&2
  exit 1
fi
echo "installing nginx-light (Debian package) for the delivery e2e test"
# Keep the package's init script from starting a system nginx on port 80.
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
