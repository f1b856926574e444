#!/bin/bash
# test-dry-run.sh - --dry-run prints the plan and changes nothing: the image file's bytes are
# the same afterwards (the appliance opens it read-only).
. "$(dirname "$0")/functions.sh"
setup_guestfs
g=$(guest_image)
cp "$g" "$tmp/d.qcow2"
sum=$(sha256sum <"$tmp/d.qcow2")
run_guestfix --dry-run --json "$tmp/plan.json" --format qcow2 -a "$tmp/d.qcow2" | tee "$tmp/plan.log" ||
    fail "dry run failed"
[ "$(sha256sum <"$tmp/d.qcow2")" = "$sum" ] || fail "--dry-run changed the image"
grep -q '^would modify /etc/fstab' "$tmp/plan.log" || fail "plan lacks fstab"
grep -q '^would run .*update-initramfs' "$tmp/plan.log" || fail "plan lacks update-initramfs"
grep -q 'planned changes' "$tmp/plan.log" || fail "no summary"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["dry-run"] and r["changes"] > 5' \
    "$tmp/plan.json" || fail "bad JSON plan"
say "ok"
