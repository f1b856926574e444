#!/usr/bin/env bash
# test-objstore-s3.sh: the object-store conformance checks (objstore-check)
# against a real S3 server: a throw-away Ceph radosgw on loopback
# (radosgw.sh).  Then 64 KiB PUT/GET latency and GET throughput with 1 and
# 4 threads, printed for information only; then the threads check under
# ThreadSanitizer.  Takes about 25 s.
#
# Exit status: 0 pass, 1 fail, 77 skip (not root, Ceph not installed, or
# the fixed ports taken).

set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
check=$top/build/objstore/objstore-check
tsan=$top/build/objstore/objstore-check-tsan

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to run the Ceph daemons"; exit 77; }
command -v radosgw >/dev/null || { echo "SKIP: radosgw not installed: run scripts/install-deps.sh"; exit 77; }
make -s -C "$here" || { echo "FAIL: could not build objstore-check"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-objstore-s3.XXXXXX")
cleanup() {
    "$here/radosgw.sh" stop "$tmp/rgw" >/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

"$here/radosgw.sh" start "$tmp/rgw"
rc=$?
[ $rc -eq 77 ] && { echo "SKIP: radosgw.sh could not run here"; exit 77; }
[ $rc -eq 0 ] || { echo "FAIL: radosgw.sh start failed (exit $rc)"; exit 1; }

set -a
. "$tmp/rgw/env"
set +a
VELO_OBJ_BACKEND=s3 VELO_S3_BUCKET=velo-check VELO_OBJ_BENCH=1 \
    nice "$check" --tap
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: objstore-check against radosgw (exit $rc)"; exit 1; }
# The threads check again under ThreadSanitizer (GLib's slice allocator
# off, so that TSan sees every allocation).
G_SLICE=always-malloc TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
    VELO_OBJ_BACKEND=s3 VELO_S3_BUCKET=velo-tsan nice "$tsan" --tap -p /objstore/threads
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: ThreadSanitizer on the s3 backend's threads check (exit $rc)"; exit 1; }
echo "PASS: the s3 backend against radosgw"
