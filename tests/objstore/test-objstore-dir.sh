#!/usr/bin/env bash
# test-objstore-dir.sh: the object-store conformance checks (objstore-check)
# against the dir backend, so both backends pass the same checks; then its
# 64 KiB PUT/GET latency and GET throughput, for information only; then
# the threads check under ThreadSanitizer.
#
# Exit status: 0 pass, 1 fail.

set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
check=$top/build/objstore/objstore-check
tsan=$top/build/objstore/objstore-check-tsan

make -s -C "$here" || { echo "FAIL: could not build objstore-check"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-objstore-dir.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

VELO_OBJ_BACKEND=dir VELO_OBJ_DIR=$tmp/store VELO_OBJ_BENCH=1 nice "$check" --tap
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: objstore-check against the dir backend (exit $rc)"; exit 1; }
# The threads check again under ThreadSanitizer (GLib's slice allocator
# off, so that TSan sees every allocation).
G_SLICE=always-malloc TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
    VELO_OBJ_BACKEND=dir VELO_OBJ_DIR=$tmp/tsan nice "$tsan" --tap -p /objstore/threads
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: ThreadSanitizer on the dir backend's threads check (exit $rc)"; exit 1; }
echo "PASS: the dir backend"
