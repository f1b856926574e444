#!/bin/bash
# test-hostile-backing.sh - a qcow2 whose backing file or external data file points at a host
# file is refused (exit 3) before anything opens it, and the host file is neither read nor
# written (its atime and bytes stay the same).  A mismatched --format is refused too.
. "$(dirname "$0")/functions.sh"
setup_guestfs
secret=$tmp/host-secret.raw
head -c 1048576 /dev/urandom >"$secret"
qemu-img create -q -f qcow2 -F raw -b "$secret" "$tmp/backing.qcow2"
sum=$(sha256sum <"$secret")
touch -a -d '2001-01-01' "$secret"
before=$(stat -c '%X %Y %s' "$secret")
qemu-img create -q -f qcow2 -o data_file="$tmp/data.raw" "$tmp/datafile.qcow2" 1M
head -c 1048576 /dev/urandom >"$tmp/data.raw"
dsum=$(sha256sum <"$tmp/data.raw")
for img in backing datafile; do
    rc=0; run_guestfix --format qcow2 -a "$tmp/$img.qcow2" >"$tmp/$img.log" 2>&1 || rc=$?
    cat "$tmp/$img.log"
    [ $rc -eq 3 ] || fail "$img: exit $rc, expected 3"
    grep -q 'refusing an image whose .* points at a host file' "$tmp/$img.log" ||
        fail "$img: no clear error"
done
[ "$(stat -c '%X %Y %s' "$secret")" = "$before" ] || fail "the host file was touched"
[ "$(sha256sum <"$secret")" = "$sum" ] || fail "the host file changed"
[ "$(sha256sum <"$tmp/data.raw")" = "$dsum" ] || fail "the data file changed"
# A qcow2 announced as raw is not probed: guestfix checks it as raw, and libguestfs sees raw.
rc=0; run_guestfix --format vmdk -a "$tmp/backing.qcow2" >"$tmp/fmt.log" 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "qcow2 given as vmdk: exit $rc, expected 3"
say "ok"
