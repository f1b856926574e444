/*
 * Velo extent map: per-extent state with O(1) counts.  See extmap.h.
 *
 * Partial coverage by map entries: an allocation map is reported at byte
 * granularity, extents are larger.  An extent is ZERO only when all of its
 * bytes were reported zero.  We remember "zero so far" for a partially
 * reported extent in the private PARTIAL_ZERO bit of its state byte, which
 * never leaves this file: velo_extmap_get() masks it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "extmap.h"

/*
 * An UNKNOWN extent whose reported bytes so far were all zero stores the
 * end offset of that zero prefix implicitly: map entries arrive in order,
 * so "prefix reported zero" is all we need and a flag suffices.
 */
#define PARTIAL_ZERO 0x80

VeloExtMap *velo_extmap_new(uint64_t disk_size, uint32_t extent_size)
{
    VeloExtMap *m = g_new0(VeloExtMap, 1);

    g_assert(extent_size && !(extent_size & (extent_size - 1)));
    m->disk_size = disk_size;
    m->extent_size = extent_size;
    m->extent_shift = __builtin_ctz(extent_size);
    m->n_extents = (disk_size + extent_size - 1) >> m->extent_shift;
    m->state = g_malloc0(m->n_extents ? m->n_extents : 1);
    m->count[VELO_EXT_UNKNOWN] = m->n_extents;
    return m;
}

void velo_extmap_free(VeloExtMap *m)
{
    if (m) {
        g_free(m->state);
        g_free(m);
    }
}

uint32_t velo_extmap_extent_len(const VeloExtMap *m, uint64_t idx)
{
    uint64_t start = idx << m->extent_shift;

    g_assert(idx < m->n_extents);
    return (uint32_t)MIN((uint64_t)m->extent_size, m->disk_size - start);
}

void velo_extmap_set(VeloExtMap *m, uint64_t idx, VeloExtState st)
{
    VeloExtState old;

    g_assert(idx < m->n_extents && st < VELO_EXT__MAX);
    old = velo_extmap_get(m, idx);
    m->count[old]--;
    m->count[st]++;
    m->state[idx] = st;
}

uint64_t velo_extmap_apply(VeloExtMap *m, uint64_t offset, uint64_t length,
                           bool is_zero)
{
    uint64_t end = MIN(offset + length, m->disk_size);
    uint64_t changed = 0;

    while (offset < end) {
        uint64_t idx = offset >> m->extent_shift;
        uint64_t ext_start = idx << m->extent_shift;
        uint64_t ext_end = ext_start + velo_extmap_extent_len(m, idx);
        uint64_t piece_end = MIN(end, ext_end);
        uint8_t raw = m->state[idx];

        if ((raw & ~PARTIAL_ZERO) == VELO_EXT_UNKNOWN) {
            if (!is_zero) {
                velo_extmap_set(m, idx, VELO_EXT_DATA);
                changed++;
            } else if (piece_end == ext_end &&
                       (offset == ext_start || (raw & PARTIAL_ZERO))) {
                velo_extmap_set(m, idx, VELO_EXT_ZERO);
                changed++;
            } else if (offset == ext_start || (raw & PARTIAL_ZERO)) {
                m->state[idx] = VELO_EXT_UNKNOWN | PARTIAL_ZERO;
            }
        }
        offset = piece_end;
    }
    return changed;
}

uint64_t velo_extmap_run(const VeloExtMap *m, uint64_t idx, uint64_t max)
{
    VeloExtState st = velo_extmap_get(m, idx);
    uint64_t n = 1;

    while (n < max && idx + n < m->n_extents &&
           velo_extmap_get(m, idx + n) == st) {
        n++;
    }
    return n;
}

bool velo_extmap_check(const VeloExtMap *m)
{
    uint64_t count[VELO_EXT__MAX] = { 0 };
    uint64_t i, sum = 0;
    int s;

    for (i = 0; i < m->n_extents; i++) {
        uint8_t st = m->state[i] & ~PARTIAL_ZERO;
        if (st >= VELO_EXT__MAX) {
            return false;
        }
        if ((m->state[i] & PARTIAL_ZERO) && st != VELO_EXT_UNKNOWN) {
            return false;
        }
        count[st]++;
    }
    for (s = 0; s < VELO_EXT__MAX; s++) {
        if (count[s] != m->count[s]) {
            return false;
        }
        sum += count[s];
    }
    return sum == m->n_extents;
}
