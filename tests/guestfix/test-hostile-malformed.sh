#!/bin/bash
# test-hostile-malformed.sh - malformed guest configuration stops guestfix with an error naming
# the file (and line), before any change: guestfix parses everything in a silent dry run first.
#   - /etc/network/interfaces with an option outside any stanza: exit 1, "FILE:1: ...";
#   - /etc/default/grub with NUL bytes: exit 1, "contains NUL bytes";
#   - /etc/fstab with a one-field line: libguestfs inspection itself rejects it (augeas), exit 4.
. "$(dirname "$0")/functions.sh"
setup_guestfs
img=$(hostile_copy ifupdown "write /etc/network/interfaces \"  address 192.0.2.99\\nauto lo\\n\"")
expect_refusal "$img" 1 "/etc/network/interfaces:1: option 'address' outside any stanza"
printf 'GRUB_TIMEOUT=5\n\0\0binary\n' >"$tmp/nul"
img=$(hostile_copy nul "upload $tmp/nul /etc/default/grub")
expect_refusal "$img" 1 '/etc/default/grub: contains NUL bytes'
img=$(hostile_copy fstab "write-append /etc/fstab \"/dev/sda2\\n\"")
expect_refusal "$img" 4 'inspect_os: /etc/fstab'
say "ok"
