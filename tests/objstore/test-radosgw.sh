#!/usr/bin/env bash
# test-radosgw.sh: the test cluster script itself (radosgw.sh) is safe to
# use: start writes DIR/env (mode 600) and answers S3; a second start in the
# same DIR refuses; a start in another DIR skips (77) because the ports are
# taken; stop ends every recorded daemon and frees the ports, is idempotent,
# and never signals a PID whose command line is not one of its daemons (a
# recycled PID).  Takes about 10 s.
#
# Exit status: 0 pass, 1 fail, 77 skip (not root, Ceph not installed, ports
# taken before the test).

set -u

here=$(cd "$(dirname "$0")" && pwd)
rgw=$here/radosgw.sh

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to run the Ceph daemons"; exit 77; }
command -v radosgw >/dev/null || { echo "SKIP: radosgw not installed: run scripts/install-deps.sh"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-radosgw.XXXXXX")
decoy=
cleanup() {
    "$rgw" stop "$tmp/a" >/dev/null 2>&1
    [ -n "$decoy" ] && kill "$decoy" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

"$rgw" start "$tmp/a" > "$tmp/start.log" 2>&1
rc=$?
[ $rc -eq 77 ] && { cat "$tmp/start.log"; echo "SKIP: radosgw.sh cannot run here"; exit 77; }
[ $rc -eq 0 ] || { cat "$tmp/start.log"; fail "start exited $rc"; }
grep '^radosgw.sh: ready in' "$tmp/start.log"
[ "$(stat -c %a "$tmp/a/env")" = 600 ] || fail "DIR/env (it holds the secret key) is not mode 600"
. "$tmp/a/env"
for v in VELO_S3_ENDPOINT VELO_S3_TLS_ENDPOINT VELO_S3_CA_FILE VELO_S3_ACCESS_KEY VELO_S3_SECRET_KEY; do
    [ -n "${!v:-}" ] || fail "$v missing from DIR/env"
done
curl -sf -o /dev/null "$VELO_S3_ENDPOINT/" || fail "S3 endpoint $VELO_S3_ENDPOINT does not answer"
cp "$tmp/a/pids" "$tmp/pids.saved"
[ "$(wc -l < "$tmp/pids.saved")" -eq 3 ] || fail "expected 3 recorded daemons, got: $(cat "$tmp/pids.saved")"

"$rgw" start "$tmp/a" > "$tmp/again.log" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "already running" "$tmp/again.log" || fail "a second start in the same DIR did not refuse (exit $rc)"

"$rgw" start "$tmp/b" > "$tmp/b.log" 2>&1
rc=$?
[ $rc -eq 77 ] && grep -q "is taken" "$tmp/b.log" || fail "a start with the ports taken did not skip (exit $rc)"
[ -e "$tmp/b/pids" ] && fail "the refused start recorded daemons"

"$rgw" stop "$tmp/a" > /dev/null || fail "stop failed"
while read -r p name; do
    st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)
    [ -z "$st" ] || [ "$st" = Z ] || fail "$name (PID $p) still runs after stop (state $st)"
done < "$tmp/pids.saved"
ss -Hltn "sport = :${VELO_S3_ENDPOINT##*:}" | grep -q . && fail "the S3 port is still taken after stop"
"$rgw" stop "$tmp/a" > /dev/null || fail "a second stop failed"

# A recorded PID that now belongs to another program is left alone.
sleep 300 &
decoy=$!
echo "$decoy rgw" > "$tmp/a/pids"
"$rgw" stop "$tmp/a" > /dev/null || fail "stop with a recycled PID failed"
kill -0 "$decoy" 2>/dev/null || fail "stop signalled a PID that is not its daemon"
echo "PASS: radosgw.sh"
