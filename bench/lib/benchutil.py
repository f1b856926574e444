# benchutil.py: constants and formatting helpers shared by the Velo WAN
# benchmark (runbench.py) and its report (report.py).
#
# SPDX-License-Identifier: GPL-2.0-or-later

import re

MiB = 1 << 20
GiB = 1 << 30

# qemu-img bench region: inside the guest's first big data extent (the root
# filesystem), all data, no holes.
BENCH_OFFSET = 18 * MiB
BENCH_BYTES = 100 * MiB


def rate_name(s):
    v = parse_rate(s)
    for div, unit in ((1e9, 'Gbit/s'), (1e6, 'Mbit/s'), (1e3, 'kbit/s')):
        if v >= div:
            return f'{v / div:g} {unit}'
    return f'{v:g} bit/s'


def parse_rate(s):
    m = re.fullmatch(r'(\d+(?:\.\d+)?)([kmg]?)', s.lower())
    if not m:
        raise SystemExit(f'run.sh: bad rate {s}')
    return float(m.group(1)) * {'': 1, 'k': 1e3, 'm': 1e6, 'g': 1e9}[m.group(2)]


def parse_size(s):
    m = re.fullmatch(r'(\d+)([kKmMgG]?)', str(s))
    return int(m.group(1)) * {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}[m.group(2).lower()]


def fmt_s(x):
    if x is None:
        return 'n/a'
    return f'{x:.2f}' if x < 10 else f'{x:.1f}'


def fmt_mib(b):
    if b is None:
        return 'n/a'
    if b < MiB // 10:
        return f'{b / 1024:.0f} KiB'
    return f'{b / MiB:.2f}' if b < 10 * MiB else f'{b / MiB:.1f}'


def fmt_x(x, digits=2):
    return 'n/a' if x is None else f'{x:.{digits}f}x'


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def ratio(a, b):
    return a / b if (a is not None and b) else None
