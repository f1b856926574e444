#!/bin/bash
# run-all.sh: run every Velo test and print one summary line,
# "N passed, N failed, N skipped", which CI reads.
#
# Suites, in order: GLib unit tests, the link emulator self-test, the object
# store against the dir backend and a throw-away radosgw, the named
# qemu-iotests (run by QEMU's own ./check against our binaries), guestfix
# (its editors' unit tests, then tests/guestfix/test-*.sh on the test guest),
# and the end-to-end boot test.  Set
# VELO_TESTS="unit wan objstore iotests guestfix e2e" to choose.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
tree=$top/build/qemu-src
qbuild=$tree/build
suites=${VELO_TESTS:-unit wan objstore iotests guestfix e2e}
pass=0 fail=0 skip=0
failed_names=()

note() { printf '%s\n' "$*"; }
result() {
    # result NAME RC   (0 pass, 77 skip, other fail)
    case "$2" in
        0) pass=$((pass + 1)); note "PASS: $1" ;;
        77) skip=$((skip + 1)); note "SKIP: $1" ;;
        *) fail=$((fail + 1)); failed_names+=("$1"); note "FAIL: $1 (exit $2)" ;;
    esac
}

run_unit() {
    make -s -C "$top/tests/unit" all || { result unit-build 1; return; }
    for t in "$top"/build/unit/test-*; do
        [ -x "$t" ] || continue
        "$t" --tap > "$top/build/unit/$(basename "$t").log" 2>&1
        result "unit/$(basename "$t")" $?
    done
    # Tools built on the pure code (velo-profile), with their own tests.
    for t in "$top"/tools/*/test-*.sh; do
        [ -x "$t" ] || continue
        d=$(dirname "$t")
        make -s -C "$d" all || { result "tools/$(basename "$d")-build" 1; continue; }
        "$t" > "$top/build/unit/$(basename "$t" .sh).log" 2>&1
        result "tools/$(basename "$t" .sh)" $?
    done
}

run_wan() {
    make -s -C "$top/tests/wan" || { result wan-build 1; return; }
    for t in "$top"/tests/wan/test-*.sh; do
        [ -x "$t" ] || continue
        "$t" > "$top/build/$(basename "$t").log" 2>&1
        result "wan/$(basename "$t" .sh)" $?
    done
}

run_objstore() {
    make -s -C "$top/tests/objstore" || { result objstore-build 1; return; }
    run_scripts objstore "$top/build/objstore-" "$top"/tests/objstore/test-*.sh
    grep -h '^# figure' "$top"/build/objstore-test-*.log
}

run_iotests() {
    local dir=$tree/tests/qemu-iotests/tests t name out rc fmt
    [ -x "$qbuild/qemu-img" ] || { note "iotests: QEMU not built; run make"; result iotests-build 1; return; }
    # Link our named tests into QEMU's tree (new ones appear without a rebuild).
    for t in "$top"/tests/qemu-iotests/tests/*; do
        ln -sfn "$t" "$dir/$(basename "$t")"
    done
    for t in "$top"/tests/qemu-iotests/tests/*; do
        name=$(basename "$t")
        case "$name" in *.out|*.out.*|*.py|*.pyc|__pycache__) continue ;; esac
        [ -x "$t" ] || continue
        # A test runs with each format its "# formats:" line names (default raw).
        fmts=$(sed -n 's/^# formats: *//p' "$t")
        for fmt in ${fmts:-raw}; do
            out=$(cd "$qbuild/tests/qemu-iotests" && ./check -"$fmt" "$name" 2>&1)
            rc=$?
            printf '%s\n' "$out" > "$top/build/iotest-$name-$fmt.log"
            if printf '%s' "$out" | grep -q "^Not run: "; then
                result "iotests/$name ($fmt)" 77
            elif [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "^Passed all 1 iotests"; then
                result "iotests/$name ($fmt)" 0
            else
                printf '%s\n' "$out" | tail -n 40
                result "iotests/$name ($fmt)" 1
            fi
        done
    done
}

# run_scripts SUITE LOGPREFIX SCRIPT...: run each executable test script; its output goes to
# LOGPREFIX<name>.log (tail shown on failure), its exit code to result().
run_scripts() {
    local suite=$1 logprefix=$2 t name rc
    shift 2
    for t in "$@"; do
        [ -x "$t" ] || continue
        name=$(basename "$t" .sh)
        "$t" > "$logprefix$name.log" 2>&1
        rc=$?
        [ $rc -ne 0 ] && [ $rc -ne 77 ] && tail -n 30 "$logprefix$name.log"
        result "$suite/$name" $rc
    done
}

run_guestfix() {
    make -s -C "$top/guestfix" all unit || { result guestfix-build 1; return; }
    "$top/build/guestfix/test-editors" --tap > "$top/build/guestfix/test-editors.log" 2>&1
    result "guestfix/test-editors" $?
    run_scripts guestfix "$top/build/guestfix/" "$top"/tests/guestfix/test-*.sh
}

run_e2e() {
    run_scripts e2e "$top/build/e2e-" "$top"/tests/e2e/test-*.sh
}

mkdir -p "$top/build"
for s in $suites; do
    note "=== $s ==="
    "run_$s"
done
note ""
[ ${#failed_names[@]} -gt 0 ] && note "Failed: ${failed_names[*]}"
note "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
