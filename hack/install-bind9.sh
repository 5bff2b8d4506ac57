#!/usr/bin/env bash
# Copyright 2026 The Keyward Authors.
# SPDX-License-Identifier: Apache-2.0
#
# The ACME e2e tests and `make demo` answer DNS-01 challenges through a real
# DNS server that takes RFC 2136 updates: BIND 9, Debian's package (bind9,
# plus bind9-dnsutils for nsupdate/dig when debugging). Install it when it is
# missing; nothing else is downloaded. The package's service is not started:
# the tests run their own named as an unprivileged process on a loopback port.
set -euo pipefail
if command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "named is missing: install Debian's bind9 (apt-get install bind9) as root" >&2
  exit 1
fi
echo "installing bind9 (Debian package) for the ACME DNS-01 tests"
# Keep the package's init script from starting a system named on port 53.
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bind9 >/dev/null
