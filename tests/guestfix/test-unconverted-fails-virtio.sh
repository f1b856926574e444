#!/bin/bash
# test-unconverted-fails-virtio.sh - the test guest as built (VMware-like) does not boot on
# virtio-blk: its initramfs has no virtio driver and fstab names /dev/sda1.  This is what makes
# test-adapt-boots-virtio.sh meaningful.
. "$(dirname "$0")/functions.sh"
setup_guestfs
g=$(guest_image)
cp "$g" "$tmp/g.qcow2"
if boot "$tmp/g.qcow2" virtio "$tmp/serial.log" --timeout 120 >"$tmp/boot.log" 2>&1; then
    cat "$tmp/boot.log"
    fail "the unconverted guest booted on virtio-blk"
fi
grep -aq 'BOOT-OK' "$tmp/serial.log" && fail "BOOT-OK seen"
grep -aq 'SYSINIT' "$tmp/serial.log" && fail "userspace started, so root was found"
say "ok: no boot on virtio-blk before guestfix ($(grep -o 'FAILED: .*' "$tmp/boot.log" | head -n1))"
