#!/bin/bash
# test-adapt-boots-pvscsi.sh - the converted disk still boots on its old controller (PVSCSI,
# vmxnet3 NIC): every change holds in both places, so going back needs no revert.
. "$(dirname "$0")/functions.sh"
setup_guestfs
img=$(converted_image)
cp "$img" "$tmp/c.qcow2"
boot "$tmp/c.qcow2" pvscsi "$tmp/serial.log" >"$tmp/boot.log" 2>&1 ||
    { cat "$tmp/boot.log"; fail "the converted guest did not boot on pvscsi"; }
tail -n 2 "$tmp/boot.log"
grep -aq 'SYSINIT: .* root /dev/sda1' "$tmp/serial.log" || fail "root is not on /dev/sda1"
grep -aq 'NET:.*eth0' "$tmp/serial.log" && fail "the vmxnet3 NIC was named eth0 on-prem"
say "ok"
