/*
 * Velo object store tier: cold clean extents leave the cache file for the
 * object store when the cache is over cache-size, and come back from there
 * instead of over the WAN.  The hierarchy is RAM, cache file, object store,
 * origin.
 *
 * Eviction.  When clean extents exceed cache-size, a coroutine runs a clock
 * over the extents: a cache hit sets an extent's reference bit, the hand
 * clears it, and a clean extent found without it is evicted: read from the
 * cache file, put in the store (unless there already) as
 *
 *     <prefix>ext/<extent index, 20 digits>
 *
 * and then its index entry becomes "not cached" and its slot is discarded.
 * A guest write that lands meanwhile makes the extent pinned; the hand then
 * leaves it.  Without an object store, evicted extents are simply dropped
 * (refetched from the origin).
 *
 * Object format: a 48-byte header (magic VELOXT01, index, plaintext
 * length, flags ZSTD/GCM, stored length, CRC-32C of the plaintext, nonce),
 * the GCM tag with key-secret, then the payload.  With key-secret the
 * payload is AES-GCM under a key derived for the tier (HKDF of the secret
 * and the disk id, so any host with the secret reads it), with the header
 * as additional data.  Every get is checked (magic, index, lengths, GCM,
 * CRC); one that fails is a miss, fetched from the origin.
 *
 * At open the disk's ext/ objects are listed, so the tier survives
 * restarts and moves to another host with the store.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bitmap.h"
#include "qemu/memalign.h"
#include "qemu/guest-random.h"
#include "block/block_int.h"
#include "block/thread-pool.h"
#include <zstd.h>
#include "velo-int.h"
#include "objstore.h"
#include "bytes.h"
#include "trace.h"

#define VELO_XT_MAGIC       UINT64_C(0x56454c4f58543031)     /* VELOXT01 */
#define VELO_XT_HDR         48
#define VELO_XT_F_ZSTD      1u
#define VELO_XT_F_GCM       2u
#define VELO_XT_LEVEL       1
#define VELO_TIER_SLACK     16      /* evict this many extents below the limit */

static char *velo_tier_key(BDRVVeloState *s, uint64_t idx)
{
    return g_strdup_printf("%sext/%020" PRIu64, s->jseg.prefix, idx);
}

/* --- encoding (worker threads) ----------------------------------------- */

typedef struct VeloTierJob {
    BDRVVeloState *s;
    uint64_t idx;
    uint32_t len;               /* plaintext bytes */
    uint8_t *plain;             /* len bytes: in (put) or out (get) */
    uint32_t want_crc;          /* get: the CRC-32C its content must have
                                   (the cache entry's, from the eviction) */
    char *key;
    GError *err;
    int ret;
} VeloTierJob;

static int velo_tier_put_worker(void *opaque)
{
    VeloTierJob *j = opaque;
    BDRVVeloState *s = j->s;
    size_t bound = ZSTD_compressBound(j->len);
    g_autofree uint8_t *obj = g_malloc(VELO_XT_HDR + VELO_ATREST_TAG_SIZE +
                                       MAX(bound, j->len));
    uint8_t *payload = obj + VELO_XT_HDR +
                       (s->tier.has_key ? VELO_ATREST_TAG_SIZE : 0);
    uint32_t flags = 0, stored = j->len;
    size_t z;

    z = ZSTD_compress(payload, bound, j->plain, j->len, VELO_XT_LEVEL);
    if (!ZSTD_isError(z) && z < j->len - j->len / 16) {
        flags |= VELO_XT_F_ZSTD;
        stored = z;
    } else {
        memcpy(payload, j->plain, j->len);
    }
    memset(obj, 0, VELO_XT_HDR);
    velo_put64(obj, VELO_XT_MAGIC);
    velo_put64(obj + 8, j->idx);
    velo_put32(obj + 16, j->len);
    velo_put32(obj + 24, stored);
    velo_put32(obj + 28, velo_cache_crc(j->plain, j->len));
    if (s->tier.has_key) {
        flags |= VELO_XT_F_GCM;
        velo_put32(obj + 20, flags);
        qemu_guest_getrandom_nofail(obj + 32, VELO_ATREST_NONCE_SIZE);
        qemu_mutex_lock(&s->tier.key_lock);
        j->ret = velo_atrest_seal(&s->tier.key, obj + 32, obj, VELO_XT_HDR,
                                  payload, stored, payload,
                                  obj + VELO_XT_HDR) ? 0 : -EIO;
        qemu_mutex_unlock(&s->tier.key_lock);
        if (j->ret < 0) {
            return 0;
        }
    } else {
        velo_put32(obj + 20, flags);
    }
    j->ret = velo_obj_put(s->jseg.store, j->key, obj,
                          payload - obj + stored, &j->err);
    return 0;
}

static int velo_tier_get_worker(void *opaque)
{
    VeloTierJob *j = opaque;
    BDRVVeloState *s = j->s;
    size_t max = VELO_XT_HDR + VELO_ATREST_TAG_SIZE + j->len +
                 ZSTD_compressBound(j->len);
    g_autofree uint8_t *obj = g_malloc(max);
    uint32_t flags, stored;
    uint8_t *payload;
    ssize_t n;

    n = velo_obj_get(s->jseg.store, j->key, 0, max, obj, &j->err);
    j->ret = -EILSEQ;
    if (n < VELO_XT_HDR || velo_get64(obj) != VELO_XT_MAGIC ||
        velo_get64(obj + 8) != j->idx || velo_get32(obj + 16) != j->len) {
        j->ret = n < 0 ? n : -EILSEQ;
        return 0;
    }
    flags = velo_get32(obj + 20);
    stored = velo_get32(obj + 24);
    payload = obj + VELO_XT_HDR;
    if (!!(flags & VELO_XT_F_GCM) != s->tier.has_key ||
        (flags & ~(VELO_XT_F_ZSTD | VELO_XT_F_GCM))) {
        return 0;
    }
    if (flags & VELO_XT_F_GCM) {
        bool ok;
        payload += VELO_ATREST_TAG_SIZE;
        if (payload - obj + (size_t)stored != (size_t)n) {
            return 0;
        }
        qemu_mutex_lock(&s->tier.key_lock);
        ok = velo_atrest_open(&s->tier.key, obj + 32, obj, VELO_XT_HDR,
                              payload, stored, payload, obj + VELO_XT_HDR);
        qemu_mutex_unlock(&s->tier.key_lock);
        if (!ok) {
            return 0;
        }
    } else if (payload - obj + (size_t)stored != (size_t)n) {
        return 0;
    }
    if (flags & VELO_XT_F_ZSTD) {
        size_t got = ZSTD_decompress(j->plain, j->len, payload, stored);
        if (ZSTD_isError(got) || got != j->len) {
            return 0;
        }
    } else if (stored == j->len) {
        memcpy(j->plain, payload, j->len);
    } else {
        return 0;
    }
    if (velo_cache_crc(j->plain, j->len) == velo_get32(obj + 28)) {
        /* Sound, but is it the content that was evicted, or older? */
        j->ret = velo_get32(obj + 28) == j->want_crc ? 0 : -ESTALE;
    }
    return 0;
}

static int coroutine_fn velo_co_tier_run(BDRVVeloState *s, ThreadPoolFunc *fn,
                                         VeloTierJob *j)
{
    j->s = s;
    j->key = velo_tier_key(s, j->idx);
    thread_pool_submit_co(aio_get_thread_pool(s->ctx), fn, j);
    g_free(j->key);
    if (j->err) {
        g_free(s->jseg.last_error);
        s->jseg.last_error = g_strdup(j->err->message);
        g_clear_error(&j->err);
    }
    return j->ret;
}

/* --- reads ------------------------------------------------------------- */

bool velo_tier_has(BDRVVeloState *s, uint64_t idx)
{
    return s->tier.in_store && test_bit(idx, s->tier.in_store);
}

void velo_tier_forget(BDRVVeloState *s, uint64_t idx)
{
    if (s->tier.in_store) {
        clear_bit(idx, s->tier.in_store);   /* the next eviction puts it */
    }
}

int coroutine_fn velo_co_tier_get(BDRVVeloState *s, uint64_t first,
                                  uint64_t n, uint8_t *buf)
{
    uint64_t i;

    for (i = 0; i < n; i++) {
        VeloTierJob j = {
            .idx = first + i, .plain = buf + i * s->extent_size,
            .len = velo_extmap_extent_len(s->map, first + i),
            .want_crc = s->crc[first + i],
        };
        if (velo_co_tier_run(s, velo_tier_get_worker, &j) < 0) {
            trace_velo_tier_miss(s, first + i, j.ret);
            clear_bit(first + i, s->tier.in_store);
            s->tier.misses++;
            return j.ret;
        }
    }
    s->tier.hits += n;
    trace_velo_tier_get(s, first, n);
    return 0;
}

void velo_tier_touch(BDRVVeloState *s, uint64_t idx)
{
    if (s->tier.ref) {
        set_bit(idx, s->tier.ref);
    }
}

/* --- eviction ---------------------------------------------------------- */

static uint64_t velo_tier_clean(BDRVVeloState *s)
{
    return s->map->count[VELO_EXT_CACHED] * s->extent_size;
}

/* Next clean extent the clock hand evicts, or UINT64_MAX after a lap. */
static uint64_t velo_tier_victim(BDRVVeloState *s)
{
    uint64_t n = s->map->n_extents, step;

    for (step = 0; step < 2 * n; step++) {
        uint64_t idx = s->tier.hand;
        s->tier.hand = (s->tier.hand + 1) % n;
        if (velo_extmap_get(s->map, idx) != VELO_EXT_CACHED ||
            g_hash_table_contains(s->busy, &idx)) {
            continue;
        }
        if (test_and_clear_bit(idx, s->tier.ref)) {
            continue;
        }
        return idx;
    }
    return UINT64_MAX;
}

static void coroutine_fn velo_tier_evict_co(void *opaque)
{
    BDRVVeloState *s = opaque;
    uint8_t *buf = velo_workbuf_alloc(s, s->extent_size);
    uint64_t target = s->tier.limit > VELO_TIER_SLACK * s->extent_size ?
                      s->tier.limit - VELO_TIER_SLACK * s->extent_size : 0;

    while (velo_tier_clean(s) > target && !s->drained && !s->closing) {
        uint64_t idx = velo_tier_victim(s), gen;
        uint32_t crc, tier_crc;
        bool raced = false;
        VeloBusy *b;
        int ret = 0;

        if (idx == UINT64_MAX) {
            break;
        }
        crc = s->crc[idx];
        gen = s->write_gen;
        tier_crc = 0;
        if (s->jseg.store) {
            VeloTierJob j = {
                .idx = idx, .plain = buf,
                .len = velo_extmap_extent_len(s->map, idx),
            };
            ret = velo_cache_read(s, idx, buf, &raced);
            if (ret == 0 && !raced && !velo_tier_has(s, idx)) {
                ret = velo_co_tier_run(s, velo_tier_put_worker, &j);
                if (ret < 0) {
                    s->tier.put_errors++;
                    break;      /* the store is down: keep the cache full */
                }
                set_bit(idx, s->tier.in_store);
                s->tier.bytes_put += j.len;
            }
            if (ret == 0 && !raced) {
                tier_crc = velo_cache_crc(buf, j.len);
            }
        }
        if (ret < 0 || raced || s->write_gen != gen || s->crc[idx] != crc ||
            velo_extmap_get(s->map, idx) != VELO_EXT_CACHED ||
            g_hash_table_contains(s->busy, &idx)) {
            continue;           /* changed meanwhile: look again later */
        }
        /*
         * Busy while its entry and slot go (both yield): a guest write of
         * the extent waits, or the discard could punch out its data and
         * the entry write land after the writer's.
         */
        b = velo_busy_new(s, idx, 1, false);
        b->ret = velo_cache_drop_clean(s, idx, tier_crc);
        if (b->ret == 0) {
            s->tier.evictions++;
            trace_velo_tier_evict(s, idx, velo_tier_has(s, idx));
        }
        velo_busy_finish(s, b);
    }
    velo_workbuf_free(s, buf, s->extent_size);
    s->tier.running = false;
    bdrv_dec_in_flight(s->bs);
}

void velo_tier_kick(BDRVVeloState *s)
{
    if (!s->tier.limit || s->tier.running || s->drained || s->closing ||
        velo_tier_clean(s) <= s->tier.limit) {
        return;
    }
    s->tier.running = true;
    bdrv_inc_in_flight(s->bs);
    aio_co_enter(s->ctx, qemu_coroutine_create(velo_tier_evict_co, s));
}

/* --- life cycle --------------------------------------------------------- */

int velo_tier_open(BDRVVeloState *s, Error **errp)
{
    g_autofree char *prefix = NULL;
    g_autoptr(VeloObjList) l = NULL;
    GError *err = NULL;
    size_t plen;
    guint i;

    if (s->tier.limit) {
        s->tier.ref = bitmap_new(s->map->n_extents);
    }
    if (!s->jseg.store) {
        return 0;
    }
    s->tier.in_store = bitmap_new(s->map->n_extents);
    qemu_mutex_init(&s->tier.key_lock);
    s->tier.lock_init = true;
    if (s->secret) {
        static const uint8_t tier_salt[VELO_ATREST_SALT_SIZE] =
            "velo object store tier";
        if (!velo_atrest_derive(s->secret, s->secret_len, tier_salt,
                                s->disk_id, &s->tier.key)) {
            error_setg(errp, "velo: cannot derive the object store key");
            return -EIO;
        }
        s->tier.has_key = true;
    }
    prefix = g_strdup_printf("%sext/", s->jseg.prefix);
    plen = strlen(prefix);
    if (velo_obj_list_all(s->jseg.store, prefix, s->map->n_extents,
                          &l, &err) < 0) {
        error_setg(errp, "velo: cannot list the extents in the object store: "
                   "%s", err->message);
        g_error_free(err);
        return -EIO;
    }
    for (i = 0; i < l->items->len; i++) {
        VeloObjInfo *o = &g_array_index(l->items, VeloObjInfo, i);
        uint64_t idx;
        if (sscanf(o->key + plen, "%20" SCNu64, &idx) == 1 &&
            idx < s->map->n_extents) {
            /*
             * Only an extent this cache file evicted, with the CRC of what
             * it put (a get checks it): an object of an extent written
             * since, or one the cache file knows nothing of (another host,
             * a new cache file), may be old, and the origin is right.
             */
            if (velo_extmap_get(s->map, idx) == VELO_EXT_DATA &&
                s->crc[idx]) {
                set_bit(idx, s->tier.in_store);
            }
        }
    }
    return 0;
}

void velo_tier_close(BDRVVeloState *s)
{
    g_free(s->tier.ref);
    s->tier.ref = NULL;
    g_free(s->tier.in_store);
    s->tier.in_store = NULL;
    velo_atrest_clear(&s->tier.key);
    if (s->tier.lock_init) {
        qemu_mutex_destroy(&s->tier.key_lock);
        s->tier.lock_init = false;
    }
}
