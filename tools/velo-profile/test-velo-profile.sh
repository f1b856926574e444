#!/bin/sh
# test-velo-profile.sh: the velo-profile tool's command line without QEMU:
# usage, a foreign file listed as INVALID and never deleted, a missing file.
# Profiles recorded by QEMU are exercised by the velo-profile iotest.
#
# Usage: test-velo-profile.sh [PATH-TO-velo-profile]
set -u
tool=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin/velo-profile}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
check() {   # check NAME EXPECTED-STATUS CMD...
    name=$1 want=$2; shift 2
    "$@" > "$dir/out" 2>&1
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "not ok - $name (status $got, want $want)"; sed 's/^/# /' "$dir/out"; fail=1
    else
        echo "ok - $name"
    fi
}
echo "1..8"
check "--help" 0 "$tool" --help
check "no command" 2 "$tool"
check "bad command" 2 "$tool" frobnicate
echo 'not a profile' > "$dir/foreign.profile"
check "list a directory" 0 "$tool" list "$dir"
grep -q "foreign.profile	INVALID	bad profile .*not a velo profile" "$dir/out" || { echo "not ok - list says INVALID"; fail=1; }
check "show a foreign file" 1 "$tool" show "$dir/foreign.profile"
check "drop refuses a foreign file" 1 "$tool" drop "$dir/foreign.profile"
[ -f "$dir/foreign.profile" ] || { echo "not ok - foreign file deleted"; fail=1; }
check "drop a missing file" 1 "$tool" drop "$dir/missing.profile"
mkdir "$dir/empty"
check "list an empty directory" 0 "$tool" list "$dir/empty"
exit $fail
