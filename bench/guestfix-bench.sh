#!/bin/bash
# guestfix-bench.sh - adaptation time under TCG: guestfix against the manual guestfish
# equivalent, on copies of the same test guest, one after the other (never at the same time:
# two TCG appliances on 2 cores would slow each other).
#
#   bench/guestfix-bench.sh [--runs N]     (default 1 run of each; the median is reported)
#
# The manual equivalent is what an admin would type in one guestfish session (--listen, one
# launch): fstab to UUID, virtio modules + update-initramfs, /etc/default/grub with root=UUID
# console=ttyS0 net.ifnames=0 + update-grub, eth0 DHCP, apt-get purge open-vm-tools.
# Needs root, a built tree (make), libguestfs (scripts/install-deps.sh).  Not part of make check.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
runs=1
[ "${1:-}" = --runs ] && runs=${2:?}
export PATH=$top/build/bin:$PATH
. "$top/tests/guestfix/guestfs-env.sh"
guestfs_env_setup
[ -x "$top/build/bin/guestfix" ] || { echo "build guestfix first (make tools)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/guestfix-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$top/tests/guest/build-guest.sh" "$work/guest" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
guest=$work/guest/guest.qcow2

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }

manual() {
    local img=$1 uuid
    # One appliance for the whole session, as an admin would use guestfish.
    eval "$(guestfish --listen --format=qcow2 -a "$img" -i)" >/dev/null
    uuid=$(guestfish --remote vfs-uuid /dev/sda1)
    guestfish --remote sh "sed -i 's|^/dev/sda1|UUID=$uuid|' /etc/fstab" >/dev/null
    guestfish --remote sh "printf 'virtio_pci\nvirtio_blk\nvirtio_scsi\nvirtio_net\n' >> /etc/initramfs-tools/modules" >/dev/null
    guestfish --remote sh "update-initramfs -u" >/dev/null
    guestfish --remote sh "sed -i 's|^GRUB_CMDLINE_LINUX=.*|GRUB_CMDLINE_LINUX=\"root=UUID=$uuid console=ttyS0 net.ifnames=0\"|' /etc/default/grub" >/dev/null
    guestfish --remote sh "update-grub" >/dev/null 2>&1
    guestfish --remote sh "printf 'allow-hotplug eth0\niface eth0 inet dhcp\n' >> /etc/network/interfaces" >/dev/null
    guestfish --remote sh "DEBIAN_FRONTEND=noninteractive apt-get purge -y open-vm-tools" >/dev/null
    guestfish --remote exit
}

tool() { nice -n 0 "$top/build/bin/guestfix" --format qcow2 -a "$1" >/dev/null; }

declare -a tm tg
for i in $(seq "$runs"); do
    cp "$guest" "$work/m.qcow2"
    t0=$(now); manual "$work/m.qcow2"; t1=$(now)
    tm+=("$(sub "$t1" "$t0")")
    cp "$guest" "$work/g.qcow2"
    t0=$(now); tool "$work/g.qcow2"; t1=$(now)
    tg+=("$(sub "$t1" "$t0")")
    echo "run $i: manual guestfish ${tm[-1]} s, guestfix ${tg[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
m=$(median "${tm[@]}") g=$(median "${tg[@]}")
printf '| %-26s | %8s |\n' "adaptation (median of $runs)" seconds
printf '| %-26s | %8.1f |\n' "manual guestfish" "$m" "guestfix" "$g"
awk -v g="$g" -v m="$m" 'BEGIN { printf "ratio guestfix/manual: %.2f\n", g / m }'
