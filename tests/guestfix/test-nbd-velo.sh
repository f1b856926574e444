#!/bin/bash
# test-nbd-velo.sh - guestfix on a velo-streamed disk: the on-prem qemu-storage-daemon exports
# the guest with the velo export; a cloud qemu-storage-daemon opens it with the velo driver
# (write-mode=cloud-persist, a cache file) and exports that node over NBD; guestfix adapts
# nbd+unix://.  The writes land in the cloud layer: the on-prem image is byte-identical
# afterwards, and the cloud view has the changes.
. "$(dirname "$0")/functions.sh"
setup_guestfs
qsd=$top/build/bin/qemu-storage-daemon
[ -x "$qsd" ] || fail "$qsd not built (make)"
cp "$(guest_image)" "$tmp/onprem.qcow2"
sum=$(sha256sum <"$tmp/onprem.qcow2")

"$qsd" --blockdev file,node-name=f0,filename="$tmp/onprem.qcow2",read-only=on \
    --blockdev qcow2,node-name=q0,file=f0,read-only=on \
    --export velo,id=disk0,node-name=q0,addr.type=unix,addr.path="$tmp/onprem.sock" \
    --pidfile "$tmp/onprem.pid" >"$tmp/onprem.log" 2>&1 &
cleanup "kill $! 2>/dev/null; wait $! 2>/dev/null"
for _ in $(seq 100); do [ -s "$tmp/onprem.pid" ] && break; sleep 0.1; done
"$qsd" --blockdev driver=velo,node-name=v0,server.type=unix,server.path="$tmp/onprem.sock",export=disk0,cache.file="$tmp/cache.velo",write-mode=cloud-persist \
    --nbd-server addr.type=unix,addr.path="$tmp/nbd.sock" \
    --export type=nbd,id=e0,node-name=v0,name=disk0,writable=on \
    --pidfile "$tmp/cloud.pid" >"$tmp/cloud.log" 2>&1 &
cleanup "kill $! 2>/dev/null; wait $! 2>/dev/null"
for _ in $(seq 100); do [ -S "$tmp/nbd.sock" ] && break; sleep 0.1; done
[ -S "$tmp/nbd.sock" ] || { cat "$tmp"/*.log; fail "the cloud NBD export did not start"; }

uri="nbd+unix:///disk0?socket=$tmp/nbd.sock"
run_guestfix -a "$uri" | tee "$tmp/run.log" || { cat "$tmp"/*.log; fail "guestfix on $uri failed"; }
grep -q '^modify /etc/fstab' "$tmp/run.log" || fail "nothing adapted"
cloud_fstab=$(printf '%s\n' "add-drive disk0 protocol:nbd server:unix:$tmp/nbd.sock format:raw readonly:true" \
    run 'mount-ro /dev/sda1 /' 'cat /etc/fstab' | guestfish) || fail "cannot read the cloud view"
echo "$cloud_fstab" | grep -q '^UUID=' || fail "the cloud view lacks the change: $cloud_fstab"
kill "$(cat "$tmp/cloud.pid")" "$(cat "$tmp/onprem.pid")"; sleep 1
[ "$(sha256sum <"$tmp/onprem.qcow2")" = "$sum" ] || fail "the on-prem image changed"
guest_cat "$tmp/onprem.qcow2" /etc/fstab | grep -q '^/dev/sda1' || fail "on-prem fstab changed"
say "ok: cloud view adapted, on-prem original unchanged"
