#!/bin/bash
# test-hostile-symlink.sh - a guest whose /etc/fstab is a symlink pointing out of place (to the
# guest's /etc/shadow through "../../../.."): guestfix refuses to edit through it (exit 3), names
# the file, and changes nothing.  Paths are only ever resolved inside the appliance.
. "$(dirname "$0")/functions.sh"
setup_guestfs
host_shadow=$(sha256sum </etc/shadow)
img=$(hostile_copy symlink "rm /etc/fstab" "ln-s ../../../../etc/shadow /etc/fstab")
expect_refusal "$img" 3 '/etc/fstab: /etc/fstab is a symbolic link'
[ "$(sha256sum </etc/shadow)" = "$host_shadow" ] || fail "host /etc/shadow changed"
say "ok"
