/*
 * Velo block export: zstd compression of READ replies.
 *
 * With feature ZSTD negotiated, every non-zero extent of a READ is
 * compressed on its own (so the client can keep it compressed, extent by
 * extent) in a worker thread of the export's AioContext pool; the reader
 * and the other requests of the connection keep running meanwhile.  An
 * extent that does not shrink by at least 1/16 goes RAW: incompressible
 * data (already compressed kernels, media) costs nothing on the client.
 *
 * Each worker thread keeps one ZSTD_CCtx (a GPrivate, freed when the pool
 * retires the thread), so no context is ever shared between threads.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "block/aio.h"
#include "block/thread-pool.h"
#include <zstd.h>
#include "export-int.h"

static GPrivate velo_zctx = G_PRIVATE_INIT((GDestroyNotify)ZSTD_freeCCtx);

typedef struct VeloZJob {
    const uint8_t *data;
    uint64_t len;
    uint32_t esz;
    int level;
    uint8_t *out;                   /* n * ZSTD_compressBound(esz) bytes */
    size_t bound;                   /* per-extent slot in @out */
    uint32_t *clen;                 /* see velo_co_zstd_extents() */
} VeloZJob;

static int velo_zstd_worker(void *opaque)
{
    VeloZJob *j = opaque;
    ZSTD_CCtx *cctx = g_private_get(&velo_zctx);
    uint64_t pos, i = 0;

    if (!cctx) {
        cctx = ZSTD_createCCtx();
        if (!cctx) {
            return -ENOMEM;
        }
        g_private_set(&velo_zctx, cctx);
    }
    for (pos = 0; pos < j->len; pos += j->esz, i++) {
        size_t n = MIN(j->esz, j->len - pos);
        size_t r;

        j->clen[i] = 0;
        if (buffer_is_zero(j->data + pos, n)) {
            j->clen[i] = VELO_ZSTD_ZERO;
            continue;
        }
        r = ZSTD_compressCCtx(cctx, j->out + i * j->bound, j->bound,
                              j->data + pos, n, j->level);
        if (!ZSTD_isError(r) && r < n - n / 16) {
            j->clen[i] = r;
        }
    }
    return 0;
}

size_t velo_zstd_bound(uint32_t extent_size)
{
    return ZSTD_compressBound(extent_size);
}

int coroutine_fn velo_co_zstd_extents(const uint8_t *data, uint64_t len,
                                      uint32_t esz, int level, uint8_t *out,
                                      uint32_t *clen)
{
    VeloZJob j = {
        .data = data, .len = len, .esz = esz, .level = level, .out = out,
        .bound = ZSTD_compressBound(esz), .clen = clen,
    };
    ThreadPool *pool = aio_get_thread_pool(qemu_get_current_aio_context());

    return thread_pool_submit_co(pool, velo_zstd_worker, &j);
}
