# report.py: the markdown report of a Velo WAN benchmark run (runbench.py),
# from its results dictionary; also used to re-render a saved JSON report.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import shlex

from benchutil import MiB, GiB, BENCH_OFFSET, BENCH_BYTES, rate_name, parse_rate, \
    parse_size, fmt_s, fmt_mib, fmt_x, get, ratio


def report(res):
    a = res['args']
    out = []
    w = out.append
    rtt = a['delay_ms'] * 2
    w(f"## Velo WAN benchmark, {res['started']}\n")
    w(f"Command: `{' '.join(['bench/run.sh'] + [shlex.quote(x) for x in a['argv']])}`  ")
    bld = res.get('build')
    if bld:
        w(f"velo build: commit {bld['commit']} ({bld['subject']})"
          f"{', with uncommitted changes in block/, qapi/ or patches/' if bld['dirty'] else ''}; "
          f"binaries built {bld['binaries-built']}.  ")
    w(f"Link: tests/wan/velo-link (userspace relay), {rtt} ms RTT, rate(s) "
      f"{', '.join(rate_name(r) for r in a['rates'])} each way. On-prem: qemu-storage-daemon "
      f"serving the test guest's qcow2 ({res['image']['disk-size'] // MiB} MiB disk, "
      f"{res['image']['nonzero-bytes'] / MiB:.0f} MiB non-zero) as a velo export and an NBD "
      f"export. velo: 64 KiB extents, ram-size {a['ram_size']}, readahead-max 8 MiB, "
      f"max-inflight 64 (defaults). Times in seconds, wire in MiB "
      f"(velo-link bytes up+down; for velo boots also query-blockstats bytes-wire). "
      f"Floor = non-zero bytes needed / rate + 1 RTT. Host: {os.cpu_count()} CPUs, load average "
      f"{res['loadavg-start'][0]:.2f} at the start, {res.get('loadavg-end', [0])[0]:.2f} at the end "
      f"(other jobs on the machine slow the TCG boots).\n")
    for tname, st in res.get('traces', {}).items():
        w(f"- trace `{tname}`: {st['reads']} serial reads, {st['bytes'] / MiB:.1f} MiB requested, "
          f"{st['unique-bytes'] / MiB:.1f} MiB unique, {st['nonzero-bytes'] / MiB:.1f} MiB non-zero, "
          f"{100 * st['sequential']:.0f}% sequential"
          + (f", {st['demand-round-trips']} reads that no sequential readahead can predict "
             f"(first touch of a 64 KiB extent, not continuing the previous read)"
             if 'demand-round-trips' in st else ''))
    w('')
    targets = []
    for rate, R in res['rates'].items():
        w(f"### {rate_name(rate)}, {rtt} ms RTT\n")
        rtt_s = R.get('rtt-s', rtt / 1000)
        w('| workload | method | cold s | warm s | wire cold MiB | wire warm MiB | cold / floor | vs velo cold |')
        w('|---|---|---:|---:|---:|---:|---:|---:|')
        for tname in res.get('traces', {}):
            T = R.get(tname)
            if not T:
                continue
            fl = T['floor']
            vc = get(T, 'velo-cold', 'elapsed-s')
            w(f"| trace {tname} | floor | {fmt_s(fl)} | | "
              f"{fmt_mib(res['traces'][tname]['nonzero-bytes'])} | | 1.00x | |")
            rtb = res['traces'][tname].get('demand-round-trips')
            if rtb:
                bound = max(rtb * rtt_s, fl)
                w(f"| | RTT cost: {rtb} reads no sequential readahead predicts x RTT | {fmt_s(bound)} | | | | "
                  f"{fmt_x(ratio(bound, fl))} | |")
            w(f"| | local raw | {fmt_s(get(T, 'local', 'elapsed-s'))} | | 0 | | | |")
            vp = T.get('velo-cold-profile')
            if vp and 'error' not in vp:
                w(f"| | velo, empty cache + boot profile of the first run | "
                  f"{fmt_s(vp.get('elapsed-s'))} | | {fmt_mib(vp.get('wire'))} | | "
                  f"{fmt_x(ratio(vp.get('elapsed-s'), fl))} | |")
            for m, label in (('velo', 'velo'), ('cor', 'stock copy-on-read')):
                c, wm = T.get(f'{m}-cold'), T.get(f'{m}-warm')
                if c is None:
                    continue
                if 'error' in c:
                    w(f"| | {label} | failed | | | | | |")
                    continue
                ce = c.get('elapsed-s')
                w(f"| | {label} | {fmt_s(ce)} | {fmt_s(get(wm, 'elapsed-s'))} | "
                  f"{fmt_mib(c.get('wire'))} | {fmt_mib(get(wm, 'wire'))} | {fmt_x(ratio(ce, fl))} | "
                  f"{fmt_x(ratio(ce, vc)) if m != 'velo' else ''} |")
            C = R.get('copy', {})
            for tool in ('qemu-img-convert', 'nbdcopy'):
                ct = get(C, tool, 'time')
                lt = get(C, f'trace-{tname}', 'elapsed-s') or get(T, 'local', 'elapsed-s')
                if ct is not None and lt is not None:
                    w(f"| | copy-first ({tool}) | {fmt_s(ct + lt)} | {fmt_s(lt)} | "
                      f"{fmt_mib(get(C, tool, 'wire'))} | 0 | {fmt_x(ratio(ct + lt, fl))} | "
                      f"{fmt_x(ratio(ct + lt, vc))} |")
            nz = res['traces'][tname]['nonzero-bytes']
            for k, what in (('velo-cold', 'velo cold'), ('velo-cold-profile', 'velo cold + profile')):
                # Issue 3: wire bytes against the raw bytes the trace reads,
                # and time against the floor of the bytes actually sent.
                ve, vw = get(T, k, 'elapsed-s'), get(T, k, 'wire')
                if ve is None or not vw:
                    continue
                sent_floor = vw * 8 / parse_rate(rate) + rtt_s
                targets.append((f'{rate}: trace {tname}: {what}: wire / raw non-zero bytes read',
                                vw / nz, '<= 0.5', vw / nz <= 0.5))
                targets.append((f'{rate}: trace {tname}: {what} / floor of the bytes sent',
                                ve / sent_floor, '<= 1.2', ve / sent_floor <= 1.2))
            if vc is not None:
                targets.append((f'{rate}: trace {tname}: velo cold within 2x of floor',
                                ratio(vc, fl), '<= 2.0', ratio(vc, fl) is not None and ratio(vc, fl) <= 2))
            cc = get(T, 'cor-cold', 'elapsed-s')
            if cc is not None and vc is not None:
                targets.append((f'{rate}: trace {tname}: stock COR cold / velo cold',
                                ratio(cc, vc), '>= 5.0', ratio(cc, vc) >= 5))
        B = R.get('boot')
        if B:
            locals_ = [x for x in (get(B, k, 'time') for k in ('local', 'local-2', 'copy-local'))
                       if x is not None]
            lb = sorted(locals_)[len(locals_) // 2] if locals_ else None
            if len(locals_) > 1:
                lb = (sorted(locals_)[(len(locals_) - 1) // 2] + sorted(locals_)[len(locals_) // 2]) / 2
            note = (f" (median of {len(locals_)} local boots: "
                    f"{', '.join(fmt_s(x) for x in locals_)})" if len(locals_) > 1 else '')
            w(f"| guest boot (pvscsi, to BOOT-OK) | local raw{note} | {fmt_s(lb)} | | 0 | | | |")
            for m, label in (('velo', 'velo'), ('cor', 'stock copy-on-read')):
                c, wm = B.get(f'{m}-cold'), B.get(f'{m}-warm')
                if c is None:
                    continue
                if 'error' in c:
                    w(f"| | {label} | failed | | | | | |")
                    continue
                wire_c, wire_w = fmt_mib(c.get('wire')), fmt_mib(get(wm, 'wire'))
                if m == 'velo':
                    wire_c += f" ({fmt_mib(get(c, 'velo', 'bytes-wire'))})"
                    wire_w += f" ({fmt_mib(get(wm, 'velo', 'bytes-wire'))})"
                w(f"| | {label} | {fmt_s(c['time'])} | {fmt_s(get(wm, 'time'))} | {wire_c} | {wire_w} | "
                  f"{fmt_x(ratio(c['time'], lb))} of local | "
                  f"{fmt_x(ratio(c['time'], get(B, 'velo-cold', 'time'))) if m != 'velo' else ''} |")
            C = R.get('copy', {})
            cl = get(B, 'copy-local', 'time') or lb
            for tool in ('qemu-img-convert', 'nbdcopy'):
                ct = get(C, tool, 'time')
                if ct is not None and cl is not None:
                    w(f"| | copy-first ({tool}) + local boot | {fmt_s(ct + cl)} | {fmt_s(cl)} | "
                      f"{fmt_mib(get(C, tool, 'wire'))} | 0 | {fmt_x(ratio(ct + cl, lb))} of local | "
                      f"{fmt_x(ratio(ct + cl, get(B, 'velo-cold', 'time')))} |")
            vb = get(B, 'velo-cold', 'time')
            if vb is not None and lb:
                targets.append((f'{rate}: velo cold boot / local boot', vb / lb, '<= 1.5 (at 100m)',
                                vb / lb <= 1.5))
        w('\nTraces: serial replay with bench/trace-replay (qemu-io engine), clock from open to last '
          'read. Warm: the same cache file (velo) or overlay (stock copy-on-read) again, new process. '
          'copy-first: cold = copy time + the local run on the copy; warm = the local run alone. '
          'Boots: time to BOOT-OK from QEMU start (boot-guest.sh polls every 0.2 s).')
        C = R.get('copy', {})
        if C.get('floor'):
            w(f"\nFull-copy floor at {rate_name(rate)}: {fmt_s(C['floor'])} s "
              f"({res['image']['nonzero-bytes'] / MiB:.0f} MiB non-zero). "
              + ' '.join(f"{tool}: {fmt_s(get(C, tool, 'time'))} s."
                         for tool in ('qemu-img-convert', 'nbdcopy') if get(C, tool, 'time'))
              + ''.join(f" {tool}: {C[tool]['error']}." for tool in ('qemu-img-convert', 'nbdcopy')
                        if 'error' in C.get(tool, {})))
        w('')
        # velo internals
        rows = []
        D = R.get('diag', {})
        for k, v in D.items():
            if k.startswith('velo-ram-') and 'velo' in v:
                rows.append((f"trace {res['args']['traces'][0].split('/')[-1].replace('.trace', '')}, "
                             f"ram-size {k[9:]}, cold (qmp engine: {fmt_s(v['elapsed-s'])} s)", v['velo']))
        for k in ('velo-cold', 'velo-warm'):
            v = get(B, k, 'velo')
            if v:
                rows.append((f'guest boot, {k[5:]}', v))
        if rows:
            w(f"velo's own statistics (query-blockstats) at {rate_name(rate)}:\n")
            w('| run | fetches | readahead | fetched MiB | wire MiB | misses | RAM hits | cache hits '
              '| zero reads | fetch latency avg / max ms |')
            w('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
            for label, v in rows:
                w(f"| {label} | {v['fetches']} | {v['readahead-fetches']} | {fmt_mib(v['bytes-fetched'])} | "
                  f"{fmt_mib(v['bytes-wire'])} | {v['misses']} | {v['ram-hits']} | {v['cache-hits']} | "
                  f"{v['zero-reads']} | {v['fetch-latency-avg-us'] / 1000:.0f} / "
                  f"{v['fetch-latency-max-us'] / 1000:.0f} |")
            w('')
        # RAM
        lq = get(D, 'local-qmp', 'peak-rss')
        ram_rows = []
        for k, v in D.items():
            if k.startswith('velo-ram-') and lq and v.get('peak-rss'):
                ram = parse_size(k[9:])
                ram_rows.append((k[9:], v['peak-rss'], v['peak-rss'] - lq, ram))
        T0 = R.get(next(iter(res.get('traces', {})), ''), {})
        lqi, vqi = get(T0, 'local', 'peak-rss'), get(T0, 'velo-cold', 'peak-rss')
        if ram_rows or (lqi and vqi):
            meta = res['image']['disk-size'] / 65536 * 5
            w(f"RAM at {rate_name(rate)}: peak RSS (VmHWM) of the velo client minus that of the same replay "
              f"of a local raw image, against ram-size + metadata "
              f"({res['image']['disk-size'] // GiB} GiB disk: {meta / 1024:.0f} KiB of metadata):\n")
            w('| client | ram-size | peak RSS MiB | minus local MiB | / (ram-size + metadata) |')
            w('|---|---:|---:|---:|---:|')
            if lqi and vqi:
                ram = parse_size(a['ram_size'])
                w(f"| qemu-io, cold trace | {a['ram_size']} | {fmt_mib(vqi)} | {fmt_mib(vqi - lqi)} | "
                  f"{fmt_x(ratio(vqi - lqi, ram + meta))} |")
                targets.append((f'{rate}: RAM: velo peak RSS over local / (ram-size {a["ram_size"]} + metadata)',
                                ratio(vqi - lqi, ram + meta), '<= 1.0', (vqi - lqi) <= ram + meta))
            for rs, peak, delta, ram in ram_rows:
                w(f"| qemu-system (qmp engine), cold trace | {rs} | {fmt_mib(peak)} | {fmt_mib(delta)} | "
                  f"{fmt_x(ratio(delta, ram + meta))} |")
                targets.append((f'{rate}: RAM (qmp engine, ram-size {rs})', ratio(delta, ram + meta),
                                '<= 1.0', delta <= ram + meta))
            ram = parse_size(a['ram_size'])
            for k in ('velo-cold', 'velo-warm'):
                vb, lb_ = get(B, k, 'vmhwm'), get(B, 'local', 'vmhwm')
                if vb and lb_:
                    w(f"| qemu-system, guest boot {k[5:]} (512 MiB guest) | {a['ram_size']} | {fmt_mib(vb)} | "
                      f"{fmt_mib(vb - lb_)} | {fmt_x(ratio(vb - lb_, ram + meta))} |")
            # The same without the guest's own RAM, whose touched pages vary
            # by a few MiB from boot to boot, against the mean local boot.
            lh = [get(B, k, 'host-rss') for k in ('local', 'local-2')]
            lh = [x for x in lh if x]
            for k in ('velo-cold', 'velo-warm'):
                vh = get(B, k, 'host-rss')
                if vh and lh:
                    base = sum(lh) / len(lh)
                    w(f"| qemu-system, guest boot {k[5:]}, host side (RSS less the guest's RAM; "
                      f"local: mean of {len(lh)}) | {a['ram_size']} | {fmt_mib(vh)} | "
                      f"{fmt_mib(vh - base)} | {fmt_x(ratio(vh - base, ram + meta))} |")
                    targets.append((f'{rate}: RAM, guest boot {k[5:]} (host side)',
                                    ratio(vh - base, ram + meta), '<= 1.0', vh - base <= ram + meta))
            w('')
    X = res.get('extras', {})
    if X:
        w('### Rate-independent\n')
        w(f"Warm throughput: `qemu-img bench -d 1` (serial), {BENCH_BYTES // MiB} MiB sequential from "
          f"offset {BENCH_OFFSET // MiB} MiB (all data), "
          + (f"median of {X['bench-runs']} runs" if 'bench-runs' in X else 'best of 3 runs')
          + f"; velo with a warm cache file and a "
          f"fresh process (RAM tier empty at start; region > ram-size), local raw from the page cache:\n")
        w('| request size | local raw MiB/s | velo warm MiB/s | velo / local |')
        w('|---|---:|---:|---:|')
        for label in ('64k', '4k'):
            lo, ve = X.get(f'bench-local-{label}'), X.get(f'bench-velo-{label}')
            if isinstance(lo, float) and isinstance(ve, float):
                w(f"| {label} | {lo:.0f} | {ve:.0f} | {fmt_x(ve / lo)} |")
                targets.append((f'warm throughput {label} QD1: velo / local', ve / lo, '>= 0.8', ve / lo >= 0.8))
        w('')
        w('At rest: warm serial reads through qemu-io (qemu-img bench takes no --object), '
          'the plain cache file against one encrypted (key-secret, AES-256-GCM) and compressed '
          '(cache-compress), side by side:\n')
        w('| request size | velo warm MiB/s | encrypted MiB/s (cost) | encrypted + compressed MiB/s (cost) |')
        w('|---|---:|---:|---:|')
        for label in ('64k', '4k'):
            ve, vc_ = X.get(f'qio-velo-{label}'), X.get(f'qio-velo-crypt-{label}')
            vn = X.get(f'qio-velo-enc-{label}')
            if isinstance(ve, float) and isinstance(vc_, float) and isinstance(vn, float):
                w(f"| {label} | {ve:.0f} | {vn:.0f} ({100 * (1 - vn / ve):.0f}%) | "
                  f"{vc_:.0f} ({100 * (1 - vc_ / ve):.0f}%) |")
                targets.append((f'at rest {label}: encrypted / plain warm throughput',
                                vn / ve, '>= 0.85', vn / ve >= 0.85))
                targets.append((f'at rest {label}: encrypted+compressed / plain warm throughput',
                                vc_ / ve, '>= 0.85', vc_ / ve >= 0.85))
        if X.get('crypt-cache-allocated'):
            w(f"\nCache file allocated for the {BENCH_BYTES // MiB} MiB region: "
              f"{fmt_mib(X['crypt-cache-allocated'])} MiB encrypted + compressed.")
        d1, d2 = get(X, 'dedup-vm1', 'velo'), get(X, 'dedup-vm2', 'velo')
        if d1 and d2:
            w('\nDedup: the first trace replayed on the guest disk, then on a second VM '
              'cloned from it (a qcow2 overlay, its own export), both with one dedup-store:\n')
            w('| VM | bytes-wire MiB | bytes-fetched MiB | dedup extents | dedup MiB |')
            w('|---|---:|---:|---:|---:|')
            for name, d in (('first', d1), ('second (clone)', d2)):
                w(f"| {name} | {fmt_mib(d['bytes-wire'])} | {fmt_mib(d['bytes-fetched'])} | "
                  f"{d.get('dedup-extents', 0)} | {fmt_mib(d.get('dedup-bytes', 0))} |")
            r = d2['bytes-wire'] / d1['bytes-wire']
            targets.append(('dedup: second VM wire bytes / first VM', r, '<= 0.10', r <= 0.10))
        w('')
        m1, m64, ml = X.get('meta1g', {}), X.get('meta64g', {}), X.get('meta-local', {})
        if m1.get('rss') and m64.get('rss'):
            d_rss = (m64['rss'] - m1['rss']) / 63
            d_hwm = (m64['peak-rss'] - m1['peak-rss']) / 63
            w(f"Metadata: an idle velo client (qemu-io) on an empty 64 GiB disk vs an empty 1 GiB disk: "
              f"RSS +{d_rss / 1024:.0f} KiB per GiB of disk, peak RSS +{d_hwm / 1024:.0f} KiB per GiB "
              f"(RSS {fmt_mib(m1['rss'])} / {fmt_mib(m64['rss'])} MiB; a local raw image: "
              f"{fmt_mib(ml.get('rss'))} MiB). By construction, per 64 KiB extent: 1 byte of extent map and "
              f"4 bytes of CRC in RAM (80 KiB per GiB), 8 bytes of index in the cache file (128 KiB per GiB, "
              f"also held in RAM while the index is loaded or rewritten); an empty disk never touches "
              f"its CRC array, so the RSS figure shows the map only.\n")
    for rate, W in res.get('writeback', {}).items():
        writeback_section(w, targets, rate, rtt, W)
    if targets:
        w('### Targets\n')
        w('| target | measured | goal | met |')
        w('|---|---:|---|---|')
        for name, val, goal, ok in targets:
            w(f"| {name} | {val if isinstance(val, str) else fmt_x(val)} | {goal} | "
              f"{'yes' if ok else '**no**'} |")
        w('')
    return '\n'.join(out) + '\n'


def _writes(r, k):
    """'4096 x 64 KiB' for a drain row of key @k ('4k', '64k', '1m')."""
    return f"{r['writes']} x {k.upper().replace('K', ' KiB').replace('M', ' MiB')}"


def _load(d):
    a, b = d.get('loadavg-start'), d.get('loadavg-end')
    return f"{a[0]:.1f}-{b[0]:.1f}" if a and b else 'n/a'


def writeback_section(w, targets, rate, rtt, W):
    """The write-back measurements of writeback.py at one rate."""
    bps = parse_rate(rate)
    w(f"### Write-back at {rate_name(rate)}, {rtt} ms RTT\n")
    w("Origin: a blank 4 GiB qcow2 served by qemu-storage-daemon as a writable velo export "
      "(writable=on, write-state), behind velo-link. Cloud: a velo node with "
      "write-mode=write-back and a raw journal node sized for the whole workload, so that no "
      "guest write waits for the link.\n")
    T = W.get('throughput', {})
    if W.get('throughput-error'):
        w(f"Guest write throughput: failed: {W['throughput-error'][:300]}\n")
    if any(k.startswith('64k-') for k in T):
        w(f"Guest write throughput: `qemu-img bench -w`, {_bench_mib(T)} MiB of 64 KiB "
          f"sequential writes (a constant byte pattern), a fresh velo cache file and a freshly "
          f"formatted journal or a local qcow2 for each run, all interleaved, median of "
          f"{T.get('runs')} runs; load average {_load(T)}. With -t none the journal is O_DIRECT; "
          f"velo's cache file is always buffered. *Steady state*: the journal is preallocated "
          f"and reused (it is a ring, written over and over; the user guide says to preallocate "
          f"it), against a preallocated qcow2 (overwrites). *First use*: a sparse journal file "
          f"against a fresh qcow2, where every write allocates (and ext4 runs allocating "
          f"O_DIRECT writes one at a time).\n")
        w('| writes | -t | steady: local qcow2 MiB/s | velo MiB/s | velo / local | '
          'first use: local qcow2 MiB/s | velo MiB/s | velo / local |')
        w('|---|---|---:|---:|---:|---:|---:|---:|')
        for cache in ('writeback', 'none'):
            for qd in (1, 16):
                r, f = T.get(f'64k-qd{qd}-{cache}'), T.get(f'64k-qd{qd}-{cache}-first')
                if r:
                    cells = (f"{r['local-mibs']:.0f} | {r['velo-mibs']:.0f} | "
                             f"{fmt_x(r['ratio'])}")
                    if f:
                        cells += (f" | {f['local-mibs']:.0f} | {f['velo-mibs']:.0f} | "
                                  f"{fmt_x(f['ratio'])}")
                    else:
                        cells += ' | | |'
                    w(f"| 64 KiB, QD {qd} | {cache} | {cells} |")
                    targets.append((f'{rate}: write-back guest writes, 64 KiB QD{qd} -t {cache}, '
                                    f'steady state: velo / local qcow2', r['ratio'], '>= 0.8',
                                    r['ratio'] >= 0.8))
                    if f:
                        targets.append((f'{rate}: write-back guest writes, 64 KiB QD{qd} -t '
                                        f'{cache}, first use: velo / local qcow2', f['ratio'],
                                        '>= 0.8', f['ratio'] >= 0.8))
        n = T.get('64k-qd1-writeback-nolink')
        if n and 'linked-mibs' in n:
            w(f"\nThe link's effect (64 KiB QD 1, -t writeback, interleaved runs): "
              f"{n['linked-mibs']:.0f} MiB/s with velo-link in front of the export, "
              f"{n['velo-mibs']:.0f} MiB/s with the export on a local socket (with / without: "
              f"{fmt_x(n['ratio'])}; the drain holds back while the guest writes, "
              f"drain-lag-ms, so the link should not matter here).")
        z, d = T.get('4k-zero-extents'), T.get('4k-data-extents')
        if z and d:
            w(f"\n4 KiB writes, one per 64 KiB extent, cold cache: into extents the origin holds as "
              f"zeros, {z['velo-ms-per-write']:.2f} ms each (local qcow2 {z['local-ms-per-write']:.2f}); "
              f"into extents it holds data in, **{d['velo-ms-per-write']:.1f} ms each** (local "
              f"{d['local-ms-per-write']:.2f}; {fmt_mib(d['link-down'])} MiB fetched for "
              f"{d['writes']} writes): a partial write first reads the whole extent from the origin, "
              f"one round trip each.")
        w('')
    B = W.get('drain-backlog', {})
    rows = [(k, B[k]) for k in ('64k', '1m', '4k') if k in B]
    if rows:
        w(f"Drain of a backlog: the same data written while the link runs at a trickle, so "
          f"that all of it waits in the journal; then the link gets its rate back, and the drain "
          f"is timed from when data flows again (the first 64 KiB) until `velo-drain` says idle. "
          f"This is the drain's own rate. Ideal = link rate ({bps / 8e6:.1f} MB/s) x the run's "
          f"compression (guest bytes / WRITE payload bytes); \"link busy\" = bytes velo-link "
          f"carried up / (link rate x drain time).\n")
        w('| writes | backlog MiB (records) | drained MiB | compression | drain s | drain MB/s | '
          'ideal MB/s | ratio | link busy |')
        w('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
        for k, r in rows:
            if 'error' in r:
                w(f"| {k} | failed: {r['error'][:200]} | | | | | | | |")
                continue
            nw = r.get('writers', 1)
            w(f"| {_writes(r, k)}{f' ({nw} writers)' if nw > 1 else ''} | "
              f"{fmt_mib(r['backlog-bytes'])} ({r['backlog-records']}) | "
              f"{fmt_mib(r['guest-bytes'])} | {r['compression']:.2f}x | {r['drain-s']:.1f} | "
              f"{r['drain-Bps'] / 1e6:.2f} | {r['ideal-Bps'] / 1e6:.2f} | **{r['ratio']:.2f}** | "
              f"{r['link-ratio']:.2f} |")
            targets.append((f'{rate}: write-back drain of a backlog / (link x compression), '
                            f'{k} writes', r['ratio'], '>= 0.9', r['ratio'] >= 0.9))
        w('')
    D = W.get('drain', {})
    rows = [(k, D[k]) for k in ('64k', '1m', '4k') if k in D]
    if rows:
        w(f"Drain: real disk data (64 KiB extents of the test guest) written through an NBD export "
          f"of the velo node (qemu-io, `write -s`), then `velo-drain` polled every 50 ms until "
          f"idle, writer and drain together (4 KiB writes: four qemu-io writers at once, "
          f"each a disjoint share; one alone writes below the drain's ideal; before 2026-11-27 "
          f"one writer of 4,096 and the row measured it). "
          f"Drain time from the first write to idle. Ideal = link rate "
          f"({bps / 8e6:.1f} MB/s) x guest bytes / WRITE payload bytes (wire-bytes-drained); "
          f"ratio = drain rate / ideal; \"by link bytes\" counts all bytes velo-link carried up. "
          f"Load average {_load(D)}.\n")
        w('| writes | guest MiB | wire MiB | compression | writer s | drain s | drain MB/s | '
          'ideal MB/s | ratio | by link bytes | after the writer | CPU s: cloud / origin / link |')
        w('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
        for k, r in rows:
            if 'error' in r:
                w(f"| {k} | failed: {r['error'][:200]} | | | | | | | | | | |")
                continue
            c = r.get('cpu-s', {})
            after = r.get('ratio-after-writer')
            nw = r.get('writers', 1)
            w(f"| {_writes(r, k)}{f' ({nw} writers)' if nw > 1 else ''} | "
              f"{fmt_mib(r['guest-bytes'])} | {fmt_mib(r['wire-bytes'])} | {r['compression']:.2f}x | "
              f"{r['writer-s']:.1f} | {r['drain-s']:.1f} | {r['drain-Bps'] / 1e6:.2f} | "
              f"{r['ideal-Bps'] / 1e6:.2f} | {r['ratio']:.2f} | {r['link-ratio']:.2f} | "
              f"{'n/a' if after is None else f'{after:.2f}'} | {c.get('cloud-qsd', 0):.1f} / "
              f"{c.get('origin-qsd', 0):.1f} / {c.get('velo-link', 0):.1f} |")
            targets.append((f'{rate}: write-back writer + drain / (link x compression), '
                            f'{k} writes', r['ratio'], '>= 0.9', r['ratio'] >= 0.9))
        w('')
    runs = W.get('rpo', {})
    if 'load' in runs or 'error' in runs:       # runs before --wb-load took a list
        runs = {'': runs}
    rows = []
    for P in runs.values():
        if P.get('error'):
            w(f"RPO run at {P.get('load', 0):.0%} load: failed: {P['error'][:300]}\n")
        elif P.get('samples'):
            rows.append(P)
    if rows:
        P = rows[0]
        w(f"RPO: 64 KiB writes of guest data offered at a fixed rate (a share of link rate x "
          f"{P['compression-assumed']:.2f}, the 64 KiB drain's compression) for {P['seconds']} s; "
          f"`rpo-ms` sampled every second (growth: its slope over the second half of the run). "
          f"Load average {', '.join(_load(P) for P in rows)}.\n")
        w('| load | offered MB/s | written MiB | write MB/s | rpo max s | rpo p95 s | rpo median s '
          '| rpo growth, 2nd half | journal used max MiB | drain tail s | throttled writes |')
        w('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
        for P in rows:
            slope = P.get('rpo-slope-s-per-min')
            w(f"| {P['load']:.0%} | {P['offered-Bps'] / 1e6:.1f} | {fmt_mib(P['written-bytes'])} | "
              f"{P['written-Bps'] / 1e6:.1f} | {P['rpo-max-ms'] / 1000:.1f} | "
              f"{P['rpo-p95-ms'] / 1000:.1f} | {P['rpo-median-ms'] / 1000:.1f} | "
              f"{'n/a' if slope is None else f'{slope:+.1f} s/min'} | {fmt_mib(P['used-max'])} | "
              f"{P['tail-s']:.1f} | {P['throttled']} |")
            ld = f"{P['load']:.0%}"
            targets.append((f'{rate}: write-back RPO max under {ld} load', f"{P['rpo-max-ms'] / 1000:.1f} s",
                            '<= 30 s', P['rpo-max-ms'] <= 30000))
            targets.append((f'{rate}: write-back RPO p95 under {ld} load', f"{P['rpo-p95-ms'] / 1000:.1f} s",
                            '<= 30 s', P['rpo-p95-ms'] <= 30000))
            if slope is not None:
                targets.append((f'{rate}: write-back RPO holds under {ld} load (growth over the '
                                f'2nd half)', f'{slope:+.1f} s/min', '<= +1 s/min (bounded)',
                                slope <= 1))
        w('')


def _bench_mib(T):
    r = T.get('64k-qd1-writeback') or {}
    return r.get('bytes', 0) // MiB
