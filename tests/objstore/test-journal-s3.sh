#!/usr/bin/env bash
# test-journal-s3.sh: a velo disk recovered on a second host from journal
# segments in a real S3 server (a throw-away Ceph radosgw, radosgw.sh) plus
# the origin.  Host A writes in write-back while the origin is down; its
# segments reach the bucket within rpo-local; host A is killed (-9).  Host
# B opens the disk with a new journal and cache: it must read every write
# host A had in the store, and after its drain the origin image must equal
# host A's view; the bucket must then hold no segment.
#
# Exit status: 0 pass, 1 fail, 77 skip (not root, Ceph not installed, or
# the fixed ports taken).

set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=$top/build/bin

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to run the Ceph daemons"; exit 77; }
command -v radosgw >/dev/null || { echo "SKIP: radosgw not installed: run scripts/install-deps.sh"; exit 77; }
[ -x "$bin/qemu-io" ] || { echo "FAIL: QEMU not built ($bin/qemu-io)"; exit 1; }
make -s -C "$here" || { echo "FAIL: could not build objstore-check"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-journal-s3.XXXXXX")
qsd_pid= a_pid=
cleanup() {
    [ -n "$a_pid" ] && kill -9 "$a_pid" 2>/dev/null
    [ -n "$qsd_pid" ] && kill -9 "$qsd_pid" 2>/dev/null
    exec 3>&- 2>/dev/null
    "$here/radosgw.sh" stop "$tmp/rgw" >/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; tail -n 20 "$f"; done; exit 1; }

"$here/radosgw.sh" start "$tmp/rgw" >/dev/null
rc=$?
[ $rc -eq 77 ] && { echo "SKIP: radosgw.sh could not run here"; exit 77; }
[ $rc -eq 0 ] || fail "radosgw.sh start failed (exit $rc)"
set -a
. "$tmp/rgw/env"
set +a

cd "$tmp" || exit 1
"$bin/qemu-img" create -q -f raw src.img 8M
"$bin/qemu-io" -f raw -c 'write -P 0x11 0 8M' src.img >/dev/null
cp src.img expect.img
"$bin/qemu-img" create -q -f raw jA.img 8M
"$bin/qemu-img" create -q -f raw jB.img 8M

start_origin() {
    rm -f velo.sock
    "$bin/qemu-storage-daemon" \
        --blockdev file,node-name=f0,filename=src.img \
        --blockdev raw,node-name=d0,file=f0 \
        --export velo,id=disk0,node-name=d0,addr.type=unix,addr.path=$tmp/velo.sock,writable=on,write-state=$tmp/wstate \
        >> qsd.log 2>&1 &
    qsd_pid=$!
    for _ in $(seq 100); do
        [ -S velo.sock ] && sleep 0.3 && return
        sleep 0.1
    done
    fail "the origin did not start"
}
expect() { "$bin/qemu-io" -f raw -c "$1" expect.img >/dev/null; }
# wait_log FILE N: until qemu-io reported N writes in FILE.
wait_log() {
    for _ in $(seq 300); do
        [ "$(grep -o 'wrote [0-9]' "$1" 2>/dev/null | wc -l)" -ge "$2" ] && return
        sleep 0.1
    done
    fail "qemu-io did not get to write $2 in $1"
}

velo="driver=velo,server.type=unix,server.path=$tmp/velo.sock,export=disk0"
velo="$velo,write-mode=write-back,reconnect-delay=1,rpo-local=3"
velo="$velo,objstore.backend=s3,objstore.endpoint=$VELO_S3_ENDPOINT"
velo="$velo,objstore.bucket=velo-journal,objstore.region=$VELO_S3_REGION"
velo="$velo,objstore.access-key=$VELO_S3_ACCESS_KEY,objstore.secret-key-secret=sk"
secret="secret,id=sk,data=$VELO_S3_SECRET_KEY"
journal() { echo "journal.driver=raw,journal.file.driver=file,journal.file.filename=$tmp/$1"; }

# The bucket's keys, listed with curl's own SigV4 (not our client).
list_bucket() {
    local keys
    keys=$(curl -s --aws-sigv4 "aws:amz:$VELO_S3_REGION:s3" \
           -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
           --user "$VELO_S3_ACCESS_KEY:$VELO_S3_SECRET_KEY" \
           "$VELO_S3_ENDPOINT/velo-journal?list-type=2") || fail "cannot list the bucket"
    echo "$keys" | grep -q '<Name>velo-journal</Name>' || fail "bad listing: $keys"
    echo "$keys" | grep -o '<Key>[^<]*</Key>'
}

# Host A, driven through a FIFO so each step waits for the one before.
start_origin
mkfifo a.in
"$bin/qemu-io" --object "$secret" --image-opts "$velo,cache.file=$tmp/cA,$(journal jA.img)" \
    < a.in > a.log 2>&1 &
a_pid=$!
exec 3> a.in
echo 'write -P 0x21 0 64k' >&3; expect 'write -P 0x21 0 64k'
echo 'flush' >&3
wait_log a.log 1
sleep 1.5                       # let the drain take it to the origin
kill -9 "$qsd_pid"; wait "$qsd_pid" 2>/dev/null; qsd_pid=
n=1
for cmd in 'write -P 0x22 64k 64k' 'write -P 0x33 1M 128k' 'write -z 4M 64k' \
           'write -P 0x44 2M 1536k'; do
    echo "$cmd" >&3; expect "$cmd"; n=$((n + 1))
done
echo 'flush' >&3
wait_log a.log $n
sleep 4                         # rpo-local=3: the segments go up within it
kill -9 "$a_pid"; wait "$a_pid" 2>/dev/null; a_pid=
exec 3>&-
"$bin/qemu-img" compare -q -f raw -F raw src.img expect.img &&
    fail "the origin already has host A's writes: nothing to recover"
list_bucket | grep -q '/seg/' || fail "host A put no segment in the bucket"

# Host B: a new journal and cache, the same bucket.
start_origin
"$bin/qemu-io" --object "$secret" --image-opts "$velo,cache.file=$tmp/cB,$(journal jB.img)" \
    -c 'read -P 0x21 0 64k' -c 'read -P 0x22 64k 64k' -c 'read -P 0x33 1M 128k' \
    -c 'read -P 0 4M 64k' -c 'read -P 0x44 2M 1536k' -c 'sleep 6000' > b.log 2>&1 ||
    fail "host B failed"
grep -q 'Pattern verification failed' b.log && fail "host B misread a recovered write"
kill "$qsd_pid"; wait "$qsd_pid" 2>/dev/null; qsd_pid=
list_bucket | grep -q '/seg/' && fail "segments left after the drain"
"$bin/qemu-img" compare -f raw -F raw src.img expect.img > cmp.log 2>&1 ||
    fail "after host B's drain the origin differs from host A's view: $(cat cmp.log)"
echo "PASS: host B recovered host A's writes from radosgw and drained them to the origin"
