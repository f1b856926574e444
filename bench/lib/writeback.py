"""writeback.py: the write-back measurements of the Velo WAN benchmark
(bench/run.sh --writeback, and part of a default run; see
docs/performance.md, "Write-back: guest writes, journal drain, RPO").

For each rate, over the same emulated WAN as the rest of the benchmark
(tests/wan/velo-link in front of an on-prem qemu-storage-daemon that
serves a blank 4 GiB qcow2 as a writable velo export, writable=on,
write-state=FILE), a velo node in write-mode=write-back with a raw journal
node:

  1. guest write throughput: qemu-img bench -w (64 KiB sequential, QD 1
     and 16, -t writeback and -t none) on velo against a fresh local qcow2,
     interleaved, median of WB_RUNS; plus velo with no link in front of
     the export, and 4 KiB writes into extents the origin holds as zero and
     as data (a partial write of an uncached extent reads it first);
  2. drain throughput: a known amount of real disk data (extents of the test
     guest, zstd level 1 compresses them about 2.5x) written through a
     cloud-side qemu-storage-daemon (the velo node, an NBD export of it for
     the writer, QMP for velo-drain), then velo-drain polled until idle;
     drain bytes/s against link rate x guest bytes / wire bytes, for 64 KiB,
     1 MiB and 4 KiB writes: once with the link slowed to a trickle while
     the writer runs, the drain timed alone once the rate is back (the
     drain's own rate), and once with writer and drain together;
  3. RPO: 64 KiB writes at a fixed rate (for each --wb-load: that share of
     link rate x the compression ratio measured in 2.) for --wb-rpo-seconds,
     rpo-ms sampled every second.

The journal of every run is sized to hold the whole workload, so that no
guest write waits for the link (throttling) unless noted.  Every process
started here is registered with the benchmark's Procs and stopped by pid.
"""

import json
import os
import socket
import statistics
import subprocess
import threading
import time

from benchutil import MiB, GiB, parse_rate

DISK = 4 * GiB                  # the on-prem disk (blank qcow2)
LOCAL_STEADY = 512 * MiB        # the preallocated local qcow2 (steady state)
WB_RUNS = 9                     # qemu-img bench runs per configuration (median;
                                # runs of 60-300 ms swing by 2x on a shared VM)
BENCH_COUNT = 4096              # x 64 KiB = 256 MiB per qemu-img bench run
POOL_CHUNKS = 512               # distinct 64 KiB chunks of guest data
POLL_S = 0.05                   # velo-drain poll interval while draining
BACKLOG_RATE = '8k'             # the link while a backlog builds up (bit/s)

# Regions of the disk, so that no measurement writes where another did:
# a partial write of an extent the origin holds as data must fetch it first.
R_BENCH64 = 0                   # 1: 64 KiB qemu-img bench (256 MiB)
R_BENCH4K_ZERO = 256 * MiB      # 1: 4 KiB writes, one per extent (64 MiB)
R_DRAIN = {65536: 512 * MiB, 1 << 20: 1 * GiB, 4096: 1536 * MiB}   # 2.
R_RMW = 1792 * MiB              # 1: 4 KiB writes into data extents (prefilled)
RMW_PREFILL = 16 * MiB
R_RPO = 2 * GiB                 # 3: 64 KiB writes, wrapping inside 2 GiB
RPO_SPAN = 2 * GiB


def cpu_s(pid):
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, IndexError, ValueError):
        return 0.0


class Qmp:
    """A minimal QMP client on a unix socket."""

    def __init__(self, path, proc, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                break
            except (ConnectionRefusedError, FileNotFoundError):
                s.close()
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f'no QMP on {path}')
                time.sleep(0.02)
        self.sock = s
        self.f = s.makefile('rw')
        self.f.readline()
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        self.f.write(json.dumps({'execute': name, 'arguments': args}) + '\n')
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError(f'QMP connection closed during {name}')
            m = json.loads(line)
            if 'error' in m:
                raise RuntimeError(f"{name}: {m['error'].get('desc')}")
            if 'return' in m:
                return m['return']

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def make_pool(raw, pool_dir):
    """POOL_CHUNKS files of 64 KiB (c000...) taken evenly from the non-zero
    extents of the test guest's raw image, and 1 MiB files (m00...) of 16
    consecutive chunks each: write data with a real disk's mix of text,
    binaries, metadata and already-compressed files.  qemu-io's write -s
    reads a file from its start, and the drain compresses each record on
    its own, so cycling through a pool keeps the compression ratio of the
    data.  Returns (chunk paths, 1 MiB paths)."""
    os.makedirs(pool_dir, exist_ok=True)
    nonzero = []
    with open(raw, 'rb') as f:
        idx = 0
        while True:
            b = f.read(65536)
            if not b:
                break
            if b.count(0) != len(b):
                nonzero.append(idx)
            idx += 1
        step = max(1, len(nonzero) // POOL_CHUNKS)
        chunks = []
        for k, e in enumerate(nonzero[::step][:POOL_CHUNKS]):
            f.seek(e * 65536)
            p = os.path.join(pool_dir, f'c{k:03d}')
            with open(p, 'wb') as o:
                o.write(f.read(65536))
            chunks.append(p)
    big = []
    for k in range(len(chunks) // 16):
        p = os.path.join(pool_dir, f'm{k:02d}')
        with open(p, 'wb') as o:
            for c in chunks[16 * k:16 * k + 16]:
                with open(c, 'rb') as i:
                    o.write(i.read())
        big.append(p)
    return chunks, big


class WriteBack:
    """The write-back measurements at one rate (see the module comment)."""

    def __init__(self, bench, rate, link_cls, log):
        self.b = bench
        self.a = bench.a
        self.rate = rate
        self.bps = parse_rate(rate)
        self.link_cls = link_cls
        self.log = log
        self.W = bench.results.setdefault('writeback', {}).setdefault(rate, {})
        self.dir = bench.path(f'wb-{rate}')
        os.makedirs(self.dir, exist_ok=True)
        self.img = os.path.join(bench.bin, 'qemu-img')
        self.qio = os.path.join(bench.bin, 'qemu-io')
        self.qsd = os.path.join(bench.bin, 'qemu-storage-daemon')
        self.n = 0

    def p(self, name):
        return os.path.join(self.dir, name)

    def fresh(self, name):
        self.n += 1
        path = self.p(f'{self.n:02d}-{name}')
        for x in (path, path + '.profile'):
            if os.path.exists(x):
                os.unlink(x)
        return path

    def create(self, fmt, path, size):
        subprocess.run([self.img, 'create', '-q', '-f', fmt, path, str(size)], check=True)

    # --- the origin and the link -----------------------------------------

    def start_origin(self):
        """A blank 4 GiB qcow2 served as a writable velo export, with
        RMW_PREFILL bytes of data at R_RMW (for the read-modify-write row)."""
        self.origin_img = self.p('origin.qcow2')
        self.create('qcow2', self.origin_img, DISK)
        subprocess.run([self.qio, '-f', 'qcow2', '-c',
                        f'write -q -s {self.big[0]} {R_RMW} {RMW_PREFILL}', self.origin_img],
                       check=True, stdout=subprocess.DEVNULL)
        self.origin_sock = self.p('origin.sock')
        pid = self.p('origin.pid')
        self.origin = self.b.procs.start(
            [self.qsd, '--blockdev', f'file,node-name=of,filename={self.origin_img}',
             '--blockdev', 'qcow2,node-name=oq,file=of',
             '--export', f'velo,id=wb0,node-name=oq,addr.type=unix,addr.path={self.origin_sock},'
             f'writable=on,write-state={self.p("origin.wst")}',
             '--pidfile', pid], self.p('origin.log'), pidfile=pid, wait_for=self.origin_sock)
        self.link = self.link_cls(self.b.procs, self.dir, 'wb-link', self.origin_sock,
                                  self.a.delay_ms, self.rate)

    def link_up(self):
        """Bytes the link has carried client -> origin so far."""
        return self.link_stats()[0]

    def link_stats(self):
        ctl = subprocess.run([self.link.proc.args[0], '--ctl', self.link.ctl, 'stats'],
                             stdout=subprocess.PIPE, text=True).stdout
        kv = dict(x.split('=', 1) for x in ctl.split() if '=' in x)
        return int(kv.get('bytes_up', 0)), int(kv.get('bytes_down', 0))

    def velo_json(self, sock, cache, journal):
        o = {'driver': 'velo', 'server': {'type': 'unix', 'path': sock}, 'export': 'wb0',
             'cache': {'file': cache}, 'write-mode': 'write-back',
             'journal': {'driver': 'raw', 'file': {'driver': 'file', 'filename': journal}}}
        return 'json:' + json.dumps(o, separators=(',', ':'))

    # --- 1. guest write throughput ------------------------------------------

    def img_bench(self, target, args, fmt=None):
        cmd = [self.img, 'bench', '-w', *args]
        if fmt:
            cmd += ['-f', fmt]
        # Start from a quiet disk: the run before may have left dirty pages
        # and freed blocks (a deleted image) that the kernel writes back
        # meanwhile, and always to the same neighbour in the interleaving.
        os.sync()
        p = subprocess.run(cmd + [target], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        for line in p.stdout.splitlines():
            if line.startswith('Run completed in '):
                return float(line.split()[3])
        raise RuntimeError(f'qemu-img bench failed: {p.stdout[-1000:]}')

    def journal(self, size):
        """
        The journal for a run of @size bytes: a ring is created once and
        written over and over, so it is preallocated (as the user guide
        says) and reused, with its superblock zeroed so that velo formats
        it anew.  A fresh sparse file would measure the filesystem's first
        allocation of each block instead (the "first use" pair).
        """
        path = self.p(f'journal-{size}.raw')
        if not os.path.exists(path):
            subprocess.run([self.img, 'create', '-q', '-f', 'raw', '-o', 'preallocation=full',
                            path, str(size)], check=True)
        with open(path, 'r+b') as f:
            f.write(bytes(8192))        # VELO_JRING_START: both superblock slots
            os.fsync(f.fileno())
        return path

    def velo_once(self, sock, args, journal_size, sparse=False):
        cache = self.fresh('bench.velo')
        if sparse:
            journal = self.fresh('bench-journal.raw')
            self.create('raw', journal, journal_size)
        else:
            journal = self.journal(journal_size)
        try:
            return self.img_bench(self.velo_json(sock, cache, journal), args)
        finally:
            for x in (cache, cache + '.profile') + ((journal,) if sparse else ()):
                if os.path.exists(x):
                    os.unlink(x)

    def local_once(self, args, steady=False):
        """A local qcow2: fresh (its first writes allocate clusters) or, for
        @steady, one preallocated image reused by every run (overwrites)."""
        if steady:
            img = self.p('local-steady.qcow2')
            if not os.path.exists(img):
                subprocess.run([self.img, 'create', '-q', '-f', 'qcow2', '-o',
                                'preallocation=full', img, str(LOCAL_STEADY)], check=True)
            return self.img_bench(img, args, 'qcow2')
        img = self.fresh('bench-local.qcow2')
        self.create('qcow2', img, DISK)
        try:
            return self.img_bench(img, args, 'qcow2')
        finally:
            os.unlink(img)

    def throughput(self):
        T = self.W.setdefault('throughput', {})
        T['runs'] = WB_RUNS
        T['loadavg-start'] = os.getloadavg()
        size, count = 65536, BENCH_COUNT
        jsize = 2 * size * count            # the whole run fits, twice over
        for cache in ('writeback', 'none'):
            for depth in (1, 16):
                args = ['-t', cache, '-d', str(depth), '-s', str(size), '-c', str(count),
                        '-o', str(R_BENCH64)]
                up0 = self.link_up()
                # Steady state: velo's journal preallocated (a ring is
                # written over and over), the qcow2 preallocated too.  First
                # use: a sparse journal file against a fresh qcow2, where
                # every write allocates.  All four interleaved.
                runs = {k: [] for k in ('velo', 'local', 'velo-first', 'local-first')}
                one = {
                    'velo': lambda: self.velo_once(self.link.sock, args, jsize),
                    'local': lambda: self.local_once(args, steady=True),
                    'velo-first': lambda: self.velo_once(self.link.sock, args, jsize,
                                                         sparse=True),
                    'local-first': lambda: self.local_once(args),
                }
                order = list(one)
                for i in range(WB_RUNS):      # interleaved: a busy spell hits all
                    # ... and each follows each other in turn.
                    for k in order[i % 4:] + order[:i % 4]:
                        runs[k].append(one[k]())
                m = {k: statistics.median(v) for k, v in runs.items()}
                for key, v, lo in ((f'64k-qd{depth}-{cache}', 'velo', 'local'),
                                   (f'64k-qd{depth}-{cache}-first', 'velo-first',
                                    'local-first')):
                    T[key] = {'bytes': size * count, 'velo-s': runs[v], 'local-s': runs[lo],
                              'velo-mibs': size * count / m[v] / MiB,
                              'local-mibs': size * count / m[lo] / MiB, 'ratio': m[lo] / m[v],
                              'link-up-during': self.link_up() - up0}
                    self.log(f'  {key}: velo {T[key]["velo-mibs"]:.0f} MiB/s, local qcow2 '
                             f'{T[key]["local-mibs"]:.0f} MiB/s: {T[key]["ratio"]:.2f}x')
        # The same with and without the link in front of the export,
        # interleaved: the link must not matter while the journal has room.
        args = ['-t', 'writeback', '-d', '1', '-s', str(size), '-c', str(count),
                '-o', str(R_BENCH64)]
        linked, direct = [], []
        for _ in range(WB_RUNS):
            linked.append(self.velo_once(self.link.sock, args, jsize))
            direct.append(self.velo_once(self.origin_sock, args, jsize))
        ml, md = statistics.median(linked), statistics.median(direct)
        T['64k-qd1-writeback-nolink'] = {'velo-s': direct, 'linked-s': linked, 'bytes': size * count,
                                         'velo-mibs': size * count / md / MiB,
                                         'linked-mibs': size * count / ml / MiB, 'ratio': md / ml}
        self.log(f"  64k QD1 writeback, link vs no link: velo {size * count / ml / MiB:.0f} vs "
                 f"{size * count / md / MiB:.0f} MiB/s")
        # 4 KiB writes, one per 64 KiB extent: into extents the origin holds
        # as zeros, then into extents it holds data in (read-modify-write).
        for key, off, n in (('4k-zero-extents', R_BENCH4K_ZERO, 1024),
                            ('4k-data-extents', R_RMW, min(128, RMW_PREFILL // 65536))):
            args = ['-t', 'writeback', '-d', '1', '-s', '4096', '-S', '65536', '-c', str(n),
                    '-o', str(off)]
            b0 = self.link_stats()
            v = self.velo_once(self.link.sock, args, 64 * MiB)
            b1 = self.link_stats()
            lo = self.local_once(args)
            T[key] = {'writes': n, 'velo-s': v, 'local-s': lo, 'velo-ms-per-write': v / n * 1000,
                      'local-ms-per-write': lo / n * 1000, 'ratio': lo / v,
                      'link-down': b1[1] - b0[1]}
            self.log(f'  {key}: {n} writes, velo {v:.2f} s ({v / n * 1000:.2f} ms each, '
                     f'{(b1[1] - b0[1]) / MiB:.1f} MiB fetched), local {lo:.3f} s')
        T['loadavg-end'] = os.getloadavg()

    # --- the cloud side: a velo node behind NBD, with QMP ---------------------

    def start_cloud(self, name, journal_size):
        """A qemu-storage-daemon with the velo node 'wb' (write-back, journal
        node 'j0'), an NBD export of it and a QMP socket."""
        journal, cache = self.fresh(f'{name}-journal.raw'), self.fresh(f'{name}.velo')
        self.create('raw', journal, journal_size)
        nbd, qmp, pid = (self.p(f'{name}-nbd.sock'), self.p(f'{name}-qmp.sock'),
                         self.p(f'{name}-cloud.pid'))
        for x in (nbd, qmp, pid):
            if os.path.exists(x):
                os.unlink(x)
        proc = self.b.procs.start(
            [self.qsd, '--blockdev', f'driver=file,node-name=jf,filename={journal}',
             '--blockdev', 'driver=raw,node-name=j0,file=jf',
             '--blockdev', f'driver=velo,node-name=wb,server.type=unix,server.path={self.link.sock},'
             f'export=wb0,cache.file={cache},write-mode=write-back,journal=j0',
             '--nbd-server', f'addr.type=unix,addr.path={nbd}',
             '--export', 'nbd,id=n0,node-name=wb,name=wb,writable=on',
             '--chardev', f'socket,id=qmp,path={qmp},server=on,wait=off',
             '--monitor', 'chardev=qmp', '--pidfile', pid],
            self.p(f'{name}-cloud.log'), pidfile=pid, wait_for=nbd)
        q = Qmp(qmp, proc)
        return proc, q, f'nbd+unix:///wb?socket={nbd}', (journal, cache)

    def stop_cloud(self, proc, q, files):
        q.close()
        self.b.procs.stop(proc)
        for x in (*files, files[1] + '.profile'):
            if os.path.exists(x):
                os.unlink(x)

    def writer(self, url, stdin):
        """qemu-io on the NBD export, commands from @stdin (a file or PIPE)."""
        p = subprocess.Popen([self.qio, '-f', 'raw', url], stdin=stdin,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        self.b.procs.procs.append(p)
        return p

    def drain_info(self, q):
        return q.cmd('velo-drain', **{'node-name': 'wb'})

    # --- 2. drain throughput ---------------------------------------------------

    def drain_cmds(self, name, size, count, base):
        """A qemu-io command file of @count writes of @size bytes of the pool's
        data from @base on; returns the size's key ('4k', '64k', '1m') and
        the file."""
        key = f'{size // 1024}k' if size < MiB else f'{size // MiB}m'
        src = self.chunks if size <= 65536 else self.big
        cmds = self.p(f'{name}-{key}.cmds')
        with open(cmds, 'w') as f:
            for i in range(count):
                f.write(f'write -q -s {src[i % len(src)]} {base + i * size} {size}\n')
        return key, cmds

    def split_cmds(self, cmds, n):
        """@cmds split into @n files, each taking every n-th write (disjoint
        ranges, so parallel writers never overlap)."""
        with open(cmds) as f:
            lines = f.readlines()
        parts = []
        for i in range(n):
            part = f'{cmds}.{i}'
            with open(part, 'w') as f:
                f.writelines(lines[i::n])
            parts.append(part)
        return parts

    def drain_run(self, size, count, writers=1):
        key, cmds = self.drain_cmds('drain', size, count, R_DRAIN[size])
        parts = [cmds] if writers == 1 else self.split_cmds(cmds, writers)
        proc, q, url, files = self.start_cloud(f'drain-{key}', 2 * size * count + 64 * MiB)
        ins = []
        try:
            d0 = self.drain_info(q)
            if d0['state'] != 'idle':
                raise RuntimeError(f'journal not idle at the start: {d0}')
            up0 = self.link_up()
            pids = {'cloud-qsd': proc.pid, 'origin-qsd': self.origin.pid,
                    'velo-link': self.link.proc.pid}
            cpu0 = {k: cpu_s(v) for k, v in pids.items()}
            ins = [open(c) for c in parts]
            t0 = time.monotonic()
            ws = [self.writer(url, stdin) for stdin in ins]
            samples, t_w, d_w = [], None, None
            deadline = t0 + max(300, 20 * size * count / (self.bps / 8))
            while True:
                d = self.drain_info(q)
                t = time.monotonic() - t0
                samples.append((round(t, 3), d['bytes-written'] - d0['bytes-written'],
                                d['bytes-drained'] - d0['bytes-drained'],
                                d['wire-bytes-drained'] - d0['wire-bytes-drained'],
                                d['used'], d['records'], d['rpo-ms']))
                if t_w is None and all(w.poll() is not None for w in ws):
                    t_w, d_w = t, d
                    for w in ws:
                        if w.returncode:
                            raise RuntimeError(f'qemu-io failed: {w.stderr.read()[-500:]}')
                if t_w is not None and d['state'] == 'idle':
                    break
                if d['state'] in ('fenced', 'failed') or time.monotonic() > deadline:
                    raise RuntimeError(f'drain did not finish: {d}')
                time.sleep(POLL_S)
            cpu = {k: round(cpu_s(v) - cpu0[k], 2) for k, v in pids.items()}
            up = self.link_up() - up0
        finally:
            for f in ins:
                f.close()
            self.stop_cloud(proc, q, files)
        g = d['bytes-drained'] - d0['bytes-drained']
        wire = d['wire-bytes-drained'] - d0['wire-bytes-drained']
        link_Bps = self.bps / 8
        drain_Bps = g / t
        ideal = link_Bps * g / wire
        tail = None
        g_w = d_w['bytes-drained'] - d0['bytes-drained']
        if t - t_w > 1:
            tail = (g - g_w) / (t - t_w) / ideal
        R = {'write-size': size, 'writes': count, 'writers': writers, 'guest-bytes': g,
             'written-bytes': d['bytes-written'] - d0['bytes-written'],
             'wire-bytes': wire, 'link-up-bytes': up, 'compression': g / wire,
             'writer-s': round(t_w, 3), 'drain-s': round(t, 3),
             'backlog-at-writer-end': {'bytes': d_w['bytes-pending'], 'records': d_w['records']},
             'drain-Bps': drain_Bps, 'ideal-Bps': ideal, 'ratio': drain_Bps / ideal,
             'link-ratio': up / t / link_Bps, 'ratio-after-writer': tail,
             'throttled': d['throttled'], 'cpu-s': cpu, 'samples': samples[::4]}
        self.log(f'  drain {key}: {g / MiB:.0f} MiB guest ({wire / MiB:.1f} MiB wire, '
                 f'{g / wire:.2f}x) in {t:.1f} s ({writers} writer(s) {t_w:.1f} s): '
                 f'{drain_Bps / 1e6:.2f} MB/s '
                 f'against {ideal / 1e6:.2f} MB/s = {R["ratio"]:.2f}')
        return key, R

    def link_ctl(self, *cmd):
        subprocess.run([self.link.proc.args[0], '--ctl', self.link.ctl, *cmd],
                       check=True, stdout=subprocess.DEVNULL)

    def drain_backlog(self, size, count):
        """The drain alone: the writer runs with the link slowed to a
        trickle (BACKLOG_RATE), so that the whole workload waits in the
        journal; then the link gets its rate back and the drain is timed
        from when data flows again (the first 64 KiB) until idle.  This
        measures the drain, not the writer."""
        base = R_DRAIN[size] + 128 * MiB if size < MiB else R_DRAIN[size] + 256 * MiB
        key, cmds = self.drain_cmds('backlog', size, count, base)
        proc, q, url, files = self.start_cloud(f'backlog-{key}', 2 * size * count + 64 * MiB)
        try:
            d0 = self.drain_info(q)
            self.link_ctl('rate', BACKLOG_RATE)
            try:
                with open(cmds) as stdin:
                    w = self.writer(url, stdin)
                    w.wait()
                if w.returncode:
                    raise RuntimeError(f'qemu-io failed: {w.stderr.read()[-500:]}')
                d_w = self.drain_info(q)
            finally:
                self.link_ctl('rate', str(self.bps))
            # The trickle may have timed the connection out (no reply for
            # 10 s): time the drain from when data flows again.
            up_r = self.link_up()
            deadline = time.monotonic() + 120
            while self.link_up() - up_r < 65536:
                if time.monotonic() > deadline:
                    raise RuntimeError('the drain did not resume')
                time.sleep(0.01)
            d_w = self.drain_info(q)
            up0 = self.link_up()
            t0 = time.monotonic()
            deadline = t0 + max(300, 20 * size * count / (self.bps / 8))
            while True:
                d = self.drain_info(q)
                t = time.monotonic() - t0
                if d['state'] == 'idle':
                    break
                if d['state'] in ('fenced', 'failed') or time.monotonic() > deadline:
                    raise RuntimeError(f'drain did not finish: {d}')
                time.sleep(POLL_S)
            up = self.link_up() - up0
        finally:
            self.stop_cloud(proc, q, files)
        g = d['bytes-drained'] - d_w['bytes-drained']
        # The compression of the whole run: the counters move at different
        # times (wire bytes when sent, guest bytes when durable).
        wire = (d['wire-bytes-drained'] - d0['wire-bytes-drained']) * g / \
            (d['bytes-drained'] - d0['bytes-drained'])
        ideal = self.bps / 8 * g / wire
        R = {'write-size': size, 'writes': count,
             'guest-bytes-total': d['bytes-drained'] - d0['bytes-drained'],
             'backlog-bytes': d_w['bytes-pending'], 'backlog-records': d_w['records'],
             'guest-bytes': g, 'wire-bytes': wire, 'link-up-bytes': up,
             'compression': g / wire, 'drain-s': round(t, 3), 'drain-Bps': g / t,
             'ideal-Bps': ideal, 'ratio': g / t / ideal,
             'link-ratio': up / t / (self.bps / 8)}
        self.log(f'  drain of a backlog, {key} writes: {g / MiB:.0f} MiB guest '
                 f'({wire / MiB:.1f} MiB wire, {g / wire:.2f}x) in {t:.1f} s: '
                 f'{g / t / 1e6:.2f} MB/s against {ideal / 1e6:.2f} MB/s = {R["ratio"]:.2f} '
                 f'(link busy {R["link-ratio"]:.2f})')
        return key, R

    def drain(self):
        D = self.W.setdefault('drain', {})
        B = self.W.setdefault('drain-backlog', {})
        for size, count in ((65536, self.a.wb_drain_mib * MiB // 65536),
                            (1 << 20, self.a.wb_drain_mib),
                            (4096, 4096)):
            key = f'{size // 1024}k' if size < MiB else f'{size // MiB}m'
            if size == 4096:
                count *= 8      # 128 MiB: long enough to time
            try:
                k, R = self.drain_backlog(size, count)
                B[k] = R
            except Exception as e:      # keep going
                B[key] = {'error': str(e)[:2000]}
                self.log(f'  drain of a backlog, {key}: FAILED: {str(e)[:500]}')
        D['loadavg-start'] = os.getloadavg()
        # One qemu-io writes 4 KiB at 6-13 MB/s, below the drain's ideal
        # (about 28 MB/s at 100 Mbit/s): four write disjoint shares of the
        # same 128 MiB at once, so that the row times the drain.
        for size, count, writers in ((65536, self.a.wb_drain_mib * MiB // 65536, 1),
                                     (1 << 20, self.a.wb_drain_mib, 1),
                                     (4096, 32768, 4)):
            key = f'{size // 1024}k' if size < MiB else f'{size // MiB}m'
            try:
                k, R = self.drain_run(size, count, writers)
                D[k] = R
            except Exception as e:      # keep going
                D[key] = {'error': str(e)[:2000]}
                self.log(f'  drain {key}: FAILED: {str(e)[:500]}')
        D['loadavg-end'] = os.getloadavg()

    # --- 3. RPO under a sustained load -------------------------------------------

    def rpo(self, load, P):
        cr = (self.W.get('drain', {}).get('64k') or {}).get('compression') or 2.5
        size = 65536
        secs = self.a.wb_rpo_seconds
        guest_Bps = load * self.bps / 8 * cr
        wps = guest_Bps / size
        P.update({'load': load, 'compression-assumed': cr, 'write-size': size,
                  'offered-Bps': guest_Bps, 'seconds': secs, 'loadavg-start': os.getloadavg()})
        self.log(f'--- write-back RPO at {self.rate}: {guest_Bps / 1e6:.1f} MB/s of 64 KiB writes '
                 f'({load:.0%} of link x {cr:.2f}) for {secs} s')
        proc, q, url, files = self.start_cloud(f'rpo-{load}', int(guest_Bps * secs * 1.2) + 256 * MiB)
        stop = threading.Event()
        w = self.writer(url, subprocess.PIPE)
        issued = [0]

        def feed():
            t0 = time.monotonic()
            try:
                while not stop.is_set():
                    due = min(int((time.monotonic() - t0) * wps), int(secs * wps))
                    while issued[0] < due:
                        i = issued[0]
                        off = R_RPO + (i * size) % RPO_SPAN
                        w.stdin.write(f'write -q -s {self.chunks[i % len(self.chunks)]} {off} {size}\n')
                        issued[0] += 1
                    w.stdin.flush()
                    if issued[0] >= int(secs * wps):
                        break
                    time.sleep(0.01)
            except (BrokenPipeError, OSError):
                pass
        th = threading.Thread(target=feed, daemon=True)
        samples = []
        try:
            d0 = self.drain_info(q)
            up0 = self.link_up()
            t0 = time.monotonic()
            th.start()
            nxt = t0
            while time.monotonic() - t0 < secs:
                nxt += 1
                time.sleep(max(0, nxt - time.monotonic()))
                d = self.drain_info(q)
                samples.append((round(time.monotonic() - t0, 2), d['rpo-ms'], d['used'],
                                d['bytes-written'] - d0['bytes-written'],
                                d['bytes-drained'] - d0['bytes-drained'], d['state']))
            stop.set()
            th.join()
            w.stdin.close()
            w.wait(timeout=600)
            t_w = time.monotonic() - t0
            # Then the tail: until every write is on the origin.
            while True:
                d = self.drain_info(q)
                if d['state'] == 'idle' or time.monotonic() - t0 > secs + 600:
                    break
                time.sleep(0.2)
            t_end = time.monotonic() - t0
            up = self.link_up() - up0
        finally:
            stop.set()
            if w.poll() is None:
                w.kill()
                w.wait()
            self.stop_cloud(proc, q, files)
        rpos = sorted(s[1] for s in samples)
        written = d['bytes-written'] - d0['bytes-written']
        P.update({
            'samples': samples, 'rpo-max-ms': rpos[-1] if rpos else None,
            'rpo-p95-ms': rpos[min(len(rpos) - 1, int(0.95 * len(rpos)))] if rpos else None,
            'rpo-median-ms': statistics.median(rpos) if rpos else None,
            'written-bytes': written, 'written-Bps': written / t_w, 'writer-s': t_w,
            'drained-bytes': d['bytes-drained'] - d0['bytes-drained'],
            'wire-bytes': d['wire-bytes-drained'] - d0['wire-bytes-drained'],
            'link-up-bytes': up, 'tail-s': t_end - t_w, 'final-state': d['state'],
            'used-max': max((s[2] for s in samples), default=0),
            'throttled': d['throttled'], 'throttle-ms': d['throttle-ms'],
            'loadavg-end': os.getloadavg()})
        half = [s for s in samples if s[0] >= secs / 2]
        if len(half) >= 2 and half[-1][0] > half[0][0]:
            # How fast the RPO still grows in the second half (0: it holds).
            P['rpo-slope-s-per-min'] = ((half[-1][1] - half[0][1]) / 1000 /
                                        (half[-1][0] - half[0][0]) * 60)
        self.log(f'  rpo: max {P["rpo-max-ms"] / 1000:.1f} s, p95 {P["rpo-p95-ms"] / 1000:.1f} s; '
                 f'wrote {written / MiB:.0f} MiB at {written / t_w / 1e6:.1f} MB/s, tail '
                 f'{t_end - t_w:.1f} s, journal used max {P["used-max"] / MiB:.0f} MiB')

    # --- all of it ----------------------------------------------------------------

    def run(self):
        self.log(f'=== write-back at {self.rate}, RTT {self.a.delay_ms * 2} ms ===')
        self.chunks, self.big = make_pool(self.b.raw, self.p('pool'))
        self.start_origin()
        try:
            if 'throughput' in self.a.wb_parts:
                self.log(f'--- write-back guest throughput at {self.rate}: qemu-img bench -w, '
                         f'velo vs local qcow2, median of {WB_RUNS}')
                try:
                    self.throughput()
                except Exception as e:
                    self.W['throughput-error'] = str(e)[:2000]
                    self.log(f'  throughput: FAILED: {str(e)[:500]}')
            if 'drain' in self.a.wb_parts:
                self.log(f'--- write-back drain at {self.rate}')
                self.drain()
            for load in self.a.wb_loads if 'rpo' in self.a.wb_parts else ():
                P = self.W.setdefault('rpo', {}).setdefault(f'{load:g}', {})
                try:
                    self.rpo(load, P)
                except Exception as e:
                    P['error'] = str(e)[:2000]
                    self.log(f'  rpo: FAILED: {str(e)[:500]}')
        finally:
            self.b.procs.stop(self.link.proc)
            self.b.procs.stop(self.origin)
            subprocess.run(['rm', '-rf', self.dir])


def run_writeback(bench, rate, link_cls, log):
    """Fill bench.results['writeback'][rate]."""
    WriteBack(bench, rate, link_cls, log).run()
