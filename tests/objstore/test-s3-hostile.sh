#!/usr/bin/env bash
# test-s3-hostile.sh: the S3 backend against a server that answers like a
# broken or hostile S3 (hostile-s3.py), no Ceph needed:
#  - listings that say "truncated" forever, with the same token and only
#    keys the client skips, end with an error at once (they looped forever:
#    the next page was anchored on the last key listed, not the last seen);
#  - a web server that answers 200 to everything is refused at open (it was
#    taken for an empty bucket, so a recovery would find nothing);
#  - a sound empty bucket opens and lists.
#
# Exit status: 0 pass, 1 fail.

set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
probe=$top/build/objstore/s3-probe

make -s -C "$here" "$probe" || { echo "FAIL: could not build s3-probe"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-s3-hostile.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail=0

# serve MODE: start hostile-s3.py; sets $pid and $url.
serve() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -f "$tmp/port" "$tmp/port.lists"
    python3 "$here/hostile-s3.py" "$tmp/port" "$1" &
    pid=$!
    for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
    url=http://127.0.0.1:$(cat "$tmp/port")
}

# check NAME OUTPUT PATTERN: OUTPUT must match PATTERN.
check() {
    if printf '%s\n' "$2" | grep -q -- "$3"; then
        echo "ok: $1"
    else
        echo "FAIL: $1: got: $2"
        fail=1
    fi
}

serve loop-invalid
out=$(timeout 20 "$probe" "$url" list 5 2>&1); rc=$?
check "endless truncated listing ends (exit $rc; 124 is a timeout)" "$rc" '^0$'
check "endless truncated listing is an error" "$out" 'list: -71: .*broken server'
n=$(cat "$tmp/port.lists" 2>/dev/null || echo 0)
check "it took a few list requests ($n), not hundreds" "$n" '^[1-9]$'

serve html
out=$(timeout 20 "$probe" "$url" put k/a 2>&1)
check "a web server is refused at open" "$out" 'open failed: .*not a ListBucketResult'

serve ok
out=$(timeout 20 "$probe" "$url" list 5 2>&1)
check "a sound empty bucket lists" "$out" '^list: 0$'

[ $fail = 0 ] && echo "PASS" || echo "FAIL"
exit $fail
