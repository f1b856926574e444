#!/bin/bash
# bench/run.sh: the Velo WAN benchmark.  Not a test: never part of make check.
#
#   bench/run.sh [--rate 100m|20m|100m,20m] [--rtt-ms 50] [--quick] [more: --help]
#
# In one run, side by side over the emulated WAN (tests/wan/velo-link, a
# userspace relay between the cloud client and the on-prem
# qemu-storage-daemon), for the boot-like traces in bench/traces/ and a real
# boot of the test guest (pvscsi, time to BOOT-OK):
#   local raw image | velo cold/warm | stock copy-on-read (qcow2 overlay over
#   NBD, copy-on-read filter) cold/warm | copy-first (qemu-img convert and
#   nbdcopy over NBD, then local)
# plus the physical floor, wire bytes, warm throughput (qemu-img bench), the
# velo client's peak RSS against ram-size, and cache metadata per GiB; and
# velo in write-mode=write-back (bench/lib/writeback.py; --writeback for it
# alone, --no-writeback to skip it): guest write throughput against a local
# qcow2, the journal's drain rate against link rate x compression, and the
# RPO under a sustained write load.
#
# Prints a markdown report and appends it to bench/results/<date>.md (raw
# figures next to it as <date>-<time>.json).  --quick: the recorded boot trace
# at 100m only (local, velo, stock copy-on-read; ~2 min), a smoke check.
# A default run (100m) takes about 15 minutes on 2 cores (5 of them write-back);
# --rate 20m about 23.
#
# Needs: a built tree (make), root for the guest build (cached), python3;
# nbdcopy (apt-get install libnbd-bin) is optional.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import runbench; sys.exit(runbench.main(sys.argv[2:]))' \
    "$here/lib" "$@"
