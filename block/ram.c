/*
 * Velo RAM tier and RAM budget: an LRU of whole extents, and the
 * accounting that keeps the node's RAM within ram-size (fetch and work
 * buffers, reply payloads, the node's own state).
 *
 * Invariants:
 *   - the RAM tier holds exact copies of CACHED/DIRTY extents (or of fetched
 *     ones whose cache write failed), at most ram_max of them, and fewer
 *     while fetch and work buffers are alive: they share ram-size, less
 *     the node's own state (ram_state), in ram_shrink();
 *   - all of it runs in the node's AioContext.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "velo-int.h"

/* The RAM tier's copy of extent @idx, if any, without touching the LRU. */
static VeloRamEnt *ram_find(BDRVVeloState *s, uint64_t idx)
{
    return s->ram ? g_hash_table_lookup(s->ram, &idx) : NULL;
}

VeloRamEnt *velo_ram_lookup(BDRVVeloState *s, uint64_t idx)
{
    VeloRamEnt *e = ram_find(s, idx);

    if (e) {
        QTAILQ_REMOVE(&s->ram_lru, e, lru);
        QTAILQ_INSERT_HEAD(&s->ram_lru, e, lru);
    }
    return e;
}

/* Drop @e; its data buffer goes to *@spare if that is empty, else away. */
static void ram_drop(BDRVVeloState *s, VeloRamEnt *e, uint8_t **spare)
{
    QTAILQ_REMOVE(&s->ram_lru, e, lru);
    g_hash_table_remove(s->ram, &e->idx);
    if (spare && !*spare) {
        *spare = e->data;
    } else {
        velo_databuf_free(e->data, s->extent_size);
    }
    g_free(e);
    s->ram_count--;
}

/*
 * ram-size bounds the node's RAM apart from its metadata: the RAM tier, the
 * buffers of fetches in flight, their reply payloads and work buffers
 * (s->buf_bytes), and the node's own state (s->ram_state, VELO_RAM_STATE).
 * Buffers push the least recently used extents out, so that RAM use stays
 * within ram-size plus metadata however much is being fetched.  Returns
 * whether @room more bytes (one more RAM-tier extent) now fit.  The buffer
 * of an extent it drops may be kept in *@spare (if not NULL) for the new
 * one: a full RAM tier then turns over without mapping and unmapping
 * (databuf.h).
 */
static bool ram_shrink(BDRVVeloState *s, uint64_t room, uint8_t **spare)
{
    bool fits;

    for (;;) {
        fits = s->ram_count * s->extent_size + s->buf_bytes + s->ram_state +
               room <= s->ram_size &&
               s->ram_count + (room ? 1 : 0) <= s->ram_max;
        if (fits || !s->ram_count) {
            return fits;
        }
        ram_drop(s, QTAILQ_LAST(&s->ram_lru), spare);
    }
}

void velo_ram_put(BDRVVeloState *s, uint64_t idx, const uint8_t *data)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    VeloRamEnt *e;

    if (!s->ram_max) {
        return;
    }
    e = velo_ram_lookup(s, idx);
    if (!e) {
        uint8_t *spare = NULL;

        if (!ram_shrink(s, s->extent_size, &spare)) {
            velo_databuf_free(spare, s->extent_size);
            return;             /* fetches in flight use the whole budget */
        }
        e = g_new0(VeloRamEnt, 1);
        e->idx = idx;
        e->data = spare ? spare : velo_databuf_alloc(s->extent_size);
        g_hash_table_insert(s->ram, &e->idx, e);
        QTAILQ_INSERT_HEAD(&s->ram_lru, e, lru);
        s->ram_count++;
    }
    memcpy(e->data, data, len);
}

/*
 * Work buffers up to an extent's record (s->workbuf_max) all get that
 * size, so that a few freed ones can be kept for the next (s->wb_spare):
 * a warm read of an encrypted cache file needs two per request, and
 * mapping them afresh each time costs it the faults of 17 pages each.
 * Spares stay counted in s->buf_bytes.
 */
static size_t workbuf_len(BDRVVeloState *s, size_t size)
{
    return size <= s->workbuf_max ? s->workbuf_max : size;
}

uint8_t *velo_workbuf_try_alloc(BDRVVeloState *s, size_t size)
{
    size_t n = workbuf_len(s, size);
    uint8_t *p;

    if (n == s->workbuf_max && s->wb_nspare) {
        return s->wb_spare[--s->wb_nspare];
    }
    p = velo_databuf_try_alloc(n);
    if (p) {
        s->buf_bytes += n;
        ram_shrink(s, 0, NULL);
    }
    return p;
}

uint8_t *velo_workbuf_alloc(BDRVVeloState *s, size_t size)
{
    uint8_t *p = velo_workbuf_try_alloc(s, size);

    if (!p) {
        g_error("velo: out of memory for a %zu-byte work buffer", size);
    }
    return p;
}

void velo_workbuf_free(BDRVVeloState *s, uint8_t *p, size_t size)
{
    size_t n = workbuf_len(s, size);

    if (!p) {
        return;
    }
    if (n == s->workbuf_max && s->wb_nspare < VELO_WORKBUF_SPARES) {
        s->wb_spare[s->wb_nspare++] = p;
        return;
    }
    s->buf_bytes -= n;
    velo_databuf_free(p, n);
}

void velo_ram_forget(BDRVVeloState *s, uint64_t idx)
{
    VeloRamEnt *e = ram_find(s, idx);

    if (e) {
        ram_drop(s, e, NULL);
    }
}

void velo_ram_update(BDRVVeloState *s, uint64_t idx, const uint8_t *data)
{
    VeloRamEnt *e = ram_find(s, idx);

    if (e) {
        memcpy(e->data, data, velo_extmap_extent_len(s->map, idx));
    }
}

void velo_ram_shrink(BDRVVeloState *s)
{
    ram_shrink(s, 0, NULL);
}

void velo_ram_init(BDRVVeloState *s)
{
    s->ram = g_hash_table_new(g_int64_hash, g_int64_equal);
    QTAILQ_INIT(&s->ram_lru);
    s->workbuf_max = ROUND_UP(s->extent_size + VELO_REC_HDR_SIZE,
                              qemu_real_host_page_size());
    s->ram_state = MIN(VELO_RAM_STATE, s->ram_size / 8);
    s->ram_max = (s->ram_size - s->ram_state) / s->extent_size;
}

void velo_ram_cleanup(BDRVVeloState *s)
{
    while (s->wb_nspare) {
        s->buf_bytes -= s->workbuf_max;
        velo_databuf_free(s->wb_spare[--s->wb_nspare], s->workbuf_max);
    }
    while (!QTAILQ_EMPTY(&s->ram_lru)) {
        ram_drop(s, QTAILQ_FIRST(&s->ram_lru), NULL);
    }
    if (s->ram) {
        g_hash_table_destroy(s->ram);
        s->ram = NULL;
    }
}
