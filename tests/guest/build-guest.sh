#!/bin/bash
# build-guest.sh - build the "VMware-like" Debian test guest, offline from Debian packages.
#
#   tests/guest/build-guest.sh OUTDIR
#
# Writes OUTDIR/guest.raw (1 GiB raw, MBR, root ext4 in partition 1) and OUTDIR/guest.qcow2.
# The guest is what an unconverted on-prem VM looks like, so it is a real conversion target:
#   - fstab and root= name /dev/sda1; no console=ttyS0; panic=10;
#   - the initramfs has MODULES=list (ata_piix sd_mod vmw_pvscsi ext4) and no virtio, so it boots
#     on IDE or PVSCSI but not on virtio-blk;
#   - static IP 192.0.2.10/24 (TEST-NET-1) on ens192; open-vm-tools installed.
# Markers: once multi-user.target is reached a unit writes "NET: ..." then "BOOT-OK" straight to
# /dev/ttyS0 (an earlier unit writes "SYSINIT: ..."), for boot-guest.sh to read from a serial file.
#
# How (see shared/notes/test-guests.md): debootstrap --variant=minbase; mke2fs -d writes the root
# tree into the partition at its offset (no loop devices, no mounts); GRUB installed by hand with
# the guest's own grub-mkimage; grub.cfg written by hand.
#
# Cache: the result is kept in $VELO_GUEST_CACHE/<sha256 of this script>/ (default base
# /var/cache/velo-guest; VELO_GUEST_CACHE=none disables it) and copied from there when present.
# It is only a shortcut: a missing or broken cache means a rebuild, never a failure.
#
# Environment: VELO_DEBIAN_MIRROR (default http://deb.debian.org/debian), QEMU_IMG (qemu-img to
# use; default the repo's build/bin/qemu-img, else qemu-img on PATH, else no qcow2).
# Exit: 0 built, 1 failed or host tool missing, 2 usage, 77 not root (tests treat it as skip).

set -euo pipefail

readonly SUITE=bookworm
readonly MIRROR=${VELO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly PACKAGES=linux-image-cloud-amd64,grub-pc,systemd-sysv,udev,dbus,ifupdown,isc-dhcp-client,open-vm-tools
readonly INITRD_MODULES=(ata_piix sd_mod vmw_pvscsi ext4)
readonly DISK_SIZE=$((1024 * 1024 * 1024))
readonly PART_START_SECTOR=2048                      # 1 MiB; GRUB's core.img lives before it
readonly PART_OFFSET=$((PART_START_SECTOR * 512))
readonly FS_BLOCKS=$(((DISK_SIZE - PART_OFFSET) / 4096))

prog=build-guest
self=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$self")/../.." && pwd)

say() { echo "$prog: $*"; }
die() { echo "$prog: error: $*" >&2; exit 1; }

# --- timing -----------------------------------------------------------------------------------
t_start=$EPOCHREALTIME
t_phase=$t_start
# phase_done NAME: print how long the phase since the previous call took.
phase_done() {
    local now=$EPOCHREALTIME
    awk -v p="$prog" -v n="$1" -v a="$t_phase" -v b="$now" 'BEGIN { printf "%s: %-12s %6.1f s\n", p, n, b - a }'
    t_phase=$now
}
# total: seconds since the start, one decimal.
total() { awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# --- arguments and prerequisites ---------------------------------------------------------------
if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
outdir=$1

if [ "$(id -u)" -ne 0 ]; then
    say "needs root (debootstrap and chroot); skipping"
    exit 77
fi

# Tools and the Debian package that provides each.
declare -A need=(
    [debootstrap]=debootstrap [sfdisk]=fdisk [mke2fs]=e2fsprogs [chroot]=coreutils
    [sha256sum]=coreutils [awk]=mawk
)
missing=()
for tool in "${!need[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${need[$tool]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    die "missing host packages: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')(install them with apt-get)"
fi

# qemu-img: the repo's build, then PATH, else no qcow2.
qemu_img=${QEMU_IMG:-}
if [ -z "$qemu_img" ]; then
    if [ -x "$repo/build/bin/qemu-img" ]; then
        qemu_img=$repo/build/bin/qemu-img
    else
        qemu_img=$(command -v qemu-img || true)
    fi
fi

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# make_qcow2 RAW QCOW2: convert if a qemu-img is available, else say why not.
make_qcow2() {
    if [ -z "$qemu_img" ]; then
        say "no qemu-img (neither $repo/build/bin/qemu-img nor on PATH): skipping guest.qcow2"
        rm -f "$2"
        return 0
    fi
    "$qemu_img" convert -f raw -O qcow2 "$1" "$2.tmp"
    mv "$2.tmp" "$2"
}

# --- cache lookup --------------------------------------------------------------------------------
hash=$(sha256sum "$self" | cut -d' ' -f1)
cache_base=${VELO_GUEST_CACHE:-/var/cache/velo-guest}
cache=
[ "$cache_base" = none ] || cache=$cache_base/$hash

if [ -n "$cache" ] && [ -f "$cache/complete" ] && [ -f "$cache/guest.raw" ] &&
   [ "$(stat -c %s "$cache/guest.raw")" -eq "$DISK_SIZE" ]; then
    say "using cached guest $cache"
    if cp --reflink=auto --sparse=always "$cache/guest.raw" "$outdir/guest.raw.tmp"; then
        mv "$outdir/guest.raw.tmp" "$outdir/guest.raw"
        if [ -f "$cache/guest.qcow2" ]; then
            cp --reflink=auto "$cache/guest.qcow2" "$outdir/guest.qcow2.tmp"
            mv "$outdir/guest.qcow2.tmp" "$outdir/guest.qcow2"
        else
            make_qcow2 "$outdir/guest.raw" "$outdir/guest.qcow2"
        fi
        phase_done cache-copy
        say "done in $(total) s: $outdir/guest.raw${qemu_img:+ $outdir/guest.qcow2}"
        exit 0
    fi
    rm -f "$outdir/guest.raw.tmp"
    say "warning: could not copy from the cache; building"
fi

# --- work directory and cleanup ------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/var/tmp}/velo-guest.XXXXXX")
root=$work/root
raw=$work/guest.raw

# Unmount whatever debootstrap may have left mounted under $work (it mounts /proc and /sys in the
# target while it runs), then remove $work. Refuse to delete through a mount that is still there.
cleanup() {
    local rc=$? mp
    set +e
    awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp"; done
    if awk -v w="$work/" 'index($2, w) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        echo "$prog: warning: mounts remain under $work; not removing it" >&2
    else
        rm -rf --one-file-system "$work"
    fi
    [ -z "${cache_tmp:-}" ] || rm -rf "$cache_tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. debootstrap ------------------------------------------------------------------------------
say "debootstrap $SUITE from $MIRROR into $root (the log is $work/debootstrap.log)"
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    [ ! -f "$root/debootstrap/debootstrap.log" ] || tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
fi
phase_done debootstrap

# --- 2. configure the guest ------------------------------------------------------------------------
kvers=("$root"/boot/vmlinuz-*)
if [ ${#kvers[@]} -ne 1 ] || [ ! -f "${kvers[0]}" ]; then
    die "expected exactly one kernel in $root/boot"
fi
kver=${kvers[0]##*/vmlinuz-}

echo velo-guest >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	velo-guest
::1		localhost ip6-localhost ip6-loopback
EOF
echo 'nameserver 192.0.2.1' >"$root/etc/resolv.conf"
: >"$root/etc/machine-id"                   # generated on first boot

cat >"$root/etc/fstab" <<'EOF'
# <file system> <mount point> <type> <options> <dump> <pass>
/dev/sda1	/	ext4	errors=remount-ro	0	1
EOF

cat >"$root/etc/network/interfaces" <<'EOF'
# The VMware-side configuration: vmxnet3 in PCI slot 192 is ens192 there.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug ens192
iface ens192 inet static
	address 192.0.2.10/24
	gateway 192.0.2.1
EOF

# Markers, written straight to the serial port (the kernel console is not on it).
cat >"$root/usr/local/sbin/velo-marker" <<'EOF'
#!/bin/sh
# velo-marker early|boot: write the test markers to /dev/ttyS0.
set -u
out=/dev/ttyS0
case "${1:-}" in
early)
    echo "SYSINIT: kernel $(uname -r) root $(findmnt -n -o SOURCE /)" >"$out"
    ;;
boot)
    net=$(ip -br addr 2>&1 | tr -s ' ' | sed 's/ $//' | paste -sd ';' | sed 's/;/; /g')
    echo "NET: $net" >"$out"
    echo "BOOT-OK" >"$out"
    ;;
*)
    echo "usage: $0 early|boot" >&2
    exit 2
    ;;
esac
EOF
chmod 755 "$root/usr/local/sbin/velo-marker"

cat >"$root/etc/systemd/system/velo-marker-early.service" <<'EOF'
[Unit]
Description=Velo test marker: userspace started
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/velo-marker early

[Install]
WantedBy=sysinit.target
EOF

cat >"$root/etc/systemd/system/velo-marker-boot.service" <<'EOF'
[Unit]
Description=Velo test marker: multi-user reached (BOOT-OK)
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/velo-marker boot

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$root/etc/systemd/system/sysinit.target.wants" "$root/etc/systemd/system/multi-user.target.wants"
ln -sf ../velo-marker-early.service "$root/etc/systemd/system/sysinit.target.wants/"
ln -sf ../velo-marker-boot.service "$root/etc/systemd/system/multi-user.target.wants/"

# Initramfs: only the listed modules (and their dependencies), as on a VMware install.
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
grep -q '^MODULES=list$' "$root/etc/initramfs-tools/initramfs.conf" || die "could not set MODULES=list"
printf '%s\n' "${INITRD_MODULES[@]}" >>"$root/etc/initramfs-tools/modules"
chroot "$root" update-initramfs -u -k "$kver" >"$work/initramfs.log" 2>&1 ||
    { cat "$work/initramfs.log" >&2; die "update-initramfs failed"; }
initrd_modules=$(chroot "$root" lsinitramfs "/boot/initrd.img-$kver" | grep '\.ko' || true)
if echo "$initrd_modules" | grep -q virtio; then
    die "the initramfs contains virtio modules"
fi
for m in "${INITRD_MODULES[@]}"; do
    echo "$initrd_modules" | grep -q "/$m\.ko" ||
        grep -q "/$m\.ko\$" "$root/lib/modules/$kver/modules.builtin" ||
        die "module $m is neither in the initramfs nor built in"
done
say "initramfs: $(echo "$initrd_modules" | grep -c .) modules (MODULES=list: ${INITRD_MODULES[*]}), no virtio"
phase_done initramfs

# GRUB, by hand: the guest's own grub-mkimage, modules copied under /boot/grub, grub.cfg.
chroot "$root" grub-mkimage -O i386-pc -o /tmp/core.img -p '(hd0,msdos1)/boot/grub' \
    biosdisk part_msdos ext2
mv "$root/tmp/core.img" "$work/core.img"
cp "$root/usr/lib/grub/i386-pc/boot.img" "$work/boot.img"
[ "$(stat -c %s "$work/core.img")" -le $(((PART_START_SECTOR - 1) * 512)) ] ||
    die "core.img does not fit before the partition"
mkdir -p "$root/boot/grub"
cp -a "$root/usr/lib/grub/i386-pc" "$root/boot/grub/"
cat >"$root/boot/grub/grub.cfg" <<EOF
# Written by tests/guest/build-guest.sh (grub-mkconfig cannot probe devices in a chroot).
set default=0
set timeout=0
insmod part_msdos
insmod ext2
set root=(hd0,msdos1)

menuentry 'Debian GNU/Linux (velo test guest)' {
	linux /boot/vmlinuz-$kver root=/dev/sda1 ro quiet panic=10
	initrd /boot/initrd.img-$kver
}
EOF

# Shrink the image: package caches and lists are not needed in the guest.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/tmp"/*
find "$root/var/log" -type f -exec truncate -s 0 {} +
phase_done configure

# --- 3. the disk: MBR, partition 1 = ext4 written from $root, GRUB in the MBR gap -------------------
if awk -v w="$root/" 'index($2, w) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    die "something is still mounted under $root"
fi
truncate -s "$DISK_SIZE" "$raw"
echo "start=$PART_START_SECTOR, type=83, bootable" | sfdisk --quiet --label dos "$raw"
mke2fs -q -F -t ext4 -L velo-root -b 4096 -d "$root" -E offset=$PART_OFFSET "$raw" "$FS_BLOCKS"
dd if="$work/boot.img" of="$raw" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$raw" bs=512 seek=1 conv=notrunc status=none
[ "$(stat -c %s "$raw")" -eq "$DISK_SIZE" ] || die "the raw image grew past $DISK_SIZE bytes"
phase_done disk

mv "$raw" "$outdir/guest.raw"
make_qcow2 "$outdir/guest.raw" "$outdir/guest.qcow2"
phase_done qcow2

# --- 4. fill the cache (best effort) -------------------------------------------------------------------
if [ -n "$cache" ] && [ ! -f "$cache/complete" ]; then
    if mkdir -p "$cache_base" 2>/dev/null &&
       cache_tmp=$(mktemp -d "$cache_base/.$hash.XXXXXX" 2>/dev/null) && chmod 755 "$cache_tmp" &&
       cp --reflink=auto --sparse=always "$outdir/guest.raw" "$cache_tmp/" &&
       { [ ! -f "$outdir/guest.qcow2" ] || cp --reflink=auto "$outdir/guest.qcow2" "$cache_tmp/"; } &&
       echo "kernel $kver, built $(date -u +%FT%TZ)" >"$cache_tmp/complete"; then
        rm -rf "$cache"
        if mv -T "$cache_tmp" "$cache" 2>/dev/null; then
            cache_tmp=
            say "cached in $cache"
            # Entries of older versions of this script are never used again.
            for old in "$cache_base"/*; do
                if [[ ${old##*/} =~ ^[0-9a-f]{64}$ ]] && [ "${old##*/}" != "$hash" ]; then
                    rm -rf "$old"
                fi
            done
        fi
    else
        say "warning: could not fill the cache $cache (continuing)"
    fi
fi

used=$(du -sm --apparent-size "$root" | cut -f1)
say "guest: kernel $kver, root tree ${used} MiB, $(du -m "$outdir/guest.raw" | cut -f1) MiB allocated in guest.raw"
say "done in $(total) s: $outdir/guest.raw${qemu_img:+ $outdir/guest.qcow2}"
