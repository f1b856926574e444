#!/bin/sh
# install-deps.sh: install every Debian 12 package that Velo's build, tests,
# benchmarks and demo need.  Idempotent: packages already present are left
# alone and nothing is downloaded when everything is installed.
#
# Usage: scripts/install-deps.sh [--check]
#   --check   only report what is missing (exit 1 if anything is)
set -eu

PKGS="
build-essential pkg-config ccache python3 python3-venv
meson ninja-build dpkg-dev debian-archive-keyring
libglib2.0-dev libpixman-1-dev libzstd-dev zlib1g-dev libaio-dev liburing-dev libfdt-dev
libslirp-dev libgnutls28-dev libssl-dev libcurl4-openssl-dev
seabios ipxe-qemu
iproute2 procps psmisc util-linux
debootstrap fdisk e2fsprogs
zstd gnutls-bin
ceph-mon ceph-osd ceph-common radosgw openssl
libguestfs-tools guestfs-tools libguestfs-dev libjson-glib-dev libhivex-dev libhivex-bin
qemu-utils
"

missing=
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "${1:-}" = "--check" ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run 'sudo scripts/install-deps.sh' to install them" >&2
    exit 1
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install:$missing" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
    apt-get update -q
fi
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
