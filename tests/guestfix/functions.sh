# functions.sh - shared helpers for tests/guestfix/test-*.sh (source it).
#
# Each test exits 0 (pass), 77 (skip, with a reason) or anything else (fail).  Tests share, under
# build/guestfix-tests/, the test guest (tests/guest/build-guest.sh, itself cached) and one
# guestfix-converted copy of it, made once per guest and guestfix binary; a test that changes an
# image works on its own copy.

set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$top/build/guestfix-tests
guestfix=${GUESTFIX:-$top/build/bin/guestfix}
prog=$(basename "$0" .sh)
export PATH=$top/build/bin:$PATH
# shellcheck source=guestfs-env.sh
. "$top/tests/guestfix/guestfs-env.sh"

say() { echo "$prog: $*"; }
fail() { echo "$prog: FAIL: $*" >&2; exit 1; }
skip() { echo "$prog: SKIP: $*"; exit 77; }

# tmpdir: a per-test scratch directory, removed on exit.
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/$prog.XXXXXX")
cleanup_hooks=()
on_exit() { local h; for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done; rm -rf "$tmp"; }
trap on_exit EXIT
cleanup() { cleanup_hooks+=("$1"); }

requires_root() { [ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, libguestfs appliance)"; }
requires() { command -v "$1" >/dev/null 2>&1 || skip "$1 not installed (scripts/install-deps.sh)"; }

# setup_guestfs: everything a test running guestfix needs.
setup_guestfs() {
    requires_root
    requires guestfish
    requires qemu-img
    [ -x "$guestfix" ] || fail "$guestfix not built (make tools)"
    guestfs_env_setup || fail "cannot set up the libguestfs appliance kernel"
    mkdir -p "$work"
}

# guest_image: print the path of the pristine test guest (qcow2), building it if needed.
guest_image() {
    local stamp
    stamp=$(sha256sum "$top/tests/guest/build-guest.sh" | cut -c1-16)
    if [ ! -f "$work/guest/guest.qcow2" ] || [ "$(cat "$work/guest/stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$work/guest"
        nice "$top/tests/guest/build-guest.sh" "$work/guest" >"$work/build-guest.log" 2>&1 ||
            { tail -n 20 "$work/build-guest.log" >&2; fail "build-guest.sh failed"; }
        [ -f "$work/guest/guest.qcow2" ] || fail "build-guest.sh made no qcow2"
        echo "$stamp" >"$work/guest/stamp"
    fi
    echo "$work/guest/guest.qcow2"
}

# run_guestfix ARGS...: run guestfix niced, output to the terminal.  A TCG appliance on a
# loaded 2-core machine can stall; the timeout turns a hang into a failure instead of a stuck
# suite.
run_guestfix() { timeout --kill-after=10 900 nice "$guestfix" "$@"; }
# guestfish, with the same guard.
guestfish() { timeout --kill-after=10 600 guestfish "$@"; }

# converted_image: print the path of the shared converted image (read it, or copy it before
# changing it).  Its guestfix output is in $work/converted.log and report in converted.json.
converted_image() {
    local g stamp
    g=$(guest_image)
    stamp="$(cat "$work/guest/stamp") $(sha256sum "$guestfix" | cut -c1-16)"
    if [ ! -f "$work/converted.qcow2" ] || [ "$(cat "$work/converted.stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -f "$work/converted.qcow2" "$work/converted.stamp"
        cp "$g" "$work/converted.tmp.qcow2"
        run_guestfix --json "$work/converted.json" --format qcow2 -a "$work/converted.tmp.qcow2" \
            >"$work/converted.log" 2>&1 || { cat "$work/converted.log" >&2; fail "guestfix failed"; }
        mv "$work/converted.tmp.qcow2" "$work/converted.qcow2"
        echo "$stamp" >"$work/converted.stamp"
    fi
    echo "$work/converted.qcow2"
}

# listing IMG OUT [FORMAT]: every path in the guest (find /) and the SHA-256 of every regular
# file, sorted, into OUT.
listing() {
    guestfish --ro --format="${3:-qcow2}" -a "$1" -i <<EOF >/dev/null
checksums-out sha256 / $tmp/sums
find / | cat > $tmp/find
EOF
    { sort -k2 "$tmp/sums"; sed 's/^/path /' "$tmp/find" | sort; } >"$2"
}

# guest_cat IMG PATH: print a guest file.
guest_cat() { guestfish --ro --format=qcow2 -a "$1" -i cat "$2"; }

# boot IMG CONTROLLER SERIAL-LOG [boot-guest options]: boot under TCG; the NIC is virtio-net
# for --controller virtio (the cloud) and vmxnet3 otherwise (on-prem).
boot() {
    local img=$1 ctl=$2 log=$3
    shift 3
    local nic=(--nic vmxnet3) extra=()
    if [ "$ctl" = virtio ]; then
        nic=(--nic none)
        extra=(-nic user,restrict=on,model=virtio-net-pci)
    fi
    nice "$top/tests/guest/boot-guest.sh" --controller "$ctl" "${nic[@]}" --timeout 180 \
        --serial-log "$log" "$@" -- \
        -blockdev "driver=qcow2,node-name=d0,file.driver=file,file.filename=$img" "${extra[@]}"
}

# hostile_copy NAME GUESTFISH-COMMANDS...: a copy of the pristine guest changed by guestfish
# commands (run in the appliance, never on the host); prints its path.
hostile_copy() {
    local out=$tmp/$1.qcow2
    shift
    cp "$(guest_image)" "$out"
    printf '%s\n' "$@" | guestfish --format=qcow2 -a "$out" -i >/dev/null || fail "guestfish: $*"
    echo "$out"
}

# expect_refusal IMG RC PATTERN: guestfix on IMG exits RC with an error matching PATTERN, and
# made no change (no state directory in the guest).
expect_refusal() {
    local rc=0
    run_guestfix --format qcow2 -a "$1" >"$tmp/refusal.log" 2>&1 || rc=$?
    cat "$tmp/refusal.log"
    [ "$rc" -eq "$2" ] || fail "exit $rc, expected $2"
    grep -Eq "$3" "$tmp/refusal.log" || fail "no error matching '$3'"
    # Mounted by hand, not -i: some hostile guests fail inspection itself.
    [ "$(guestfish --ro --format=qcow2 -a "$1" run : mount-ro /dev/sda1 / : exists /var/lib/guestfix)" = false ] ||
        fail "guestfix changed the guest before refusing"
}
