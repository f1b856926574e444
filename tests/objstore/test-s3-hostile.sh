#!/usr/bin/env bash
# test-s3-hostile.sh: the S3 backend against a server that answers like a
# broken or hostile S3 (hostile-s3.py), no Ceph needed:
#  - listings that say "truncated" forever, with the same token and only
#    keys the client skips, end with an error at once (they looped forever:
#    the next page was anchored on the last key listed, not the last seen);
#  - listings that say "truncated" forever with new, valid keys end with
#    an error once there are more keys than the caller can have (they
#    grew without bound);
#  - a web server that answers 200 to everything is refused at open (it was
#    taken for an empty bucket, so a recovery would find nothing);
#  - a sound empty bucket opens and lists;
#  - a velo node whose store hangs on uploads closes within its
#    objstore.timeout x (objstore.retries + 1), here 1 s x 1, not 90 s
#    (a drain and a close wait for the upload under way).
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

serve endless
out=$(timeout 20 "$probe" "$url" listall 5000 2>&1); rc=$?
check "endless listing of new keys ends (exit $rc; 124 is a timeout)" "$rc" '^0$'
check "endless listing of new keys is an error" "$out" 'listall: -27: .*more than 5000 objects'
n=$(cat "$tmp/port.lists" 2>/dev/null || echo 0)
# One velo_obj_list() call asks for up to 100000 keys, 1000 a request.
check "it stopped after one call's worth of requests ($n)" \
    "$([ "$n" -ge 1 ] && [ "$n" -le 110 ] && echo yes)" '^yes$'

serve html
out=$(timeout 20 "$probe" "$url" put k/a 2>&1)
check "a web server is refused at open" "$out" 'open failed: .*not a ListBucketResult'

serve ok
out=$(timeout 20 "$probe" "$url" list 5 2>&1)
check "a sound empty bucket lists" "$out" '^list: 0$'

serve hang
bin=$top/build/qemu-src/build
qemu-img() { "$bin/qemu-img" "$@"; }
qemu-img create -q -f raw "$tmp/origin.img" 16M
qemu-img create -q -f raw "$tmp/journal.img" 8M
"$bin/storage-daemon/qemu-storage-daemon" \
    --blockdev "file,node-name=f0,filename=$tmp/origin.img" \
    --blockdev raw,node-name=r0,file=f0 \
    --export "velo,id=e0,node-name=r0,name=disk0,addr.type=unix,addr.path=$tmp/o.sock,writable=on,write-state=$tmp/wst" \
    --pidfile "$tmp/qsd.pid" > "$tmp/qsd.log" 2>&1 &
for _ in $(seq 100); do [ -S "$tmp/o.sock" ] && break; sleep 0.05; done
node="json:{\"driver\":\"velo\",\"server\":{\"type\":\"unix\",\"path\":\"$tmp/o.sock\"},\"export\":\"disk0\",\"cache\":{\"file\":\"$tmp/cache\"},\"write-mode\":\"write-back\",\"journal\":{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"$tmp/journal.img\"}},\"rpo-local\":3,\"objstore\":{\"backend\":\"s3\",\"endpoint\":\"$url\",\"bucket\":\"bkt\",\"access-key\":\"AK\",\"secret-key-secret\":\"s3k\",\"timeout\":1,\"retries\":0}}"
# The origin goes away after the open, so the write stays on this host
# and its segment must go to the store, whose PUT hangs.
( sleep 1.5; kill "$(cat "$tmp/qsd.pid")" ) &
out=$(timeout 20 "$bin/qemu-io" --object secret,id=s3k,data=SK \
      -c 'sleep 2500' -c 'write -P 0x5a 0 64k' -c flush -c 'sleep 2500' \
      "$node" 2>&1); rc=$?
check "a node whose store hangs closes within its timeout (exit $rc; 124 is a timeout)" "$rc" '^0$'
check "its write went through" "$out" 'wrote 65536/65536'
n=$(grep -c . "$tmp/port.puts" 2>/dev/null || echo 0)
check "an upload was tried ($n)" "$n" '^[1-9]'

[ $fail = 0 ] && echo "PASS" || echo "FAIL"
exit $fail
