#!/bin/sh
# fetch-qemu.sh: obtain Debian 12's qemu 7.2 source package and unpack it,
# without touching the system's apt configuration.  A private apt state
# directory with a deb-src entry is used instead.
#
# Usage: scripts/fetch-qemu.sh DESTDIR
# Leaves the unpacked tree (Debian patches applied) in DESTDIR/qemu-src.
set -eu

dest=${1:?usage: fetch-qemu.sh DESTDIR}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
apt="$dest/apt"

if [ -f "$dest/qemu-src/VERSION" ]; then
    echo "fetch-qemu: $dest/qemu-src already unpacked"
    exit 0
fi

mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/etc/preferences.d" \
         "$apt/etc/apt.conf.d" "$dest/dl"
cat > "$apt/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
SRC

aptopts="-o Dir::Etc::SourceList=$apt/sources.list -o Dir::Etc::SourceParts=$apt/etc/empty
 -o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt -o Dir::Cache::archives=$apt/archives
 -o Dir::Etc::Preferences=$apt/etc/none -o Dir::Etc::PreferencesParts=$apt/etc/preferences.d
 -o Debug::NoLocking=1 -o APT::Sandbox::User=root"
mkdir -p "$apt/etc/empty"

# shellcheck disable=SC2086
apt-get $aptopts update -q
cd "$dest/dl"
# shellcheck disable=SC2086
apt-get $aptopts source --download-only -q qemu
dsc=$(ls -1 qemu_7.2*.dsc | sort -V | tail -n1)
[ -n "$dsc" ] || { echo "fetch-qemu: no qemu 7.2 .dsc was downloaded" >&2; exit 1; }
rm -rf "$dest/qemu-src.tmp"
dpkg-source --no-check -x "$dsc" "$dest/qemu-src.tmp" >/dev/null
mv "$dest/qemu-src.tmp" "$dest/qemu-src"
echo "fetch-qemu: unpacked $(cat "$dest/qemu-src/VERSION") into $dest/qemu-src"
