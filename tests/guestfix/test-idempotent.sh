#!/bin/bash
# test-idempotent.sh - running guestfix a second time changes nothing: it reports no change
# and every file and path stays as it was.
. "$(dirname "$0")/functions.sh"
setup_guestfs
img=$(converted_image)
cp "$img" "$tmp/i.qcow2"
listing "$tmp/i.qcow2" "$tmp/before"
run_guestfix --json "$tmp/second.json" --format qcow2 -a "$tmp/i.qcow2" | tee "$tmp/second.log" ||
    fail "second run failed"
grep -q '^guestfix: 0 changes' "$tmp/second.log" || fail "the second run made changes"
listing "$tmp/i.qcow2" "$tmp/after"
diff -u "$tmp/before" "$tmp/after" || fail "the second run changed files"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["changes"] == 0' \
    "$tmp/second.json" || fail "JSON report of the second run shows changes"
say "ok"
