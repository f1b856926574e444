#!/bin/bash
# test-keep-ip.sh - with --keep-ip the cloud NIC gets the old NIC's static address
# (192.0.2.10/24 from ens192's stanza, which stays for on-prem); the guest boots on virtio-blk
# with that address on eth0.
. "$(dirname "$0")/functions.sh"
setup_guestfs
cp "$(guest_image)" "$tmp/k.qcow2"
run_guestfix --keep-ip --format qcow2 -a "$tmp/k.qcow2" | tee "$tmp/run.log" || fail "guestfix failed"
guest_cat "$tmp/k.qcow2" /etc/network/interfaces >"$tmp/interfaces"
cat "$tmp/interfaces"
grep -q '^iface eth0 inet static' "$tmp/interfaces" || fail "no static stanza for eth0"
grep -q 'address 192.0.2.10/24' "$tmp/interfaces" || fail "address not kept"
grep -q '^iface ens192 inet static' "$tmp/interfaces" || fail "the old stanza is gone"
boot "$tmp/k.qcow2" virtio "$tmp/serial.log" >"$tmp/boot.log" 2>&1 ||
    { cat "$tmp/boot.log"; fail "no boot on virtio-blk"; }
net=$(grep -ao 'NET:.*' "$tmp/serial.log" | tr -d '\r' || true)
echo "$net" | grep -Eq 'eth0 +UP +192\.0\.2\.10/24' || fail "eth0 lacks the static address: $net"
say "ok: $net"
