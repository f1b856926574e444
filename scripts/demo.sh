#!/bin/bash
# demo.sh: from a fresh Debian 12 machine (as root), set everything up and
# boot the project's VMware-like test guest "in the cloud" from its
# "on-prem" disk, streamed through velo over an emulated WAN (50 ms RTT,
# 100 Mbit/s).  Prints the time to boot, the bytes fetched and the cache hit
# rates, then boots it again from the warm cache.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it installs packages and builds a guest with debootstrap)" >&2; exit 1; }
scripts/install-deps.sh
[ -f config.mk ] || ./configure
make
VELO_DEMO=1 tests/e2e/test-boot-velo.sh
