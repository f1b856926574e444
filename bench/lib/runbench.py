"""runbench.py: the Velo WAN benchmark (driven by bench/run.sh; see there).

One run, for each rate asked, side by side over the emulated WAN
(tests/wan/velo-link between the "cloud" client and the "on-prem"
qemu-storage-daemon):

  workloads  the boot-like traces (bench/traces/*.trace, replayed serially by
             bench/trace-replay) and a real boot of the test guest
             (tests/guest/boot-guest.sh --controller pvscsi, time to BOOT-OK)
  methods    local raw image; velo cold (empty cache file) and warm (same
             cache file again); stock copy-on-read (qcow2 overlay whose
             backing is an NBD export of the same image, under a
             copy-on-read filter) cold and warm; copy-first (qemu-img convert
             and nbdcopy over NBD, then local)
  extras     qemu-img bench of a warm velo node vs the local raw image; peak
             RSS of the velo client vs ram-size; cache metadata per GiB
  write-back writeback.py: guest writes in write-mode=write-back vs a local
             qcow2, journal drain rate, RPO under load (--writeback alone)

Everything runs from a private work directory; every process started here
is stopped by its pid at the end.
"""

import argparse
import base64
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
TOP = os.path.dirname(BENCH)
BIN = os.path.join(TOP, 'build', 'bin')
sys.path.insert(0, HERE)
import tracelib  # noqa: E402
import profilebench  # noqa: E402
import writeback  # noqa: E402
from benchutil import MiB, GiB, BENCH_OFFSET, BENCH_BYTES, rate_name, parse_rate, \
    parse_size, fmt_s, fmt_mib, fmt_x, get, ratio  # noqa: E402
from report import report  # noqa: E402

EXPORT = 'disk0'
BENCH_RUNS = 9          # each run is short (0.05-0.7 s): report the median of 9


def log(msg):
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


class Procs:
    """Background processes we started, stopped by pid."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, logfile, pidfile=None, wait_for=None):
        f = open(logfile, 'ab')
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        f.close()
        self.procs.append(p)
        want = wait_for or pidfile
        if want:
            for _ in range(200):
                if os.path.exists(want) and (not pidfile or os.path.getsize(pidfile) > 0):
                    break
                if p.poll() is not None:
                    break
                time.sleep(0.05)
            if p.poll() is not None or not os.path.exists(want):
                with open(logfile, errors='replace') as lf:
                    tail = lf.read()[-2000:]
                raise RuntimeError(f'{cmd[0]} did not start:\n{tail}')
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


class Link:
    """One velo-link instance: client -> (delay, rate) -> server."""

    def __init__(self, procs, work, name, upstream, delay_ms, rate):
        self.ctl = os.path.join(work, f'{name}.ctl')
        self.sock = os.path.join(work, f'{name}.sock')
        pid = os.path.join(work, f'{name}.pid')
        for x in (self.ctl, self.sock, pid):
            if os.path.exists(x):
                os.unlink(x)
        self.proc = procs.start(
            [os.path.join(TOP, 'tests/wan/velo-link'), '--listen', f'unix:{self.sock}',
             '--connect', f'unix:{upstream}', '--delay-ms', str(delay_ms), '--rate', rate,
             '--control', self.ctl, '--pidfile', pid, '--log', os.path.join(work, f'{name}.log')],
            os.path.join(work, f'{name}.out'), pidfile=pid)

    def bytes(self):
        out = subprocess.run([os.path.join(TOP, 'tests/wan/velo-link'), '--ctl', self.ctl, 'stats'],
                             stdout=subprocess.PIPE, text=True).stdout
        m = re.search(r'bytes_up=(\d+) bytes_down=(\d+)', out)
        if not m:
            raise RuntimeError(f'velo-link stats: {out!r}')
        return int(m.group(1)) + int(m.group(2))


def wired(link, fn):
    """fn() with the bytes that crossed @link meanwhile added as 'wire'."""
    def run():
        b0 = link.bytes()
        r = fn()
        time.sleep(0.2)
        r['wire'] = link.bytes() - b0
        return r
    return run


GUEST_MEM_MIB = 512        # boot-guest.sh's default -m


def guest_ram_rss(smaps, mib):
    """Resident bytes of the guest's RAM: the anonymous mapping of exactly
    @mib MiB in a QEMU process's smaps (None if there is not one)."""
    found, size = [], None
    try:
        with open(smaps) as f:
            for line in f:
                m = re.match(r'([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*$', line)
                if m:
                    size = int(m.group(2), 16) - int(m.group(1), 16)
                elif line.startswith('Rss:') and size == mib * MiB:
                    found.append(int(line.split()[1]) * 1024)
                    size = None
    except OSError:
        return None
    return found[0] if len(found) == 1 else None


def velo_json(sock, cache, **extra):
    o = {'driver': 'velo', 'server': {'type': 'unix', 'path': sock}, 'export': EXPORT,
         'cache': {'file': cache}}
    o.update(extra)
    return 'json:' + json.dumps(o, separators=(',', ':'))


def cor_json(overlay):
    return 'json:' + json.dumps({'driver': 'copy-on-read', 'file': {
        'driver': 'qcow2', 'file': {'driver': 'file', 'filename': overlay}}},
        separators=(',', ':'))


class Bench:
    def __init__(self, a):
        self.a = a
        self.procs = Procs()
        self.work = a.work or tempfile.mkdtemp(prefix='velo-bench.')
        os.makedirs(self.work, exist_ok=True)
        self.guest = os.path.join(TOP, 'build/e2e/guest')
        self.raw = os.path.join(self.guest, 'guest.raw')
        self.qcow2 = os.path.join(self.guest, 'guest.qcow2')
        self.results = {'started': datetime.datetime.now().isoformat(timespec='seconds'),
                        'args': vars(a), 'rates': {}, 'loadavg-start': os.getloadavg()}
        self.n = 0
        self.bin = BIN

    def path(self, name):
        return os.path.join(self.work, name)

    def fresh(self, name):
        self.n += 1
        p = self.path(f'{self.n:02d}-{name}')
        if os.path.exists(p):
            os.unlink(p)
        return p

    # --- setup -----------------------------------------------------------

    def snapshot_binaries(self):
        """Copy build/bin into the work directory, so that a rebuild during
        the run cannot mix two versions of velo in one report; record which
        commit they come from."""
        def git(*args):
            return subprocess.run(['git', '-C', TOP, *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True).stdout.strip()
        names = ('qemu-img', 'qemu-io', 'qemu-storage-daemon', 'qemu-system-x86_64')
        mtime = max(os.stat(os.path.join(BIN, b)).st_mtime for b in names)
        dirty = git('status', '--porcelain', '--', 'block', 'qapi', 'patches')
        self.results['build'] = {
            'commit': git('rev-parse', '--short', 'HEAD'),
            'subject': git('log', '-1', '--format=%s'),
            'dirty': bool(dirty),
            'binaries-built': datetime.datetime.fromtimestamp(mtime).isoformat(timespec='seconds'),
        }
        if self.a.no_snapshot:
            self.bin = BIN
            return
        self.bin = self.path('bin')
        os.makedirs(self.bin, exist_ok=True)
        import fcntl
        with open('/tmp/velo-build.lock', 'a') as lock:    # builds hold it (see README)
            fcntl.flock(lock, fcntl.LOCK_EX)
            for b in names:
                subprocess.run(['cp', os.path.realpath(os.path.join(BIN, b)),
                                os.path.join(self.bin, b)], check=True)
            mtime = max(os.stat(os.path.join(BIN, b)).st_mtime for b in names)
            self.results['build']['binaries-built'] = datetime.datetime.fromtimestamp(
                mtime).isoformat(timespec='seconds')
        log(f"binaries of commit {self.results['build']['commit']}"
            f"{' (block/ modified)' if dirty else ''}, built "
            f"{self.results['build']['binaries-built']}, copied to {self.bin}")

    def setup(self):
        log(f'work directory {self.work}')
        subprocess.run([os.path.join(TOP, 'tests/guest/build-guest.sh'), self.guest], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(['make', '-s', '-C', os.path.join(TOP, 'tests/wan')], check=True)
        for b in ('qemu-img', 'qemu-io', 'qemu-storage-daemon', 'qemu-system-x86_64'):
            if not os.access(os.path.join(BIN, b), os.X_OK):
                raise SystemExit(f'run.sh: {BIN}/{b} missing: build QEMU first (make)')
        self.snapshot_binaries()
        # Empty disks for the metadata measurement.
        for name, size in (('meta1g', '1G'), ('meta64g', '64G')):
            subprocess.run([os.path.join(self.bin, 'qemu-img'), 'create', '-q', '-f', 'qcow2',
                            self.path(f'{name}.qcow2'), size], check=True)
        self.velo_sock = self.path('onprem-velo.sock')
        self.nbd_sock = self.path('onprem-nbd.sock')
        args = [os.path.join(self.bin, 'qemu-storage-daemon'),
                '--blockdev', f'file,node-name=f0,filename={self.qcow2},read-only=on',
                '--blockdev', 'qcow2,node-name=q0,file=f0,read-only=on',
                '--nbd-server', f'addr.type=unix,addr.path={self.nbd_sock}',
                '--export', f'velo,id={EXPORT},node-name=q0,addr.type=unix,addr.path={self.velo_sock}',
                '--export', f'nbd,id=nbd0,node-name=q0,name={EXPORT}']
        # A second VM cloned from the same template: an overlay on the guest.
        self.clone = self.path('clone.qcow2')
        subprocess.run([os.path.join(self.bin, 'qemu-img'), 'create', '-q', '-f', 'qcow2',
                        '-b', self.qcow2, '-F', 'qcow2', self.clone], check=True)
        args += ['--blockdev', f'file,node-name=fclone,filename={self.clone},read-only=on',
                 '--blockdev', 'qcow2,node-name=clone,file=fclone,read-only=on',
                 '--export', f'velo,id=clone,node-name=clone,addr.type=unix,'
                 f'addr.path={self.velo_sock}']
        for name in ('meta1g', 'meta64g'):
            args += ['--blockdev', f'file,node-name=f{name},filename={self.path(name + ".qcow2")},'
                     'read-only=on',
                     '--blockdev', f'qcow2,node-name={name},file=f{name},read-only=on',
                     '--export', f'velo,id={name},node-name={name},addr.type=unix,'
                     f'addr.path={self.velo_sock}']
        args += ['--pidfile', self.path('qsd.pid')]
        self.procs.start(args, self.path('qsd.log'), pidfile=self.path('qsd.pid'),
                         wait_for=self.nbd_sock)
        for _ in range(100):
            if os.path.exists(self.velo_sock):
                break
            time.sleep(0.05)
        # The traces and what they need.
        self.traces = []
        for t in self.a.traces:
            p = t if os.path.exists(t) else os.path.join(BENCH, 'traces', t + '.trace')
            if not os.path.exists(p):
                raise SystemExit(f'run.sh: no trace {t} ({p}); run bench/make-boot-trace')
            reads, _ = tracelib.read_trace(p)
            if self.a.trace_limit:
                reads = reads[:self.a.trace_limit]
            st = tracelib.trace_stats(reads, self.raw)
            name = os.path.basename(p).rsplit('.', 1)[0]
            tf = p
            if self.a.trace_limit:
                tf = self.path(f'{name}.limited.trace')
                with open(tf, 'w') as f:
                    f.writelines(f'R {o} {n}\n' for o, n in reads)
            self.traces.append({'name': name, 'file': tf, 'stats': st})
            log(f"trace {name}: {st['reads']} reads, {st['bytes'] / MiB:.1f} MiB, "
                f"{st['nonzero-bytes'] / MiB:.1f} MiB unique non-zero")
        self.image_nonzero = tracelib.image_nonzero_bytes(self.raw)
        self.results['image'] = {'disk-size': os.path.getsize(self.raw),
                                 'nonzero-bytes': self.image_nonzero}
        self.results['traces'] = {t['name']: t['stats'] for t in self.traces}

    # --- primitives ------------------------------------------------------

    def replay(self, trace, target, *opts):
        cmd = [os.path.join(BENCH, 'trace-replay'), '--json', '-q',
               '--qemu-io', os.path.join(self.bin, 'qemu-io'),
               '--qemu', os.path.join(self.bin, 'qemu-system-x86_64'), *opts, trace, target]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode:
            raise RuntimeError(f'trace-replay failed: {p.stderr.strip()[-1500:]}')
        return json.loads(p.stdout.strip().splitlines()[-1])

    def boot(self, blockdev_args, blockstats=False):
        """Boot the guest; returns {'time', 'vmhwm', 'velo'?}."""
        tag = self.fresh('boot')
        hwm = tag + '.hwm'
        cmd = [os.path.join(TOP, 'tests/guest/boot-guest.sh'), '--controller', 'pvscsi',
               '--qemu', os.path.join(self.bin, 'qemu-system-x86_64'),
               '--timeout', str(self.a.boot_timeout), '--serial-log', tag + '.serial',
               '--qemu-log', tag + '.qemu',
               '--on-boot', f'grep -E "VmHWM|VmRSS" /proc/$BOOT_GUEST_PID/status > {shlex.quote(hwm)}; '
               f'cat /proc/$BOOT_GUEST_PID/smaps > {shlex.quote(tag + ".smaps")}']
        if blockstats:
            cmd += ['--blockstats', tag + '.stats.json']
        cmd += ['--', *blockdev_args]
        if self.a.qemu_trace:
            cmd += ['-msg', 'timestamp=on', '-D', tag + '.trace',
                    *(x for ev in self.a.qemu_trace.split(',') for x in ('-trace', ev))]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with open(tag + '.out', 'w') as f:
            f.write(p.stdout)
        m = re.search(r'BOOT-OK after ([\d.]+) s', p.stdout)
        if p.returncode or not m:
            raise RuntimeError('boot failed: ' + p.stdout.strip()[-1500:])
        res = {'time': float(m.group(1))}
        try:
            with open(hwm) as f:
                for line in f:
                    k, v = line.split(':')
                    res['vmhwm' if k == 'VmHWM' else 'vmrss'] = int(v.split()[0]) * 1024
        except OSError:
            pass
        g = guest_ram_rss(tag + '.smaps', GUEST_MEM_MIB)
        if g is not None and 'vmrss' in res:
            # What the guest touched of its own RAM varies by a few MiB
            # from boot to boot; the host side is the rest.
            res['guest-ram-rss'] = g
            res['host-rss'] = res['vmrss'] - g
        if blockstats:
            with open(tag + '.stats.json') as f:
                for st in json.load(f):
                    if st.get('node-name') == 'd0':
                        ds = st.get('driver-specific')
                        if ds:
                            res['velo'] = ds
        return res

    def img_bench(self, target, size, count, fmt=None, objs=()):
        cmd = [os.path.join(self.bin, 'qemu-img'), 'bench', *objs, '-c', str(count), '-s', str(size),
               '-S', str(size), '-o', str(BENCH_OFFSET), '-d', '1']
        if fmt:
            cmd += ['-f', fmt]
        cmd.append(target)
        times = []
        for _ in range(BENCH_RUNS):
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            m = re.search(r'Run completed in ([\d.]+) seconds', p.stdout)
            if p.returncode or not m:
                raise RuntimeError(f'qemu-img bench failed: {p.stdout[-1000:]}')
            times.append(float(m.group(1)))
        times.sort()
        return size * count / times[len(times) // 2] / MiB   # MiB/s, median run

    def qio_bench(self, target, size, count, objs=()):
        """
        Serial reads of @size bytes through qemu-io (which, unlike qemu-img
        bench, takes --object): MiB/s from the time of @count reads minus
        that of one read (open and close cancel out); median of BENCH_RUNS.
        """
        def run(n):
            cmds = []
            for i in range(n):
                cmds += ['-c', f'read -q {BENCH_OFFSET + i * size} {size}']
            t = time.monotonic()
            subprocess.run([os.path.join(self.bin, 'qemu-io'), *objs, '-r', *cmds, target],
                           check=True, stdout=subprocess.DEVNULL)
            return time.monotonic() - t
        speeds = []
        for _ in range(BENCH_RUNS):
            speeds.append(size * (count - 1) / max(run(count) - run(1), 1e-6) / MiB)
        speeds.sort()
        return speeds[len(speeds) // 2]

    def measure(self, key, fn, store):
        """Run fn(); store its result (or the error) under store[key]."""
        t = time.monotonic()
        try:
            r = store[key] = fn()
            if isinstance(r, dict):
                brief = ', '.join(f'{k} {r[k]}' for k in ('elapsed-s', 'time', 'wire', 'peak-rss')
                                  if k in r)
                if 'velo' in r:
                    brief += ', velo ' + ', '.join(f'{k} {r["velo"][k]}' for k in (
                        'bytes-wire', 'fetches', 'readahead-fetches', 'misses',
                        'fetch-latency-avg-us'))
            else:
                brief = str(r)
            log(f'  {key}: {brief} ({time.monotonic() - t:.0f} s)')
        except Exception as e:      # keep going: one failure must not lose the run
            store[key] = {'error': str(e)[:2000]}
            log(f'  {key}: FAILED: {str(e)[:500]}')

    # --- one rate ----------------------------------------------------------

    def run_rate(self, rate):
        a = self.a
        R = self.results['rates'].setdefault(rate, {})
        rtt = 2 * a.delay_ms / 1000
        bps = parse_rate(rate)
        R['rtt-s'] = rtt
        log(f'=== rate {rate_name(rate)}, RTT {a.delay_ms * 2} ms ===')
        lv = Link(self.procs, self.work, f'link-velo-{rate}', self.velo_sock, a.delay_ms, rate)
        ln = Link(self.procs, self.work, f'link-nbd-{rate}', self.nbd_sock, a.delay_ms, rate)

        # Traces -----------------------------------------------------------
        for t in self.traces:
            T = R.setdefault(t['name'], {})
            name, tf = t['name'], t['file']
            T['floor'] = t['stats']['nonzero-bytes'] * 8 / bps + rtt
            log(f'--- trace {name} at {rate}: floor {T["floor"]:.2f} s')
            # local raw (second run: page cache warm, like the warm tiers)
            self.replay(tf, self.raw, '-r', '-f', 'raw')
            self.measure('local', lambda: self.replay(tf, self.raw, '-r', '-f', 'raw'), T)
            # velo
            cache = self.fresh(f'velo-{name}.cache')
            target = velo_json(lv.sock, cache)
            self.measure('velo-cold', wired(lv, lambda: self.replay(tf, target)), T)
            self.measure('velo-warm', wired(lv, lambda: self.replay(tf, target)), T)
            # velo cold again, on an empty cache file with the boot profile
            # the first cold run recorded (what a sibling clone gets)
            if os.path.exists(cache + '.profile'):
                pc = self.fresh(f'velo-{name}-profiled.cache')
                shutil.copy(cache + '.profile', pc + '.profile')
                self.measure('velo-cold-profile',
                             wired(lv, lambda: self.replay(tf, velo_json(lv.sock, pc))), T)
            # stock copy-on-read
            if not a.no_cor:
                ov = self.fresh(f'cor-{name}.qcow2')
                subprocess.run([os.path.join(self.bin, 'qemu-img'), 'create', '-q', '-f', 'qcow2', '-u',
                                '-b', f'nbd+unix:///{EXPORT}?socket={ln.sock}', '-F', 'raw', ov,
                                str(os.path.getsize(self.raw))], check=True)
                self.measure('cor-cold', wired(ln, lambda: self.replay(tf, cor_json(ov))), T)
                self.measure('cor-warm', wired(ln, lambda: self.replay(tf, cor_json(ov))), T)

        if a.quick:
            self.procs.stop(lv.proc)
            self.procs.stop(ln.proc)
            return

        # velo statistics and RAM on the first trace (qmp engine) ------------
        t = self.traces[0]
        D = R.setdefault('diag', {})
        log(f'--- velo statistics and RAM ({t["name"]}, --engine qmp) at {rate}')
        self.measure('local-qmp', lambda: self.replay(t['file'], self.raw, '--engine', 'qmp',
                                                      '-r', '-f', 'raw'), D)
        for ram in (a.ram_size, a.ram_size_small):
            cache = self.fresh(f'velo-diag-{ram}.cache')
            target = velo_json(lv.sock, cache, **{'ram-size': ram})
            self.measure(f'velo-ram-{ram}', wired(lv, lambda: self.replay(
                t['file'], target, '--engine', 'qmp')), D)

        # Copy first -----------------------------------------------------------
        C = R.setdefault('copy', {})
        if not a.no_copy:
            C['floor'] = self.image_nonzero * 8 / bps + rtt
            url = f'nbd+unix:///{EXPORT}?socket={ln.sock}'
            log(f'--- copy-first at {rate}: floor {C["floor"]:.1f} s')

            def convert(dst):
                t0 = time.monotonic()
                subprocess.run([os.path.join(self.bin, 'qemu-img'), 'convert', '-f', 'raw', '-O', 'raw',
                                url, dst], check=True, stdout=subprocess.DEVNULL)
                return {'time': time.monotonic() - t0}

            def nbdcopy(dst):
                t0 = time.monotonic()
                subprocess.run(['nbdcopy', url, dst], check=True, stdout=subprocess.DEVNULL)
                return {'time': time.monotonic() - t0}

            self.copy_raw = self.fresh('copy-convert.raw')
            self.measure('qemu-img-convert', wired(ln, lambda: convert(self.copy_raw)), C)
            if subprocess.run(['sh', '-c', 'command -v nbdcopy'], stdout=subprocess.DEVNULL).returncode == 0:
                dst = self.fresh('copy-nbdcopy.raw')
                open(dst, 'w').close()
                self.measure('nbdcopy', wired(ln, lambda: nbdcopy(dst)), C)
                if os.path.exists(dst):
                    os.unlink(dst)
            else:
                C['nbdcopy'] = {'error': 'nbdcopy not installed (apt-get install libnbd-bin)'}
            if 'error' not in C.get('qemu-img-convert', {'error': 1}):
                for t in self.traces:
                    self.measure(f'trace-{t["name"]}', lambda: self.replay(
                        t['file'], self.copy_raw, '-r', '-f', 'raw'), C)

        # Real boots ---------------------------------------------------------------
        if not a.no_boot:
            B = R.setdefault('boot', {})
            log(f'--- guest boot (pvscsi) at {rate}')
            ov = self.fresh('local-boot.qcow2')
            subprocess.run([os.path.join(self.bin, 'qemu-img'), 'create', '-q', '-f', 'qcow2', '-b',
                            self.raw, '-F', 'raw', ov], check=True)
            self.measure('local', lambda: self.boot(
                ['-blockdev', f'driver=qcow2,node-name=d0,file.driver=file,file.filename={ov}']), B)
            cache = self.fresh('velo-boot.cache')
            velo_bd = ['-blockdev', f'driver=velo,node-name=d0,server.type=unix,'
                       f'server.path={lv.sock},export={EXPORT},cache.file={cache}']
            self.measure('velo-cold', wired(lv, lambda: self.boot(velo_bd, blockstats=True)), B)
            self.measure('velo-warm', wired(lv, lambda: self.boot(velo_bd, blockstats=True)), B)
            if not a.no_cor:
                ov = self.fresh('cor-boot.qcow2')
                subprocess.run([os.path.join(self.bin, 'qemu-img'), 'create', '-q', '-f', 'qcow2', '-u',
                                '-b', f'nbd+unix:///{EXPORT}?socket={ln.sock}', '-F', 'raw', ov,
                                str(os.path.getsize(self.raw))], check=True)
                cor_bd = ['-blockdev', f'driver=qcow2,node-name=ov,file.driver=file,file.filename={ov}',
                          '-blockdev', 'driver=copy-on-read,node-name=d0,file=ov']
                self.measure('cor-cold', wired(ln, lambda: self.boot(cor_bd)), B)
                self.measure('cor-warm', wired(ln, lambda: self.boot(cor_bd)), B)
            if not a.no_copy and getattr(self, 'copy_raw', None) and os.path.exists(self.copy_raw):
                ov = self.fresh('copy-boot.qcow2')
                subprocess.run([os.path.join(self.bin, 'qemu-img'), 'create', '-q', '-f', 'qcow2', '-b',
                                self.copy_raw, '-F', 'raw', ov], check=True)
                self.measure('copy-local', lambda: self.boot(
                    ['-blockdev', f'driver=qcow2,node-name=d0,file.driver=file,file.filename={ov}']), B)
            # TCG boot times vary by 1-3 s: a second local boot for the reference.
            ov = self.fresh('local-boot-2.qcow2')
            subprocess.run([os.path.join(self.bin, 'qemu-img'), 'create', '-q', '-f', 'qcow2', '-b',
                            self.raw, '-F', 'raw', ov], check=True)
            self.measure('local-2', lambda: self.boot(
                ['-blockdev', f'driver=qcow2,node-name=d0,file.driver=file,file.filename={ov}']), B)
        if getattr(self, 'copy_raw', None) and os.path.exists(self.copy_raw):
            os.unlink(self.copy_raw)
        self.procs.stop(lv.proc)
        self.procs.stop(ln.proc)

    # --- rate-independent extras -------------------------------------------------

    def run_extras(self):
        a = self.a
        X = self.results.setdefault('extras', {})
        X['bench-runs'] = BENCH_RUNS
        log('--- warm throughput: qemu-img bench, velo (warm cache file) vs local raw')
        cache = self.bench_cache = self.fresh('velo-bench.cache')
        # Warm the cache file straight from the export (no link: the content
        # is the same), then measure through a fresh process: RAM tier empty.
        target = velo_json(self.velo_sock, cache)
        subprocess.run([os.path.join(self.bin, 'qemu-img'), 'bench', '-c', str(BENCH_BYTES // 65536),
                        '-s', '64k', '-o', str(BENCH_OFFSET), '-d', '8', target], check=True,
                       stdout=subprocess.DEVNULL)
        for size, label in ((65536, '64k'), (4096, '4k')):
            count = BENCH_BYTES // size
            self.measure(f'bench-local-{label}', lambda: self.img_bench(self.raw, size, count, 'raw'), X)
            self.measure(f'bench-velo-{label}', lambda: self.img_bench(target, size, count), X)
        log('--- warm throughput with the cache file encrypted and compressed')
        key = self.path('cache.key')
        with open(key, 'w') as f:
            f.write(base64.b64encode(os.urandom(32)).decode())
        objs = ('--object', f'secret,id=ck,file={key},format=base64')
        cache = self.fresh('velo-bench-crypt.cache')
        target = velo_json(self.velo_sock, cache, **{'key-secret': 'ck', 'cache-compress': True})
        enc = velo_json(self.velo_sock, self.fresh('velo-bench-enc.cache'), **{'key-secret': 'ck'})
        # Warm them, then time plain and at-rest side by side with qemu-io.
        self.qio_bench(target, 65536, BENCH_BYTES // 65536, objs)
        self.qio_bench(enc, 65536, BENCH_BYTES // 65536, objs)
        X['crypt-cache-allocated'] = os.stat(cache).st_blocks * 512
        plain = velo_json(self.velo_sock, self.bench_cache)
        for size, label in ((65536, '64k'), (4096, '4k')):
            count = BENCH_BYTES // size
            self.measure(f'qio-velo-{label}', lambda: self.qio_bench(plain, size, count), X)
            self.measure(f'qio-velo-enc-{label}',
                         lambda: self.qio_bench(enc, size, count, objs), X)
            self.measure(f'qio-velo-crypt-{label}',
                         lambda: self.qio_bench(target, size, count, objs), X)
        log('--- dedup: the boot trace on a second VM cloned from the same template')
        t0 = self.traces[0]
        store = self.fresh('dedup-store')
        for vm, export in (('vm1', EXPORT), ('vm2', 'clone')):
            c = self.fresh(f'dedup-{vm}.cache')
            t = velo_json(self.velo_sock, c, **{'dedup-store': store, 'export': export})
            self.measure(f'dedup-{vm}', lambda: self.replay(t0['file'], t, '--engine', 'qmp'), X)
        log('--- metadata: velo client RSS with an empty 1 GiB vs 64 GiB disk')
        for name in ('meta1g', 'meta64g'):
            c = self.fresh(f'{name}.cache')
            t = 'json:' + json.dumps({'driver': 'velo', 'server': {'type': 'unix', 'path': self.velo_sock},
                                      'export': name, 'cache': {'file': c}}, separators=(',', ':'))
            self.measure(name, lambda: self.replay('/dev/null', t), X)
            if os.path.exists(c):
                X[name]['cache-file-allocated'] = os.stat(c).st_blocks * 512
                os.unlink(c)
        self.measure('meta-local', lambda: self.replay('/dev/null', self.raw, '-r', '-f', 'raw'), X)

    def run_profile(self, rate):
        lv = Link(self.procs, self.work, f'link-profile-{rate}', self.velo_sock,
                  self.a.delay_ms, rate)
        profilebench.run_profile_boot(self, rate, lv, wired, EXPORT, log)
        self.procs.stop(lv.proc)

    def run(self):
        try:
            self.setup()
            if self.a.profile_boot:
                for rate in self.a.rates:
                    self.run_profile(rate)
                return self.results
            if not self.a.writeback:
                for rate in ([] if self.a.extras_only else self.a.rates):
                    self.run_rate(rate)
                if not self.a.quick:
                    self.run_extras()
            if self.a.writeback or not (self.a.quick or self.a.extras_only or self.a.no_writeback):
                for rate in self.a.rates:
                    writeback.run_writeback(self, rate, Link, log)
        finally:
            self.procs.stop_all()
        self.results['finished'] = datetime.datetime.now().isoformat(timespec='seconds')
        self.results['loadavg-end'] = os.getloadavg()
        return self.results


def main(argv):
    ap = argparse.ArgumentParser(prog='bench/run.sh', description=__doc__.split('\n\n')[0])
    ap.add_argument('--rate', default=None, help='link rate(s), comma-separated: 100m, 20m (default 100m)')
    ap.add_argument('--rtt-ms', type=int, default=50, help='round-trip time (default 50)')
    ap.add_argument('--quick', action='store_true',
                    help='smoke check: only the recorded boot trace (local, velo, stock COR), '
                         'at 100m unless --rate says otherwise')
    ap.add_argument('--traces', default='boot-pvscsi,synthetic-3000',
                    help='comma-separated names in bench/traces/ or paths')
    ap.add_argument('--trace-limit', type=int, default=0, help='replay only the first N reads')
    ap.add_argument('--ram-size', default='64M', help='velo ram-size of the RAM check (default 64M)')
    ap.add_argument('--ram-size-small', default='16M', help='a second, smaller ram-size checked')
    ap.add_argument('--no-boot', action='store_true', help='skip the real guest boots')
    ap.add_argument('--extras-only', action='store_true',
                    help='only the rate-independent part: warm throughput and metadata (1 min)')
    ap.add_argument('--no-copy', action='store_true', help='skip copy-first')
    ap.add_argument('--no-cor', action='store_true', help='skip stock copy-on-read')
    ap.add_argument('--boot-timeout', type=int, default=600)
    ap.add_argument('--profile-boot', action='store_true',
                    help='only cold boots: readahead only vs replaying a recorded boot profile '
                         '(use with --rate 20m)')
    ap.add_argument('--profile-runs', type=int, default=2,
                    help='boots of each kind with --profile-boot (default 2)')
    ap.add_argument('--profile-opts', default='',
                    help='extra velo options of the (b) boots, e.g. profile-inflight=512K')
    ap.add_argument('--qemu-trace', metavar='PATTERNS',
                    help='comma-separated trace event patterns for the guest boots (e.g. '
                         '"velo_fetch_*"), logged with timestamps to boot-N.trace in the work '
                         'directory (use with --keep)')
    ap.add_argument('--writeback', action='store_true',
                    help='only the write-back measurements: guest write throughput, journal drain '
                         'rate, RPO under load (~5 min; also part of a default run)')
    ap.add_argument('--no-writeback', action='store_true', help='skip the write-back measurements')
    ap.add_argument('--wb-parts', default='throughput,drain,rpo',
                    help='which write-back measurements to run (comma list of '
                         'throughput, drain, rpo; default all)')
    ap.add_argument('--wb-drain-mib', type=int, default=256,
                    help='guest MiB written for the drain rate of 64 KiB and 1 MiB writes (default 256)')
    ap.add_argument('--wb-load', default='0.6',
                    help='RPO runs: write rate(s) as a fraction of link rate x compression, '
                         'comma-separated (default 0.6)')
    ap.add_argument('--wb-rpo-seconds', type=int, default=90,
                    help='RPO run: seconds of sustained writes (default 90)')
    ap.add_argument('--work', help='work directory (default: a new /tmp/velo-bench.XXXXXX)')
    ap.add_argument('--keep', action='store_true', help='keep the work directory')
    ap.add_argument('--no-snapshot', action='store_true',
                    help='use build/bin directly instead of a copy made at the start')
    ap.add_argument('--out', help='markdown output (default bench/results/<date>.md, appended)')
    ap.add_argument('--report', metavar='JSON',
                    help='only print the markdown report of an earlier run\'s raw figures')
    a = ap.parse_args(argv)
    a.argv = argv
    if a.report:
        with open(a.report) as f:
            res = json.load(f)
        for name, st in res.get('traces', {}).items():
            if 'demand-round-trips' not in st:      # older runs: recompute
                p = os.path.join(BENCH, 'traces', name + '.trace')
                if os.path.exists(p):
                    st['demand-round-trips'] = tracelib.demand_round_trips(tracelib.read_trace(p)[0])
        rep = profilebench.profile_report if res['args'].get('profile_boot') else report
        sys.stdout.write(rep(res) + (f"Run took {res['duration-s'] / 60:.1f} min.\n"
                                        if 'duration-s' in res else ''))
        return 0
    a.rate = a.rate or '100m'
    if a.quick:
        a.traces = a.traces.split(',')[0]
    a.rates = [r.strip() for r in a.rate.split(',') if r.strip()]
    for r in a.rates:
        parse_rate(r)
    a.traces = [t.strip() for t in a.traces.split(',') if t.strip()]
    a.wb_loads = [float(x) for x in a.wb_load.split(',') if x.strip()]
    a.wb_parts = sorted({x.strip() for x in a.wb_parts.split(',') if x.strip()})
    bad = set(a.wb_parts) - {'throughput', 'drain', 'rpo'}
    if bad:
        ap.error(f'--wb-parts: unknown {", ".join(sorted(bad))}')
    if a.rtt_ms % 2:
        raise SystemExit('run.sh: --rtt-ms must be even (velo-link delays each direction by RTT/2)')
    a.delay_ms = a.rtt_ms // 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = Bench(a)
    t0 = time.monotonic()
    try:
        res = b.run()
    except KeyboardInterrupt:
        raise SystemExit(130)
    finally:
        if not a.keep and not a.work:
            subprocess.run(['rm', '-rf', b.work])
    res['duration-s'] = round(time.monotonic() - t0)
    md = (profilebench.profile_report if a.profile_boot else report)(res) + f"Run took {res['duration-s'] / 60:.1f} min.\n"
    sys.stdout.write(md)
    date = datetime.date.today().isoformat()
    out = a.out or os.path.join(BENCH, 'results', f'{date}.md')
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    new = not os.path.exists(out)
    with open(out, 'a') as f:
        if new:
            f.write(f'# Velo benchmark results, {date}\n\nWritten by bench/run.sh; '
                    'see docs/performance.md for how to read them.\n\n')
        f.write(md + '\n')
    with open(os.path.splitext(out)[0] + f"-{time.strftime('%H%M%S')}.json", 'w') as f:
        json.dump(res, f, indent=1)
    log(f'results appended to {out}')
    return 0
