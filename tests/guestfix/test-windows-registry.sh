#!/bin/bash
# test-windows-registry.sh - the Windows path, on a synthetic Windows disk: no Windows image is
# available, so the test builds an NTFS filesystem that libguestfs inspection recognizes as
# Windows (Windows/System32/cmd.exe as a minimal PE32+ header, and SYSTEM and SOFTWARE hives
# made with mkhive.py and hivexsh).  guestfix must register the virtio services and
# CriticalDeviceDatabase entries in SYSTEM, the RunOnce first-boot script in SOFTWARE, copy the
# drivers; a second run changes nothing; --revert restores every file byte for byte.
. "$(dirname "$0")/functions.sh"
setup_guestfs
requires hivexsh
requires hivexget
here=$top/tests/guestfix

# Hives.
python3 "$here/mkhive.py" "$tmp/SOFTWARE" || fail "mkhive"
python3 "$here/mkhive.py" "$tmp/SYSTEM" || fail "mkhive"
printf '%s\n' 'add Microsoft' 'cd Microsoft' 'add Windows NT' 'cd Windows NT' 'add CurrentVersion' \
    'cd CurrentVersion' 'setval 4' ProductName 'string:Windows Server 2019 Standard' \
    CurrentVersion string:6.3 CurrentMajorVersionNumber dword:0x0000000a \
    CurrentMinorVersionNumber dword:0x00000000 commit | hivexsh -w "$tmp/SOFTWARE" ||
    fail "hivexsh SOFTWARE"
printf '%s\n' 'add Select' 'cd Select' 'setval 1' Current dword:0x00000001 'cd \' \
    'add ControlSet001' 'cd ControlSet001' 'add Services' 'add Control' commit |
    hivexsh -w "$tmp/SYSTEM" || fail "hivexsh SYSTEM"
# A minimal PE32+ console executable header for cmd.exe (inspection reads its architecture).
python3 - "$tmp/cmd.exe" <<'PY'
import struct, sys
b = bytearray(1024)
b[0:2] = b"MZ"
struct.pack_into("<I", b, 0x3C, 0x80)
b[0x80:0x84] = b"PE\0\0"
struct.pack_into("<HHIIIHH", b, 0x84, 0x8664, 1, 0, 0, 0, 240, 0x22)
struct.pack_into("<H", b, 0x98, 0x20B)
struct.pack_into("<H", b, 0x98 + 68, 3)
open(sys.argv[1], "wb").write(b)
PY
# The user's driver directory.
mkdir "$tmp/drivers"
head -c 20000 /dev/urandom >"$tmp/drivers/viostor.sys"
head -c 30000 /dev/urandom >"$tmp/drivers/netkvm.sys"
printf '[Version]\r\nSignature="$WINDOWS NT$"\r\n' >"$tmp/drivers/viostor.inf"
printf '[Version]\r\nSignature="$WINDOWS NT$"\r\n' >"$tmp/drivers/netkvm.inf"
echo "not a driver" >"$tmp/drivers/README.txt"

# The disk.
guestfish -N "$tmp/win.img=fs:ntfs:64M" >/dev/null <<EOF || fail "making the NTFS disk"
mount /dev/sda1 /
mkdir-p /Windows/System32/config
mkdir-p /Windows/System32/drivers
upload $tmp/SYSTEM /Windows/System32/config/SYSTEM
upload $tmp/SOFTWARE /Windows/System32/config/SOFTWARE
upload $tmp/cmd.exe /Windows/System32/cmd.exe
EOF
listing "$tmp/win.img" "$tmp/before" raw

rc=0; run_guestfix --format raw -a "$tmp/win.img" >"$tmp/nodrv.log" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q 'give --virtio-win' "$tmp/nodrv.log" || fail "no --virtio-win: exit $rc"

run_guestfix --virtio-win "$tmp/drivers" --json "$tmp/report.json" --format raw -a "$tmp/win.img" |
    tee "$tmp/run.log" || fail "guestfix failed"
grep -q '^guestfix: windows guest' "$tmp/run.log" || fail "not inspected as Windows"
guestfish --ro --format=raw -a "$tmp/win.img" -i <<EOF >"$tmp/sums" || fail "guestfish"
download /Windows/System32/config/SYSTEM $tmp/SYSTEM.new
download /Windows/System32/config/SOFTWARE $tmp/SOFTWARE.new
checksum sha256 /Windows/System32/drivers/viostor.sys
checksum sha256 /Windows/guestfix/drivers/netkvm.inf
cat /Windows/guestfix/firstboot.cmd
EOF
grep -q "$(sha256sum <"$tmp/drivers/viostor.sys" | cut -d' ' -f1)" "$tmp/sums" || fail "viostor.sys not copied"
grep -q "$(sha256sum <"$tmp/drivers/netkvm.inf" | cut -d' ' -f1)" "$tmp/sums" || fail "netkvm.inf not copied"
grep -q 'pnputil' "$tmp/sums" || fail "no first-boot script"
check() {  # check HIVE KEY VALUE EXPECTED
    local got
    got=$(hivexget "$1" "$2" "$3") || fail "hivexget $2 $3 missing"
    [ "$got" = "$4" ] || fail "$2\\$3 = '$got', expected '$4'"
}
check "$tmp/SYSTEM.new" '\ControlSet001\Services\viostor' Start 0
check "$tmp/SYSTEM.new" '\ControlSet001\Services\viostor' Type 1
check "$tmp/SYSTEM.new" '\ControlSet001\Services\viostor' ImagePath 'system32\drivers\viostor.sys'
check "$tmp/SYSTEM.new" '\ControlSet001\Services\netkvm' Start 3
check "$tmp/SYSTEM.new" '\ControlSet001\Control\CriticalDeviceDatabase\pci#ven_1af4&dev_1001&subsys_00021af4&rev_00' Service viostor
hivexget "$tmp/SYSTEM.new" '\ControlSet001\Services\vioscsi' >/dev/null 2>&1 &&
    fail "vioscsi registered without its driver"
check "$tmp/SOFTWARE.new" '\Microsoft\Windows\CurrentVersion\RunOnce' guestfix-firstboot \
    'cmd.exe /c "%SystemRoot%\guestfix\firstboot.cmd"'

run_guestfix --virtio-win "$tmp/drivers" --format raw -a "$tmp/win.img" | tee "$tmp/second.log" ||
    fail "second run failed"
grep -q '^guestfix: 0 changes' "$tmp/second.log" || fail "the second run made changes"

run_guestfix --revert --format raw -a "$tmp/win.img" >"$tmp/revert.log" || fail "revert failed"
listing "$tmp/win.img" "$tmp/after" raw
diff -u "$tmp/before" "$tmp/after" || fail "revert did not restore the original files"
say "ok"
