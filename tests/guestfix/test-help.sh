#!/bin/bash
# test-help.sh - --help, --version, the man page, and usage errors (exit 2) without a launch.
. "$(dirname "$0")/functions.sh"
[ -x "$guestfix" ] || fail "$guestfix not built"

"$guestfix" --help | grep -q -- '--dry-run' || fail "--help does not list --dry-run"
"$guestfix" --version | grep -q '^guestfix ' || fail "--version"
[ -f "$top/guestfix/guestfix.pod" ] || fail "no man page source"
if command -v podchecker >/dev/null; then
    podchecker "$top/guestfix/guestfix.pod" >/dev/null 2>&1 || fail "podchecker complains"
fi
if command -v pod2man >/dev/null; then
    make -s -C "$top/guestfix" man || fail "pod2man"
    grep -q "EXIT STATUS" "$top/build/guestfix/guestfix.1" || fail "man page lacks EXIT STATUS"
fi
rc=0; "$guestfix" -a /nonexistent.img >"$tmp/out" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "-a without --format: exit $rc, expected 2"
grep -q 'give --format' "$tmp/out" || fail "no clear message for a missing --format"
rc=0; "$guestfix" --format auto -a /x 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "--format auto: exit $rc, expected 2"
rc=0; "$guestfix" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "no disk: exit $rc, expected 2"
rc=0; "$guestfix" --nbd /not/a/uri 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "bad --nbd: exit $rc, expected 2"
say "ok"
