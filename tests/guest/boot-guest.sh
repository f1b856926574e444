#!/bin/bash
# boot-guest.sh - boot a test guest under QEMU (TCG) and wait for its BOOT-OK serial marker.
#
#   boot-guest.sh [OPTIONS] -- QEMU-ARGS...
#
# QEMU-ARGS define the disk as block node "d0" (see --node), e.g.
#   -blockdev driver=raw,node-name=d0,file.driver=file,file.filename=guest.raw
# and this script attaches that node to the chosen controller:
#   ide     -device ide-hd,drive=d0
#   pvscsi  -device pvscsi,id=scsi0 -device scsi-hd,drive=d0,bus=scsi0.0
#   virtio  -device virtio-blk-pci,drive=d0
# The machine is always: -machine pc -accel tcg -m 512 -nographic -display none -monitor none
# -no-reboot -serial file:LOG and -nic user,restrict=on,model=vmxnet3 (or -nic none), with -L for
# each of /usr/share/qemu, /usr/share/seabios and /usr/lib/ipxe/qemu that exists.
#
# The guest (build-guest.sh) writes "BOOT-OK" to its ttyS0 once multi-user is reached. We poll the
# serial file; on the marker we optionally save query-blockstats and run a hook, then kill QEMU.
#
# Exit: 0 marker seen ("boot-guest: BOOT-OK after N.N s"); 1 timeout, QEMU exited, a fail pattern
# was seen, the hook failed, or QEMU/firmware is missing; 2 usage.

set -euo pipefail

prog=boot-guest
self=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$self")/../.." && pwd)
readonly FIRMWARE_DIRS=(/usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu)

usage() {
    cat <<EOF
usage: $0 [OPTIONS] -- QEMU-ARGS...
  --qemu PATH           qemu-system-x86_64 (default: the repo's build/bin/, else PATH)
  --timeout SEC         give up after SEC seconds (default 120)
  --serial-log FILE     the guest's serial output (default: a temporary file)
  --qemu-log FILE       QEMU's own stdout/stderr (default: a temporary file)
  --controller C        ide, pvscsi or virtio (default pvscsi)
  --node NAME           block node to attach (default d0)
  --nic vmxnet3|none    guest NIC (default vmxnet3, user networking with restrict=on)
  --memory MIB          guest RAM (default 512)
  --marker STRING       success marker (default BOOT-OK)
  --fail-on REGEX       fail at once when the serial log matches this ERE
                        (default 'ALERT! |Kernel panic - not syncing'; '' disables)
  --qmp SOCK            add a QMP server socket at SOCK
  --blockstats FILE     at the marker, save query-blockstats (JSON) to FILE (needs python3)
  --on-boot CMD         at the marker, run 'sh -c CMD' before QEMU is killed, with
                        BOOT_GUEST_QMP, BOOT_GUEST_PID, BOOT_GUEST_SERIAL set; failure fails the boot
EOF
    exit 2
}

say() { echo "$prog: $*"; }
die() { echo "$prog: error: $*" >&2; exit 1; }

qemu='' timeout=120 serial_log='' qemu_log='' controller=pvscsi node=d0 nic=vmxnet3 memory=512
marker=BOOT-OK fail_on='ALERT! |Kernel panic - not syncing' qmp='' blockstats='' on_boot=''
while [ $# -gt 0 ]; do
    case $1 in
    --qemu) qemu=${2?}; shift 2 ;;
    --timeout) timeout=${2?}; shift 2 ;;
    --serial-log) serial_log=${2?}; shift 2 ;;
    --qemu-log) qemu_log=${2?}; shift 2 ;;
    --controller) controller=${2?}; shift 2 ;;
    --node) node=${2?}; shift 2 ;;
    --nic) nic=${2?}; shift 2 ;;
    --memory) memory=${2?}; shift 2 ;;
    --marker) marker=${2?}; shift 2 ;;
    --fail-on) fail_on=${2?}; shift 2 ;;
    --qmp) qmp=${2?}; shift 2 ;;
    --blockstats) blockstats=${2?}; shift 2 ;;
    --on-boot) on_boot=${2?}; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "$prog: unknown option $1" >&2; usage ;;
    esac
done
extra=("$@")
[ ${#extra[@]} -gt 0 ] || { echo "$prog: no QEMU-ARGS defining node $node after --" >&2; usage; }
[[ $timeout =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "$prog: bad --timeout $timeout" >&2; usage; }

# The controller table: the -device arguments that attach $node.
case $controller in
ide)    attach=(-device "ide-hd,drive=$node,bootindex=0") ;;
pvscsi) attach=(-device 'pvscsi,id=scsi0' -device "scsi-hd,drive=$node,bus=scsi0.0,bootindex=0") ;;
virtio) attach=(-device "virtio-blk-pci,drive=$node,bootindex=0") ;;
*) echo "$prog: unknown --controller $controller" >&2; usage ;;
esac
case $nic in
vmxnet3) netargs=(-nic 'user,restrict=on,model=vmxnet3') ;;
none)    netargs=(-nic none) ;;
*) echo "$prog: unknown --nic $nic" >&2; usage ;;
esac

if [ -z "$qemu" ]; then
    if [ -x "$repo/build/bin/qemu-system-x86_64" ]; then
        qemu=$repo/build/bin/qemu-system-x86_64
    else
        qemu=$(command -v qemu-system-x86_64) ||
            die "no qemu-system-x86_64 (build the repo, or pass --qemu)"
    fi
fi
[ -x "$qemu" ] || die "$qemu is not executable"

fwargs=()
for d in "${FIRMWARE_DIRS[@]}"; do
    [ -d "$d" ] && fwargs+=(-L "$d")
done
found=
for d in "${FIRMWARE_DIRS[@]}"; do
    [ -e "$d/bios-256k.bin" ] && found=1
done
[ -n "$found" ] || die "no SeaBIOS (bios-256k.bin) in ${FIRMWARE_DIRS[*]}: apt-get install seabios ipxe-qemu"

python=
if [ -n "$blockstats" ]; then
    for p in /usr/bin/python3 "$(command -v python3 || true)"; do
        [ -n "$p" ] && [ -x "$p" ] && { python=$p; break; }
    done
    [ -n "$python" ] || die "--blockstats needs python3"
fi

# --- temporary files and cleanup ------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/boot-guest.XXXXXX")
[ -n "$serial_log" ] || serial_log=$tmp/serial.log
[ -n "$qemu_log" ] || qemu_log=$tmp/qemu.log
[ -n "$qmp" ] || { [ -z "$blockstats" ] || qmp=$tmp/qmp.sock; }
qemu_pid=

# stop_qemu: TERM, then KILL after 5 s; reap it.
stop_qemu() {
    [ -n "$qemu_pid" ] || return 0
    if kill -0 "$qemu_pid" 2>/dev/null; then
        kill -TERM "$qemu_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$qemu_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$qemu_pid" 2>/dev/null || true
    fi
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=
}
cleanup() {
    local rc=$?
    set +e
    stop_qemu
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -f "$serial_log"
[ -z "$qmp" ] || rm -f "$qmp"

# --- start QEMU ------------------------------------------------------------------------------------------
cmd=("$qemu" -machine pc -accel tcg -m "$memory" -nographic -display none -monitor none -no-reboot
     -serial "file:$serial_log" "${fwargs[@]}" "${netargs[@]}")
[ -z "$qmp" ] || cmd+=(-qmp "unix:$qmp,server=on,wait=off")
cmd+=("${extra[@]}" "${attach[@]}")

t0=$EPOCHREALTIME
elapsed() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

say "starting: ${cmd[*]}"
"${cmd[@]}" </dev/null >"$qemu_log" 2>&1 &
qemu_pid=$!

# fail REASON: report, show the tails of both logs, exit 1 (the trap kills QEMU).
fail() {
    echo "$prog: FAILED: $1 after $(elapsed) s (controller $controller)" >&2
    echo "$prog: --- tail of the serial log $serial_log ---" >&2
    # Without the terminal escapes SeaBIOS and GRUB print.
    sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r//g' "$serial_log" 2>/dev/null |
        grep -v '^[[:space:]]*$' | tail -n 25 >&2 || true
    if [ -s "$qemu_log" ]; then
        echo "$prog: --- tail of QEMU's output ---" >&2
        tail -n 15 "$qemu_log" >&2
    fi
    exit 1
}

# --- wait for the marker -------------------------------------------------------------------------------
while :; do
    if [ -f "$serial_log" ] && grep -qF -- "$marker" "$serial_log"; then
        break
    fi
    if [ -n "$fail_on" ] && [ -f "$serial_log" ] && grep -qE -- "$fail_on" "$serial_log"; then
        fail "the serial log matched '$fail_on'"
    fi
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
        status=0
        wait "$qemu_pid" || status=$?
        qemu_pid=
        # The marker may have landed just before QEMU went away.
        grep -qF -- "$marker" "$serial_log" 2>/dev/null && break
        fail "QEMU exited (status $status) without the marker"
    fi
    if awk -v a="$t0" -v b="$EPOCHREALTIME" -v t="$timeout" 'BEGIN { exit !(b - a > t) }'; then
        fail "timeout (${timeout} s) waiting for '$marker'"
    fi
    sleep 0.2
done
took=$(elapsed)

# --- at the marker: blockstats, hook; then kill QEMU -------------------------------------------------------
if [ -n "$blockstats" ]; then
    [ -n "$qemu_pid" ] || fail "QEMU is gone: cannot query blockstats"
    "$python" - "$qmp" "$blockstats" <<'EOF' || fail "query-blockstats over QMP failed"
# Minimal QMP client: capabilities, then query-blockstats; write the "return" value as JSON.
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.settimeout(10)
sock.connect(sys.argv[1])
f = sock.makefile("rw")
def command(name):
    f.write(json.dumps({"execute": name}) + "\n")
    f.flush()
    for line in f:
        msg = json.loads(line)
        if "error" in msg:
            sys.exit("%s: %s" % (name, msg["error"].get("desc")))
        if "return" in msg:
            return msg["return"]
    sys.exit("%s: QMP connection closed" % name)
json.loads(f.readline())            # greeting
command("qmp_capabilities")
with open(sys.argv[2], "w") as out:
    json.dump(command("query-blockstats"), out, indent=2)
    out.write("\n")
EOF
fi
if [ -n "$on_boot" ]; then
    BOOT_GUEST_QMP=$qmp BOOT_GUEST_PID=${qemu_pid:-} BOOT_GUEST_SERIAL=$serial_log \
        sh -c "$on_boot" || fail "the --on-boot command failed (status $?)"
fi
stop_qemu

grep -F 'NET:' "$serial_log" | tr -d '\r' | sed "s/^/$prog: guest /" || true
say "$marker after $took s"
