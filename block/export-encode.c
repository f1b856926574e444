/*
 * Velo block export: encoding of READ replies, extent by extent.
 *
 * Every extent of a READ becomes one of
 *
 *   ZERO  all zeros: no payload;
 *   REF   (feature HASH) the client's content store already has it, as far
 *         as this process knows: a 32-byte SHA-256 instead of the payload;
 *   ZSTD  (feature ZSTD) compressed on its own, so the client can keep it
 *         compressed; only if that saves at least 1/16;
 *   RAW   the bytes as they are.
 *
 * The work (zero detection, hashing, compression) runs in a worker thread
 * of the export's AioContext pool, so the connection's other requests go on
 * meanwhile.  Each worker thread keeps one ZSTD_CCtx (a GPrivate, freed when
 * the pool retires the thread).
 *
 * What a client's store holds is learnt per store id, not per connection:
 * every extent sent to a client with feature HASH is remembered under the
 * store id it gave in HELLO, for all exports of this process.  A second VM
 * on the same host (same store) cloned from the same template then gets
 * REFs for everything the first one fetched.  The memory is a hint: a
 * client whose store lacks a REF'd extent asks again with READ flag NO_REF.
 * It is bounded (VELO_KNOWN_MAX_STORES stores of VELO_KNOWN_MAX_HASHES
 * hashes; a full set starts over) and lost on restart.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "block/aio.h"
#include "block/thread-pool.h"
#include <zstd.h>
#include "cas.h"
#include "export-int.h"

#define VELO_KNOWN_MAX_STORES   64
#define VELO_KNOWN_MAX_HASHES   (1u << 20)

typedef struct VeloKnown {
    GHashTable *hashes;             /* 32-byte hash -> itself */
    uint64_t last_use;
} VeloKnown;

/* Protects known_stores, every VeloKnown in it and known_clock. */
static GMutex known_lock;
static GHashTable *known_stores;    /* 16-byte store id -> VeloKnown * */
static uint64_t known_clock;

static GPrivate velo_zctx = G_PRIVATE_INIT((GDestroyNotify)ZSTD_freeCCtx);

/* A random store id is uniform already: its first bytes are its hash. */
static guint id16_hash(gconstpointer k)
{
    return ldl_he_p(k);
}

static gboolean id16_equal(gconstpointer a, gconstpointer b)
{
    return !memcmp(a, b, VELO_STORE_ID_SIZE);
}

static void known_free(gpointer p)
{
    VeloKnown *k = p;

    g_hash_table_destroy(k->hashes);
    g_free(k);
}

/* The set of store @id, created (evicting the stalest) if needed. */
static VeloKnown *known_get(const uint8_t *id)
{
    VeloKnown *k;

    if (!known_stores) {
        known_stores = g_hash_table_new_full(id16_hash, id16_equal, g_free,
                                             known_free);
    }
    k = g_hash_table_lookup(known_stores, id);
    if (!k) {
        if (g_hash_table_size(known_stores) >= VELO_KNOWN_MAX_STORES) {
            GHashTableIter it;
            gpointer key, val, stalest = NULL;
            uint64_t oldest = UINT64_MAX;

            g_hash_table_iter_init(&it, known_stores);
            while (g_hash_table_iter_next(&it, &key, &val)) {
                if (((VeloKnown *)val)->last_use < oldest) {
                    oldest = ((VeloKnown *)val)->last_use;
                    stalest = key;
                }
            }
            g_hash_table_remove(known_stores, stalest);
        }
        k = g_new0(VeloKnown, 1);
        k->hashes = g_hash_table_new_full(velo_cas_hash_hash,
                                          velo_cas_hash_equal, g_free,
                                          NULL);
        g_hash_table_insert(known_stores, g_memdup2(id, VELO_STORE_ID_SIZE),
                            k);
    }
    k->last_use = ++known_clock;
    return k;
}

/* Does store @id have @hash?  Either way, it will have it after this reply. */
static bool known_test_and_set(const uint8_t *id, const uint8_t *hash)
{
    VeloKnown *k;
    bool had;

    g_mutex_lock(&known_lock);
    k = known_get(id);
    had = g_hash_table_contains(k->hashes, hash);
    if (!had) {
        if (g_hash_table_size(k->hashes) >= VELO_KNOWN_MAX_HASHES) {
            g_hash_table_remove_all(k->hashes);
        }
        g_hash_table_add(k->hashes, g_memdup2(hash, VELO_HASH_SIZE));
    }
    g_mutex_unlock(&known_lock);
    return had;
}

static int velo_encode_worker(void *opaque)
{
    VeloEncodeJob *j = opaque;
    ZSTD_CCtx *cctx = g_private_get(&velo_zctx);
    uint64_t pos, i = 0;

    if (j->level && !cctx) {
        cctx = ZSTD_createCCtx();
        if (!cctx) {
            return -ENOMEM;
        }
        g_private_set(&velo_zctx, cctx);
    }
    for (pos = 0; pos < j->len; pos += j->esz, i++) {
        VeloEncExtent *x = &j->ext[i];
        size_t n = MIN(j->esz, j->len - pos);
        size_t r;

        if (buffer_is_zero(j->data + pos, n)) {
            x->enc = VELO_ENC_ZERO;
            continue;
        }
        if (j->store_id) {
            velo_cas_hash(j->data + pos, n, x->hash);
            if (known_test_and_set(j->store_id, x->hash) && !j->no_ref) {
                x->enc = VELO_ENC_REF;
                continue;
            }
        }
        x->enc = VELO_ENC_RAW;
        if (j->level) {
            r = ZSTD_compressCCtx(cctx, j->zbuf + i * j->bound, j->bound,
                                  j->data + pos, n, j->level);
            if (!ZSTD_isError(r) && r < n - n / 16) {
                x->enc = VELO_ENC_ZSTD;
                x->clen = r;
            }
        }
    }
    return 0;
}

size_t velo_zstd_bound(uint32_t extent_size)
{
    return ZSTD_compressBound(extent_size);
}

int coroutine_fn velo_co_encode_extents(VeloEncodeJob *j)
{
    ThreadPool *pool = aio_get_thread_pool(qemu_get_current_aio_context());

    j->bound = j->level ? ZSTD_compressBound(j->esz) : 0;
    return thread_pool_submit_co(pool, velo_encode_worker, j);
}
