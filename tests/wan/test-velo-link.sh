#!/usr/bin/env bash
# test-velo-link.sh: self-test of velo-link, the WAN link emulator.
#
# Checks delay (a round trip over --delay-ms 25 takes >= 50 ms), rate (2 MB
# at --rate 8m takes >= 1.8 s), cut/restore (a cut stalls a transfer, a
# restore completes it byte-identical), reset (closes the connection with
# RST), the loopback-only rule, the connect error message and quit.
# Only lower bounds on time are asserted.  Takes about 6 s.
#
# Exit status: 0 pass, 1 fail, 77 skip.

set -u

here=$(cd "$(dirname "$0")" && pwd)
VL=$here/velo-link

command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
make -s -C "$here" velo-link || { echo "FAIL: could not build velo-link"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-velo-link.XXXXXX")
pids=()
cleanup ()
{
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

fail ()
{
  echo "FAIL: $*" >&2
  for f in "$tmp"/*.log; do
    [ -f "$f" ] && sed "s|^|  $(basename "$f"): |" "$f" >&2
  done
  exit 1
}

# Servers and clients.  ADDR is unix:PATH or HOST:PORT, as for velo-link.
cat > "$tmp/h.py" <<'EOF'
import hashlib, os, socket, sys, threading, time

def sock_for(addr):
    if addr.startswith("unix:"):
        return socket.socket(socket.AF_UNIX), addr[5:]
    host, port = addr.rsplit(":", 1)
    return socket.socket(socket.AF_INET), (host, int(port))

def connect(addr):
    s, a = sock_for(addr)
    s.connect(a)
    if s.family == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def recv_all(s):
    parts = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(parts)
        parts.append(b)

def echo(c):                  # Echo until EOF, then close.
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()

def sha(c):                   # Read to EOF, answer "HEXDIGEST LENGTH".
    data = recv_all(c)
    c.sendall(b"%s %d\n" % (hashlib.sha256(data).hexdigest().encode(), len(data)))
    c.close()

def serve(kind, addr, portfile):
    s, a = sock_for(addr)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(a)
    s.listen(16)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % (s.getsockname()[1] if s.family == socket.AF_INET else 0))
    os.rename(portfile + ".tmp", portfile)
    fn = {"echo": echo, "sha": sha}[kind]
    while True:
        c, _ = s.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()

def rtt(addr, n):             # Print the fastest of n 1-byte round trips, ms.
    s = connect(addr)
    best = None
    for _ in range(int(n)):
        t = time.monotonic()
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        d = (time.monotonic() - t) * 1000
        best = d if best is None else min(best, d)
    print("%.3f" % best)

def send(addr, path):         # Send a file to a sha server: "SECONDS DIGEST LEN".
    data = open(path, "rb").read()
    t = time.monotonic()
    s = connect(addr)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = recv_all(s).decode().strip()
    print("%.3f %s" % (time.monotonic() - t, reply))

def roundtrip(addr, path, out):   # Send a file to an echo server, save the echo.
    data = open(path, "rb").read()
    s = connect(addr)
    def writer():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    w = threading.Thread(target=writer)
    w.start()
    got = recv_all(s)
    w.join()
    open(out, "wb").write(got)

def hold(addr):               # Talk once, then wait: print "reset" or "eof".
    s = connect(addr)
    s.sendall(b"hi")
    assert s.recv(2) == b"hi"
    print("connected", flush=True)
    try:
        print("eof" if s.recv(1) == b"" else "data", flush=True)
    except ConnectionResetError:
        print("reset", flush=True)

{"serve": serve, "rtt": rtt, "send": send, "roundtrip": roundtrip,
 "hold": hold}[sys.argv[1]](*sys.argv[2:])
EOF

# An array, not a function, so that "${H[@]}" ... & gives python's own pid.
H=(python3 "$tmp/h.py")

# wait_for FILE: up to 5 s for FILE to appear.
wait_for ()
{
  local i
  for i in $(seq 50); do [ -e "$1" ] && return 0; sleep 0.1; done
  fail "timed out waiting for $1"
}

# start_server NAME KIND ADDR
start_server ()
{
  "${H[@]}" serve "$2" "$3" "$tmp/$1.port" 2>"$tmp/$1.log" &
  pids+=($!)
  wait_for "$tmp/$1.port"
}

# start_link NAME [velo-link options...]: control socket is $tmp/NAME.ctl.
start_link ()
{
  local name=$1; shift
  "$VL" --control "$tmp/$name.ctl" --pidfile "$tmp/$name.pid" \
        --log "$tmp/$name.log" "$@" &
  pids+=($!)
  wait_for "$tmp/$name.pid"
  grep -q '^velo-link: ready$' "$tmp/$name.log" || fail "$name: no ready line"
}

ctl () { "$VL" --ctl "$tmp/$1.ctl" "${@:2}"; }

# ge A B: is A >= B (decimals)?
ge () { python3 -c "import sys; sys.exit(0 if float('$1') >= float('$2') else 1)"; }

# 1. Argument checks and error messages.
out=$("$VL" --listen 192.0.2.1:80 --connect unix:/nonexistent 2>&1) &&
  fail "a non-loopback --listen was accepted"
grep -q 'not a loopback address' <<<"$out" || fail "bad refusal message: $out"
out=$("$VL" --listen unix:$tmp/x --connect 127.0.0.1:1 --rate fast 2>&1) &&
  fail "--rate fast was accepted"

start_link nosrv --listen "unix:$tmp/nosrv.sock" --connect "unix:$tmp/absent"
"${H[@]}" hold "unix:$tmp/nosrv.sock" >/dev/null 2>&1
grep -q "^velo-link: connect unix:$tmp/absent: No such file or directory$" \
  "$tmp/nosrv.log" || fail "no clear connect error in the log"
ctl nosrv frobnicate >/dev/null && fail "--ctl did not fail on a bad command"
echo "ok: errors"

# 2. Delay: RTT over a 25 ms one-way delay is at least 50 ms.
start_server echo echo "unix:$tmp/echo.sock"
start_link delay --listen "unix:$tmp/delay.sock" --connect "unix:$tmp/echo.sock" \
  --delay-ms 25
ms=$("${H[@]}" rtt "unix:$tmp/delay.sock" 4) || fail "rtt client failed"
ge "$ms" 50 || fail "round trip took $ms ms, expected >= 50"
echo "ok: delay (fastest round trip $ms ms)"

# 3. Rate: 2 MB at 8 Mbit/s takes about 2 s.
head -c 2000000 /dev/urandom > "$tmp/2m"
want=$(sha256sum < "$tmp/2m" | cut -d' ' -f1)
start_server sha sha "unix:$tmp/sha.sock"
start_link rate --listen "unix:$tmp/rate.sock" --connect "unix:$tmp/sha.sock" \
  --rate 8m
read -r secs digest len < <("${H[@]}" send "unix:$tmp/rate.sock" "$tmp/2m")
[ "$digest" = "$want" ] && [ "$len" = 2000000 ] ||
  fail "rate: server received $len bytes with sha256 $digest"
ge "$secs" 1.8 || fail "2 MB at 8 Mbit/s took $secs s, expected >= 1.8"
echo "ok: rate (2 MB in $secs s)"

# 4. Cut stalls a transfer; restore completes it with identical bytes.
head -c 1000000 /dev/urandom > "$tmp/1m"
start_link cut --listen "unix:$tmp/cut.sock" --connect "unix:$tmp/echo.sock" \
  --rate 8m --delay-ms 5
"${H[@]}" roundtrip "unix:$tmp/cut.sock" "$tmp/1m" "$tmp/1m.out" &
client=$!
for i in $(seq 50); do              # Cut once data is on the move.
  ctl cut stats | grep -q 'bytes_down=[1-9]' && break
  sleep 0.1
done
ctl cut cut >/dev/null || fail "cut command failed"
sleep 0.1
s1=$(ctl cut stats) || fail "stats failed"
sleep 1
s2=$(ctl cut stats)
[ "$s1" = "$s2" ] || fail "data moved during the cut: '$s1' then '$s2'"
grep -q 'conns=1 ' <<<"$s2" || fail "expected one connection during cut: $s2"
kill -0 $client 2>/dev/null || fail "the transfer finished during the cut"
ctl cut restore >/dev/null || fail "restore command failed"
wait $client || fail "roundtrip client failed after restore"
[ "$(sha256sum < "$tmp/1m.out")" = "$(sha256sum < "$tmp/1m")" ] ||
  fail "bytes differ after cut/restore"
s3=$(ctl cut stats)
grep -q 'bytes_up=1000000 bytes_down=1000000' <<<"$s3" || fail "stats: $s3"
echo "ok: cut/restore ($s1 during the cut)"

# 5. Reset closes current connections with RST (over loopback TCP).
start_server tcpecho echo "127.0.0.1:0"
port=$(cat "$tmp/tcpecho.port")
start_link reset --listen "127.0.0.1:0" --connect "127.0.0.1:$port"
lport=$(sed -n 's/^velo-link: listening on TCP port //p' "$tmp/reset.log")
[ -n "$lport" ] || fail "no listening port in the log"
"${H[@]}" hold "127.0.0.1:$lport" > "$tmp/hold.out" &
client=$!
for i in $(seq 50); do
  grep -q connected "$tmp/hold.out" && break
  sleep 0.1
done
grep -q 'conns=1 ' <<<"$(ctl reset stats)" || fail "no connection to reset"
ctl reset reset >/dev/null || fail "reset command failed"
for i in $(seq 30); do kill -0 $client 2>/dev/null || break; sleep 0.1; done
kill -0 $client 2>/dev/null && fail "the connection survived reset"
wait $client
grep -qx reset "$tmp/hold.out" ||
  fail "expected the client to see RST, got: $(tr '\n' ' ' < "$tmp/hold.out")"
grep -q 'conns=0 ' <<<"$(ctl reset stats)" || fail "connections left after reset"
echo "ok: reset"

# 6. quit stops the relay and removes its pidfile; SIGTERM is clean too.
ctl reset quit >/dev/null || fail "quit command failed"
for i in $(seq 30); do [ -e "$tmp/reset.pid" ] || break; sleep 0.1; done
[ -e "$tmp/reset.pid" ] && fail "pidfile left after quit"
pid=$(cat "$tmp/delay.pid")
kill -TERM "$pid"
for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "SIGTERM did not stop velo-link"
[ -e "$tmp/delay.pid" ] && fail "pidfile left after SIGTERM"
echo "ok: quit and SIGTERM"

echo "PASS: test-velo-link.sh"
exit 0
