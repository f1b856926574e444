/*
 * Velo driver: the content store side of a fetch (feature HASH).
 *
 * After a READ reply has been decoded into the fetch buffer, one worker
 * thread job per reply
 *
 *   1. hashes every extent that came with a payload (RAW or ZSTD) and adds
 *      it to the host's content store (cas.c), so that later REFs to it, from
 *      this disk or any other on the host, resolve locally;
 *   2. resolves every REF chunk: from an extent of the same reply with that
 *      hash, else from the store (hash-verified there).
 *
 * A REF that resolves nowhere (the store lost the object, or the server
 * guessed wrong) is a miss: fetch.c then asks again with READ flag NO_REF.
 * The job runs before the fetch's waiters are woken, so nobody sees a
 * half-resolved buffer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/thread-pool.h"
#include "velo-int.h"
#include "trace.h"

typedef struct VeloDedupJob {
    VeloCas *cas;
    uint8_t *buf;
    uint64_t len;
    uint32_t esz;
    const uint8_t *kinds;           /* VELO_DD_* per extent */
    const uint8_t *hashes;          /* VELO_HASH_SIZE per extent; NULL if
                                       there is no REF */
    unsigned refs, misses;          /* out */
    uint64_t ref_bytes;             /* out: bytes the resolved REFs hold */
} VeloDedupJob;

static int velo_dedup_worker(void *opaque)
{
    VeloDedupJob *j = opaque;
    uint64_t n = DIV_ROUND_UP(j->len, j->esz), i;
    g_autofree uint8_t *own = g_malloc(n * VELO_HASH_SIZE);
    /* Hash -> extent of this reply with a payload. */
    g_autoptr(GHashTable) local = g_hash_table_new(velo_cas_hash_hash,
                                                   velo_cas_hash_equal);

    for (i = 0; i < n; i++) {
        uint8_t *p = j->buf + i * j->esz;
        size_t len = MIN(j->esz, j->len - i * j->esz);

        if (j->kinds[i] == VELO_DD_DATA) {
            velo_cas_hash(p, len, own + i * VELO_HASH_SIZE);
            g_hash_table_insert(local, own + i * VELO_HASH_SIZE, p);
            velo_cas_put(j->cas, own + i * VELO_HASH_SIZE, p, len);
        }
    }
    for (i = 0; i < n; i++) {
        const uint8_t *want;
        uint8_t *p = j->buf + i * j->esz;
        size_t len = MIN(j->esz, j->len - i * j->esz);
        uint8_t *same;

        if (j->kinds[i] != VELO_DD_REF) {
            continue;
        }
        want = j->hashes + i * VELO_HASH_SIZE;
        j->refs++;
        same = g_hash_table_lookup(local, want);
        if (same && MIN(j->esz, j->len - (same - j->buf)) == len) {
            memcpy(p, same, len);
            j->ref_bytes += len;
            continue;
        }
        if (velo_cas_get(j->cas, want, p, len)) {
            j->ref_bytes += len;
        } else {
            j->misses++;
        }
    }
    return 0;
}

int coroutine_fn velo_co_dedup_reply(BDRVVeloState *s, uint8_t *buf,
                                     uint64_t off, uint64_t len,
                                     const uint8_t *kinds,
                                     const uint8_t *hashes)
{
    VeloDedupJob j = {
        .cas = s->cas, .buf = buf, .len = len, .esz = s->extent_size,
        .kinds = kinds, .hashes = hashes,
    };
    ThreadPool *pool = aio_get_thread_pool(bdrv_get_aio_context(s->bs));

    thread_pool_submit_co(pool, velo_dedup_worker, &j);
    s->stats.dedup_refs += j.refs - j.misses;
    s->stats.dedup_bytes += j.ref_bytes;
    s->stats.ref_misses += j.misses;
    trace_velo_dedup_reply(s, off, j.refs, j.misses);
    return j.misses;
}
