#!/bin/bash
# test-adapt-boots-virtio.sh - after guestfix the guest reaches BOOT-OK on virtio-blk, with a
# DHCP address on the cloud NIC (virtio-net, user networking restrict=on); the JSON report
# lists the changes.
. "$(dirname "$0")/functions.sh"
setup_guestfs
img=$(converted_image)
cat "$work/converted.log"
cp "$img" "$tmp/c.qcow2"
boot "$tmp/c.qcow2" virtio "$tmp/serial.log" >"$tmp/boot.log" 2>&1 ||
    { cat "$tmp/boot.log"; fail "the converted guest did not boot on virtio-blk"; }
tail -n 2 "$tmp/boot.log"
net=$(grep -ao 'NET:.*' "$tmp/serial.log" | tr -d '\r' || true)
echo "$net" | grep -Eq 'eth0 +UP +10\.0\.2\.[0-9]+/24' || fail "no DHCP address on eth0: $net"
grep -aq 'SYSINIT: .* root /dev/vda1' "$tmp/serial.log" || fail "root is not on /dev/vda1"

python3 - "$work/converted.json" <<'PY' || fail "bad JSON report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["program"] == "guestfix" and r["exit-code"] == 0 and not r["dry-run"], r
paths = {a["path"] for a in r["actions"] if a["action"] in ("modify", "create")}
for p in ("/etc/fstab", "/etc/default/grub", "/boot/grub/grub.cfg",
          "/etc/initramfs-tools/modules", "/etc/network/interfaces",
          "/etc/systemd/network/10-guestfix-cloud-nic.link"):
    assert p in paths, p
assert any(a["action"] == "run" and "update-initramfs" in a["path"] for a in r["actions"])
assert r["changes"] == len([a for a in r["actions"] if a["action"] not in ("note", "warning")])
PY
say "ok: BOOT-OK on virtio-blk; $net"
