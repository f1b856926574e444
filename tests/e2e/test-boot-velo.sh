#!/bin/bash
# test-boot-velo.sh: end to end, the project's VMware-like test guest boots
# "in the cloud" under our qemu-system-x86_64 (TCG) with its disk streamed
# through velo from an "on-prem" velo export, over the emulated WAN
# (tests/wan/velo-link: 50 ms RTT, 100 Mbit/s).  The guest must reach its
# BOOT-OK marker; query-blockstats at the marker must show the disk came
# over the wire and only part of it (streaming, not copying).
#
# Exit: 0 pass, 1 fail, 77 skip (not root: the guest build needs debootstrap).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/build/bin
out=$top/build/e2e
[ "$(id -u)" = 0 ] || { echo "SKIP: building the test guest needs root (debootstrap)"; exit 77; }
[ -x "$bin/qemu-storage-daemon" ] || { echo "FAIL: QEMU not built; run make"; exit 1; }
make -s -C "$top/tests/wan"

mkdir -p "$out"
"$top/tests/guest/build-guest.sh" "$out/guest"

work=$(mktemp -d /tmp/velo-e2e.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# On-prem: the guest's qcow2, served by qemu-storage-daemon's velo export.
"$bin/qemu-storage-daemon" \
    --blockdev file,node-name=f0,filename="$out/guest/guest.qcow2",read-only=on \
    --blockdev qcow2,node-name=q0,file=f0,read-only=on \
    --export velo,id=disk0,node-name=q0,addr.type=unix,addr.path="$work/onprem.sock" \
    --pidfile "$work/qsd.pid" > "$work/qsd.log" 2>&1 &
pids+=($!)
# The WAN between the sites.
"$top/tests/wan/velo-link" --listen "unix:$work/wan.sock" \
    --connect "unix:$work/onprem.sock" --delay-ms 25 --rate 100m \
    --control "$work/wan.ctl" --pidfile "$work/link.pid" --log "$work/link.log" &
pids+=($!)
for f in "$work/qsd.pid" "$work/link.pid"; do
    for _ in $(seq 100); do [ -s "$f" ] && break; sleep 0.1; done
    [ -s "$f" ] || { echo "FAIL: $f never appeared"; cat "$work"/*.log; exit 1; }
done

# Cloud: boot from the streamed disk.
boot() {
    "$top/tests/guest/boot-guest.sh" --timeout 240 --controller pvscsi \
        --serial-log "$work/serial.log" --blockstats "$work/stats.json" -- \
        -blockdev driver=velo,node-name=d0,server.type=unix,server.path="$work/wan.sock",export=disk0,cache.file="$work/cache.velo"
}
summary() {
python3 - "$work/stats.json" "$summary_kind" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
for st in stats:
    if st.get('node-name') == 'd0':
        v = st['driver-specific']
        break
else:
    sys.exit('FAIL: no stats for node d0')
print(f"fetched {v['bytes-fetched'] / 2**20:.1f} MiB in {v['fetches']} fetches "
      f"({v['readahead-fetches']} readahead), wire {v['bytes-wire'] / 2**20:.1f} MiB, "
      f"RAM hits {v['ram-hits']}, cache hits {v['cache-hits']}, misses {v['misses']}, "
      f"zero reads {v['zero-reads']}, mean fetch {v['fetch-latency-avg-us'] / 1000:.1f} ms")
disk = v['extents-total'] * v['extent-size']
reads = v['ram-hits'] + v['cache-hits'] + v['misses'] + v['zero-reads']
if reads:
    print(f"hit rates: RAM {100 * v['ram-hits'] / reads:.0f}%, cache file "
          f"{100 * v['cache-hits'] / reads:.0f}%, zero map {100 * v['zero-reads'] / reads:.0f}%, "
          f"fetched {100 * v['misses'] / reads:.0f}% of {reads} guest reads")
if sys.argv[2] == 'cold' and not 0 < v['bytes-fetched'] < disk / 2:
    sys.exit(f"FAIL: fetched {v['bytes-fetched']} bytes of a {disk}-byte disk")
PY
}

echo "=== cold boot: empty cache, disk streamed over 50 ms RTT / 100 Mbit/s ==="
summary_kind=cold
boot
summary
if [ -n "${VELO_DEMO:-}" ]; then
    echo "=== warm boot: same cache file (guest writes from the first boot are pinned in it) ==="
    boot
    summary_kind=warm
    summary
fi
echo "PASS: guest booted through velo"
