"""profilebench.py: cold boots with and without a boot profile (bench/run.sh
--profile-boot; see docs/performance.md, "Learned prefetch").

For each rate, over the same emulated WAN as the main benchmark, boots the
test guest cold (empty cache file) to BOOT-OK:

  (a) readahead only: profile=off
  (b) profile replay: template=bench-guest, replaying the template profile
      that one earlier cold boot (the "record" boot, also profile=on,
      nothing to replay) wrote into the run's profile directory

  local: the same guest from a local qcow2 overlay, after each (b): the
      floor, the guest's own time under this accelerator with no link

The runs interleave (a, record, b, local, a, b, local, ...), so that a slow
spell of the shared machine hits every side.  Each boot reports its time, the bytes that
crossed velo-link, and velo's statistics at the marker.
"""

import os
import subprocess
import statistics


def velo_blockdev(sock, export, cache, **opts):
    o = ''.join(f',{k}={v}' for k, v in opts.items())
    return ['-blockdev', f'driver=velo,node-name=d0,server.type=unix,server.path={sock},'
            f'export={export},cache.file={cache}{o}']


def run_profile_boot(bench, rate, link, wired, export, log):
    """Fill bench.results['rates'][rate]['profile-boot']."""
    a = bench.a
    R = bench.results['rates'].setdefault(rate, {})
    P = R.setdefault('profile-boot', {'a': [], 'b': []})
    pdir = bench.path(f'profiles-{rate}')
    os.makedirs(pdir, exist_ok=True)
    tmpl = dict(template='bench-guest', **{'profile-dir': pdir})

    def boot(kind, **opts):
        cache = bench.fresh(f'profile-{kind}.cache')
        store = {}
        bench.measure(kind, wired(link, lambda: bench.boot(
            velo_blockdev(link.sock, export, cache, **opts), blockstats=True)), store)
        return store[kind]

    log(f'--- profile boots at {rate}: {a.profile_runs} x (a) readahead only, '
        f'(b) replaying a recorded profile')
    P['a'].append(boot('a-readahead', profile='off'))
    P['record'] = boot('record', **tmpl)
    tp = os.path.join(pdir, 'bench-guest.template.profile')
    if not os.path.exists(tp):
        raise RuntimeError(f'the record boot wrote no template profile ({tp})')
    P['profile-bytes'] = os.path.getsize(tp)
    extra = dict(kv.split('=', 1) for kv in a.profile_opts.split(',') if kv)
    P['b-opts'] = extra
    def local():
        # The floor: the same guest booting from a local qcow2 overlay (the
        # guest's own CPU time under this accelerator, no link at all).
        ov = bench.fresh('profile-local.qcow2')
        subprocess.run([os.path.join(bench.bin, 'qemu-img'), 'create', '-q', '-f', 'qcow2',
                        '-b', bench.raw, '-F', 'raw', ov], check=True)
        store = {}
        bench.measure('local', lambda: bench.boot(
            ['-blockdev', f'driver=qcow2,node-name=d0,file.driver=file,file.filename={ov}']), store)
        return store['local']

    for i in range(a.profile_runs):
        P['b'].append(boot('b-profile', **tmpl, **extra))
        P.setdefault('local', []).append(local())
        if i + 1 < a.profile_runs:
            P['a'].append(boot('a-readahead', profile='off'))


def _col(runs, key):
    return [r[key] for r in runs if isinstance(r, dict) and key in r]


def _v(runs, key):
    return [r['velo'][key] for r in runs if isinstance(r, dict) and key in r.get('velo', {})]


def profile_report(res):
    """Markdown tables of a --profile-boot run."""
    out = []
    w = out.append
    b = res.get('build', {})
    w(f"## Cold boot: profile replay vs readahead only ({res.get('started', '?')})\n")
    w(f"Binaries of commit {b.get('commit', '?')} ({b.get('subject', '')}). "
      f"RTT {res['args']['rtt_ms']} ms. Boot: pvscsi, time to BOOT-OK from QEMU start.\n")
    for rate, R in res['rates'].items():
        P = R.get('profile-boot')
        if not P:
            continue
        w(f"\n### {rate}\n")
        w('| run | time s | wire MiB | fetches | readahead | misses | replayed extents '
          '| useful | fetch latency avg / max ms |')
        w('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
        rows = [(f'(a) readahead only #{i + 1}', r) for i, r in enumerate(P['a'])]
        rows.append(('record boot (profile on, nothing to replay)', P.get('record', {})))
        rows += [(f'(b) profile replay #{i + 1}', r) for i, r in enumerate(P['b'])]
        rows += [(f'local qcow2 (the floor) #{i + 1}', r) for i, r in enumerate(P.get('local', []))]
        for name, r in rows:
            if 'error' in r:
                w(f'| {name} | failed: {r["error"][:80]} | | | | | | | |')
                continue
            v = r.get('velo', {})
            if not v:
                w(f"| {name} | {r['time']:.1f} | | | | | | | |")
                continue
            w(f"| {name} | {r['time']:.1f} | {r.get('wire', 0) / (1 << 20):.1f} | "
              f"{v.get('fetches', '')} | {v.get('readahead-fetches', '')} | {v.get('misses', '')} | "
              f"{v.get('profile-replayed', '')} | {v.get('profile-useful', '')} | "
              f"{v.get('fetch-latency-avg-us', 0) / 1000:.0f} / "
              f"{v.get('fetch-latency-max-us', 0) / 1000:.0f} |")
        ta, tb = _col(P['a'], 'time'), _col(P['b'], 'time')
        if ta and tb:
            ma, mb = statistics.median(ta), statistics.median(tb)
            wa, wb = statistics.median(_col(P['a'], 'wire')), statistics.median(_col(P['b'], 'wire'))
            if P.get('b-opts'):
                w(f"\n(b) options: {P['b-opts']}")
            w(f"\nMedian (a) {ma:.1f} s, (b) {mb:.1f} s: **(b) / (a) = {mb / ma:.2f}** "
              f"(target <= 0.70). Wire: (a) {wa / (1 << 20):.1f} MiB, (b) {wb / (1 << 20):.1f} MiB. "
              f"Profile file {P.get('profile-bytes', 0)} bytes, "
              f"{_v([P.get('record', {})], 'profile-recorded') or ['?']} extents recorded "
              f"(at the marker).\n")
            tl = _col(P.get('local', []), 'time')
            if tl:
                ml = statistics.median(tl)
                w(f"Local boot (the floor: no link, the guest's own time) median {ml:.1f} s. "
                  f"Best possible (b) / (a) on this machine: {ml / ma:.2f}. Time waiting on the "
                  f"link, (a) {ma - ml:.1f} s, (b) {mb - ml:.1f} s: replay cut it by "
                  f"**{1 - (mb - ml) / (ma - ml):.0%}**.\n" if ma > ml else
                  f"Local boot median {ml:.1f} s.\n")
    return '\n'.join(out) + '\n'
