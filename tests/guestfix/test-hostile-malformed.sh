#!/bin/bash
# test-hostile-malformed.sh - a malformed /etc/fstab (a line with one field) and an fstab with
# NUL bytes: guestfix stops with a parse error naming the file and line (exit 1) and changes
# nothing.
. "$(dirname "$0")/functions.sh"
setup_guestfs
img=$(hostile_copy malformed "write-append /etc/fstab \"/dev/sda2\\n\"")
expect_refusal "$img" 1 '/etc/fstab:3: expected at least 3 fields'
printf '/dev/sda1 / ext4 defaults 0 1\n\0\0binary\n' >"$tmp/nul"
img=$(hostile_copy nul "upload $tmp/nul /etc/fstab")
expect_refusal "$img" 1 '/etc/fstab: contains NUL bytes'
say "ok"
