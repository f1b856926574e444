#!/usr/bin/env bash
# test-objstore-dir.sh: the object-store conformance checks (objstore-check)
# against the dir backend, so both backends pass the same checks; then its
# 64 KiB PUT/GET latency and GET throughput, for information only.
#
# Exit status: 0 pass, 1 fail.

set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
check=$top/build/objstore/objstore-check

make -s -C "$here" || { echo "FAIL: could not build objstore-check"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-objstore-dir.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

VELO_OBJ_BACKEND=dir VELO_OBJ_DIR=$tmp/store VELO_OBJ_BENCH=1 nice "$check" --tap
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: objstore-check against the dir backend (exit $rc)"; exit 1; }
echo "PASS: the dir backend"
