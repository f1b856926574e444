#!/usr/bin/env bash
# radosgw.sh: a throw-away single-node Ceph cluster with an S3 endpoint, for
# tests.  One mon, one OSD on memstore (RAM) and radosgw (HTTP, and HTTPS
# with a self-signed certificate for IP 127.0.0.1), all on 127.0.0.1 at fixed
# ports, in DIR with its own ceph.conf.  No systemd, no containers, no cephx
# (loopback only).  Needs root (the Ceph daemons want it for their
# directories and limits).
#
#   radosgw.sh start DIR   bring it up; prints and writes DIR/env:
#                          VELO_S3_ENDPOINT, VELO_S3_ACCESS_KEY,
#                          VELO_S3_SECRET_KEY, VELO_S3_REGION,
#                          VELO_S3_TLS_ENDPOINT, VELO_S3_CA_FILE
#   radosgw.sh stop DIR    stop the daemons recorded in DIR/pids (only those)
#   radosgw.sh env DIR     print DIR/env
#
# Ports (override with the environment): VELO_RGW_MON_PORT (16789),
# VELO_RGW_PORT (17480), VELO_RGW_TLS_PORT (17443), VELO_RGW_OSD_PORTS
# ("16800-16831").  start refuses
# when any of them is taken.  A started cluster uses about 150 MiB of RAM.
#
# Exit status: 0 done, 1 failure (with a message naming the step and its
# log), 77 cannot run here (not root, Ceph not installed, ports taken).
set -u

mon_port=${VELO_RGW_MON_PORT:-16789}
rgw_port=${VELO_RGW_PORT:-17480}
tls_port=${VELO_RGW_TLS_PORT:-17443}
osd_ports=${VELO_RGW_OSD_PORTS:-16800-16831}

# die MESSAGE: fail; a start that fails midway stops what it started.
die() {
    echo "radosgw.sh: $*" >&2
    [ -n "${started:-}" ] && do_stop >/dev/null
    exit 1
}
skip() { echo "radosgw.sh: SKIP: $*" >&2; exit 77; }

usage() {
    echo "usage: radosgw.sh start|stop|env DIR" >&2
    exit 2
}

# Show the tail of a daemon log after a failed step.
show_log() {
    [ -f "$1" ] && { echo "--- last lines of $1:" >&2; tail -n 15 "$1" >&2; }
}

# alive PID: true when PID runs and is not a zombie (PID 1 here reaps slowly,
# so a defunct process counts as stopped).
alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ours PID: true when PID's command line names our ceph.conf, so a recycled
# PID is never signalled.
ours() {
    tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$conf"
}

port_taken() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# ceph CLI against our cluster, bounded in time.
cephc() {
    timeout 30 ceph -c "$conf" --connect-timeout 10 "$@"
}

# wait_for SECONDS WHAT CMD...: poll CMD every 0.1 s.
wait_for() {
    local limit=$(( $1 * 10 )) i
    shift 2
    for ((i = 0; i < limit; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

do_stop() {
    local pids=() p i
    [ -f "$dir/pids" ] || { echo "radosgw.sh: nothing recorded in $dir/pids"; return 0; }
    while read -r p _; do
        [ -n "$p" ] && alive "$p" && ours "$p" && pids+=("$p")
    done < "$dir/pids"
    # radosgw first, then the OSD, then the mon (reverse start order).
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null
    done
    for ((i = 0; i < 50; i++)); do
        local left=0
        for p in "${pids[@]}"; do alive "$p" && left=1; done
        [ $left = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do
        alive "$p" && ours "$p" && kill -KILL "$p" 2>/dev/null
    done
    rm -f "$dir/pids"
    echo "radosgw.sh: stopped"
}

# step WHAT: note the elapsed time of each phase in DIR/log/steps.
step() {
    awk -v a="$t0" -v b="$(date +%s.%N)" -v w="$1" \
        'BEGIN { printf "%5.1f s  %s\n", b - a, w }' >> "$dir/log/steps"
}

# record NAME PID
record() { echo "$2 $1" >> "$dir/pids"; started=1; }

do_start() {
    local t0 fsid i
    t0=$(date +%s.%N)
    [ "$(id -u)" = 0 ] || skip "needs root (the Ceph daemons run as root here)"
    for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool openssl ss; do
        command -v "$b" >/dev/null || skip "$b not installed: run scripts/install-deps.sh"
    done
    if [ -f "$dir/pids" ]; then
        while read -r p _; do
            alive "$p" && ours "$p" && die "already running in $dir (run: radosgw.sh stop $dir)"
        done < "$dir/pids"
    fi
    local lo=${osd_ports%-*} hi=${osd_ports#*-}
    for p in "$mon_port" "$rgw_port" "$tls_port" $(seq "$lo" "$hi"); do
        port_taken "$p" && skip "port 127.0.0.1:$p is taken (another cluster?); set VELO_RGW_MON_PORT, VELO_RGW_PORT, VELO_RGW_TLS_PORT or VELO_RGW_OSD_PORTS"
    done

    rm -rf "$dir/mon" "$dir/osd" "$dir/log" "$dir/run" "$dir/rgw" "$dir/tls" "$dir/env" "$dir/pids" "$dir/monmap"
    mkdir -p "$dir/mon" "$dir/osd" "$dir/log" "$dir/run" "$dir/tls" || die "cannot create $dir"
    fsid=$(cat /proc/sys/kernel/random/uuid)

    cat > "$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind port min = $lo
ms bind port max = $hi
auth cluster required = none
auth service required = none
auth client required = none
# Without cephx there is no session key: every messenger mode must be crc
# (radosgw asks for "secure" towards the mon by default and gets EACCES).
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
run dir = $dir/run
crash dir = $dir/log
log to stderr = false
err to stderr = true
# Commit each mon change at once instead of batching for 1 s (14 pool
# commands would take 14 s).
paxos propose interval = 0.01
paxos min wait = 0.01
mon data avail warn = 1
mon data avail crit = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon osd full ratio = .99
mon osd nearfull ratio = .98
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon data = $dir/mon/\$name
osd data = $dir/osd/\$name
osd objectstore = memstore
memstore device bytes = 2147483648
osd op num shards = 1
osd op num threads per shard = 2

[client]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$dir/tls/cert.pem ssl_private_key=$dir/tls/key.pem
rgw data = $dir/rgw
rgw enable usage log = false
rgw thread pool size = 64
rgw init timeout = 60
EOF

    # The HTTPS endpoint's certificate: self-signed for IP 127.0.0.1 only
    # (so a client reaching it as "localhost" must fail verification).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -days 7 -subj "/CN=velo-test-radosgw" \
        -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" \
        > "$dir/log/openssl.log" 2>&1 \
        || { show_log "$dir/log/openssl.log"; die "making the TLS certificate failed"; }
    step "begin"
    # 1. The monitor.
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" \
        "$dir/monmap" > "$dir/log/monmaptool.log" 2>&1 \
        || { show_log "$dir/log/monmaptool.log"; die "monmaptool failed"; }
    ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" > "$dir/log/mon-mkfs.log" 2>&1 \
        || { show_log "$dir/log/mon-mkfs.log"; die "ceph-mon --mkfs failed"; }
    ceph-mon -c "$conf" -i a -f > "$dir/log/mon.a.out" 2>&1 &
    record mon.a $!
    wait_for 20 mon cephc mon stat \
        || { show_log "$dir/log/mon.a.log"; die "the monitor did not answer within 20 s"; }

    step "mon answers"
    # 2. One OSD on memstore; the rgw pools pre-created in one ceph session
    #    (radosgw would otherwise create them one by one, much slower).
    local uuid id
    uuid=$(cat /proc/sys/kernel/random/uuid)
    id=$(cephc osd new "$uuid" 2>"$dir/log/osd-new.log") \
        || { show_log "$dir/log/osd-new.log"; die "ceph osd new failed"; }
    mkdir -p "$dir/osd/osd.$id"
    ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$uuid" > "$dir/log/osd-mkfs.log" 2>&1 \
        || { show_log "$dir/log/osd-mkfs.log"; die "ceph-osd --mkfs failed"; }
    step "osd mkfs"
    ceph-osd -c "$conf" -i "$id" -f > "$dir/log/osd.$id.out" 2>&1 &
    record "osd.$id" $!
    {
        for pool in .rgw.root default.rgw.control default.rgw.meta default.rgw.log \
                    default.rgw.buckets.index default.rgw.buckets.data \
                    default.rgw.buckets.non-ec; do
            echo "osd pool create $pool 8 8"
            echo "osd pool application enable $pool rgw"
        done
    } | cephc > "$dir/log/pools.log" 2>&1 \
        || { show_log "$dir/log/pools.log"; die "creating the rgw pools failed"; }

    step "pools created"
    # 3. radosgw, then the S3 user.
    radosgw -c "$conf" -n client.rgw -f > "$dir/log/rgw.out" 2>&1 &
    record rgw $!
    wait_for 60 rgw curl -sf -o /dev/null "http://127.0.0.1:$rgw_port/" \
        || { show_log "$dir/log/client.rgw.log"; show_log "$dir/log/rgw.out"; die "radosgw did not answer on 127.0.0.1:$rgw_port within 60 s"; }

    step "radosgw answers"
    local ak sk
    ak=VELO$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
    sk=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')
    timeout 30 radosgw-admin -c "$conf" user create --uid=velo --display-name="velo tests" \
        --access-key="$ak" --secret-key="$sk" > "$dir/log/user.log" 2>&1 \
        || { show_log "$dir/log/user.log"; die "radosgw-admin user create failed"; }

    step "user created"
    (umask 077; cat > "$dir/env") <<EOF
VELO_S3_ENDPOINT=http://127.0.0.1:$rgw_port
VELO_S3_TLS_ENDPOINT=https://127.0.0.1:$tls_port
VELO_S3_CA_FILE=$dir/tls/cert.pem
VELO_S3_REGION=us-east-1
VELO_S3_ACCESS_KEY=$ak
VELO_S3_SECRET_KEY=$sk
EOF
    cat "$dir/env"
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "radosgw.sh: ready in %.1f s\n", b - a }'
}

[ $# -eq 2 ] || usage
dir=$2
case "$dir" in /*) ;; *) dir=$PWD/$dir ;; esac
conf=$dir/ceph.conf
case "$1" in
    start) mkdir -p "$dir" || die "cannot create $dir"; do_start ;;
    stop) do_stop ;;
    env) cat "$dir/env" 2>/dev/null || die "no $dir/env: run radosgw.sh start $dir first" ;;
    *) usage ;;
esac
