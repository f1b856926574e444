"""Shared helpers of the Velo benchmark harness (bench/): trace parsing,
trace statistics against an image, and the deterministic synthetic trace.

Pure Python 3 standard library.
"""

import re

BLOCK = 4096

QEMU_LOG_RE = re.compile(r'\bblk_co_p(read|write)v\b.*?\boffset (\d+) bytes (\d+)')
QEMU_TS_RE = re.compile(r'@(\d+\.\d+):')


def parse_trace(lines, blk=None, with_time=False):
    """Parse a trace: 'R OFF LEN [...]' lines or a QEMU log of blk_co_preadv.

    Returns (reads, skipped_writes); reads is a list of (offset, length), or
    of (offset, length, time-or-None) with with_time.
    """
    reads, writes = [], 0
    for n, line in enumerate(lines, 1):
        s = line.split('#', 1)[0].strip()
        if not s:
            continue
        m = QEMU_LOG_RE.search(s)
        if m:
            if blk and ('blk ' + blk) not in s:
                continue
            if m.group(1) == 'write':
                writes += 1
                continue
            t = QEMU_TS_RE.search(s)
            r = (int(m.group(2)), int(m.group(3)))
            reads.append(r + (float(t.group(1)) if t else None,) if with_time else r)
            continue
        f = s.split()
        op = f[0].upper()
        if op in ('R', 'W') and len(f) >= 3:
            try:
                off, ln = int(f[1], 0), int(f[2], 0)
            except ValueError:
                raise SystemExit(f'line {n}: bad number: {line.rstrip()}')
            if off < 0 or ln <= 0:
                raise SystemExit(f'line {n}: bad request: {line.rstrip()}')
            if op == 'W':
                writes += 1
                continue
            t = None
            if with_time and len(f) >= 4:
                try:
                    t = float(f[3])
                except ValueError:
                    t = None
            reads.append((off, ln, t) if with_time else (off, ln))
            continue
        if 'blk_co_' in s or QEMU_TS_RE.search(s):
            continue        # other trace events in a QEMU log
        raise SystemExit(f'line {n}: not a request: {line.rstrip()}')
    return reads, writes


def read_trace(path, blk=None, with_time=False):
    with open(path, errors='replace') as f:
        return parse_trace(f, blk, with_time)


def unique_blocks(reads, block=BLOCK):
    """Set of block indexes touched by the reads."""
    u = set()
    for r in reads:
        off, ln = r[0], r[1]
        u.update(range(off // block, (off + ln - 1) // block + 1))
    return u


def demand_round_trips(reads, extent=65536):
    """Round trips no reactive client can avoid: reads that need an extent
    never touched before and that do not continue the previous read (so no
    sequential readahead could have predicted them).  Each costs >= 1 RTT."""
    seen, n, prev_end = set(), 0, None
    for r in reads:
        off, ln = r[0], r[1]
        first, last = off // extent, (off + ln - 1) // extent
        if off != prev_end and first not in seen:
            n += 1
        seen.update(range(first, last + 1))
        prev_end = off + ln
    return n


def trace_stats(reads, image=None, extent=65536):
    """Shape of a trace; with a raw image, also the non-zero bytes it needs."""
    n = len(reads)
    st = {
        'reads': n,
        'bytes': sum(r[1] for r in reads),
        'sequential': (sum(1 for a, b in zip(reads, reads[1:]) if b[0] == a[0] + a[1]) /
                       max(1, n - 1)),
        'small': sum(1 for r in reads if r[1] < 4096),
        'mid': sum(1 for r in reads if 4096 <= r[1] <= 131072),
        'large': sum(1 for r in reads if r[1] > 131072),
    }
    st['demand-round-trips'] = demand_round_trips(reads, extent)
    blocks = unique_blocks(reads)
    st['unique-bytes'] = len(blocks) * BLOCK
    if image:
        nz = 0
        nz_ext = set()
        zero = bytes(BLOCK)
        per = extent // BLOCK
        with open(image, 'rb') as f:
            for b in sorted(blocks):
                f.seek(b * BLOCK)
                if f.read(BLOCK).rstrip(b'\0'):
                    nz += 1
                    nz_ext.add(b // per)
        st['nonzero-bytes'] = nz * BLOCK
        st['nonzero-extents'] = len(nz_ext)
        st['extent-size'] = extent
    return st


def image_nonzero_bytes(image, chunk=1 << 20):
    """Non-zero bytes of a raw image, counted in 4 KiB blocks."""
    nz = 0
    zero = bytes(BLOCK)
    with open(image, 'rb') as f:
        while True:
            buf = f.read(chunk)
            if not buf:
                break
            if not buf.rstrip(b'\0'):
                continue
            for i in range(0, len(buf), BLOCK):
                if buf[i:i + BLOCK] != zero[:len(buf[i:i + BLOCK])]:
                    nz += BLOCK
    return nz


class XorShift:
    """xorshift64*: a tiny PRNG whose output never depends on Python's version."""

    def __init__(self, seed):
        self.x = (seed * 0x9E3779B97F4A7C15 + 1) & 0xFFFFFFFFFFFFFFFF or 1

    def next(self):
        x = self.x
        x ^= (x >> 12)
        x ^= (x << 25) & 0xFFFFFFFFFFFFFFFF
        x ^= (x >> 27)
        self.x = x
        return (x * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF

    def random(self):
        return (self.next() >> 11) / float(1 << 53)

    def below(self, n):
        return self.next() % n

    def choice_weighted(self, items):
        r = self.random() * sum(w for _, w in items)
        for v, w in items:
            r -= w
            if r < 0:
                return v
        return items[-1][0]


# Request sizes of the synthetic trace: mostly 4-128 KiB, a few larger, as
# the recorded pvscsi boot (shared/notes/test-guests.md).
SYNTH_SIZES = [(4096, 34), (8192, 9), (16384, 11), (32768, 12), (65536, 13),
               (131072, 18), (262144, 2), (524288, 0.6), (1048576, 0.3)]


def synthetic_trace(data_extents, disk_size, n=3000, seq=0.65, reread=0.25, seed=1):
    """A deterministic boot-like trace: n serial reads, a fraction seq of them
    starting where the previous one ended (0.65 gives ~63% in the result: a
    jump that would pass the end of the disk lands elsewhere), sizes from SYNTH_SIZES, jumps to
    4 KiB-aligned places inside the image's data extents (or, with
    probability reread, back to where an earlier read started).

    data_extents: list of (offset, length) holding data (qemu-img map).
    """
    rng = XorShift(seed)
    total = sum(l for _, l in data_extents)
    starts = []
    reads = []

    def random_data_offset():
        r = rng.below(total // BLOCK) * BLOCK
        for off, ln in data_extents:
            if r < ln:
                return off + r
            r -= ln
        return data_extents[-1][0]

    pos = random_data_offset()
    for i in range(n):
        size = rng.choice_weighted(SYNTH_SIZES)
        if i > 0 and rng.random() < seq and reads[-1][0] + reads[-1][1] + size <= disk_size:
            off = reads[-1][0] + reads[-1][1]
        elif starts and rng.random() < reread:
            off = starts[rng.below(len(starts))]
        else:
            off = random_data_offset()
        size = min(size, disk_size - off)
        reads.append((off, size))
        starts.append(off)
    return reads
