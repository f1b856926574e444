#!/bin/bash
# test-hostile-huge.sh - a guest with a 4 MiB /etc/fstab: guestfix checks the size before
# reading and refuses (exit 3) naming the file and the limit.
. "$(dirname "$0")/functions.sh"
setup_guestfs
head -c 3000000 /dev/urandom | base64 >"$tmp/huge"
img=$(hostile_copy huge "upload $tmp/huge /etc/fstab")
expect_refusal "$img" 3 '/etc/fstab: [0-9]+ bytes, larger than the [0-9]+-byte limit'
say "ok"
