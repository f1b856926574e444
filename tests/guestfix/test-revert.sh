#!/bin/bash
# test-revert.sh - guestfix --revert restores the original files byte for byte (the SHA-256 of
# every file and the list of every path equal the pristine guest's), and the reverted guest
# boots on its old controller (PVSCSI) again.
. "$(dirname "$0")/functions.sh"
setup_guestfs
g=$(guest_image)
img=$(converted_image)
cp "$img" "$tmp/r.qcow2"
run_guestfix --revert --json "$tmp/revert.json" --format qcow2 -a "$tmp/r.qcow2" |
    tee "$tmp/revert.log" || fail "guestfix --revert failed"
grep -q '^restore /etc/fstab' "$tmp/revert.log" || fail "fstab not restored"
listing "$g" "$tmp/before"
listing "$img" "$tmp/converted"
listing "$tmp/r.qcow2" "$tmp/after"
cmp -s "$tmp/before" "$tmp/converted" && fail "the listing cannot tell the converted image apart"
diff -u "$tmp/before" "$tmp/after" || fail "the reverted image differs from the original"
say "files and paths equal the original ($(grep -vc '^path ' "$tmp/after") files)"
rc=0; run_guestfix --revert --format qcow2 -a "$tmp/r.qcow2" >"$tmp/again.log" || rc=$?
{ [ $rc -eq 0 ] && grep -q 'nothing to revert' "$tmp/again.log"; } || fail "second revert: exit $rc"
boot "$tmp/r.qcow2" pvscsi "$tmp/serial.log" >"$tmp/boot.log" 2>&1 ||
    { cat "$tmp/boot.log"; fail "the reverted guest did not boot on pvscsi"; }
tail -n 1 "$tmp/boot.log"
say "ok"
