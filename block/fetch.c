/*
 * Velo read path: the RAM tier, busy extents, on-demand fetching with
 * coalescing and batching (from the object store tier when it holds an
 * extent, else the WAN) and adaptive sequential readahead.  Guest writes
 * are in write.c; they use the busy table and the RAM tier from here.
 *
 * A guest read walks its extents through the tiers:
 *
 *   busy? --yes--> wait for that fetch/write, use its buffer
 *     | no
 *   ZERO -> zeros   RAM tier -> copy   cache file -> copy (+ into RAM)
 *     | DATA/UNKNOWN
 *   fetch: consecutive missing extents become one READ (<= 1 MiB), each READ
 *          its own coroutine, many in flight; every extent being fetched is
 *          in s->busy so concurrent readers join it instead of refetching.
 *
 * Invariants:
 *   - an extent is in s->busy while a fetch or a guest write of it is under
 *     way; a fetched extent stays busy until its clean copy is in the cache
 *     file, so a guest write can never be overwritten by a late clean copy;
 *   - DIRTY extents are never fetched nor evicted;
 *   - the RAM tier (ram.c) holds exact copies of CACHED/DIRTY extents (or
 *     of fetched ones whose cache write failed); fetch buffers share
 *     ram-size with it (velo_ram_shrink()).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include "qemu/error-report.h"
#include "velo-int.h"
#include "profile-int.h"
#include "trace.h"
#include <zstd.h>

/* --- busy extents ---------------------------------------------------------- */

VeloBusy *velo_busy_new(BDRVVeloState *s, uint64_t first, uint64_t n,
                          bool fetch)
{
    VeloBusy *b = g_new0(VeloBusy, 1);
    uint64_t i;

    b->first = first;
    b->n = n;
    b->refcnt = 1;
    qemu_co_queue_init(&b->waiters);
    if (fetch) {
        b->buf = velo_databuf_alloc(n * s->extent_size);
        b->s = s;
        s->buf_bytes += n * s->extent_size;
        velo_ram_shrink(s);
    }
    for (i = 0; i < n; i++) {
        uint64_t *key = g_new(uint64_t, 1);
        *key = first + i;
        g_hash_table_insert(s->busy, key, b);
    }
    return b;
}

void velo_busy_unref(VeloBusy *b)
{
    if (--b->refcnt == 0) {
        if (b->s) {
            b->s->buf_bytes -= b->n * b->s->extent_size;
            velo_databuf_free(b->buf, b->n * b->s->extent_size);
        }
        g_free(b);
    }
}

/* Mark @b finished: remove it from the table and wake everyone waiting. */
void coroutine_fn velo_busy_finish(BDRVVeloState *s, VeloBusy *b)
{
    uint64_t i;

    for (i = 0; i < b->n; i++) {
        uint64_t idx = b->first + i;
        if (g_hash_table_lookup(s->busy, &idx) == b) {
            g_hash_table_remove(s->busy, &idx);
        }
    }
    b->done = true;
    qemu_co_queue_restart_all(&b->waiters);
    velo_busy_unref(b);
}

/* --- fetching ------------------------------------------------------------ */

uint64_t velo_spec_window(BDRVVeloState *s)
{
    return velo_link_spec_window(&s->link, s->stats.fetch_count,
                                 s->stats.bytes_fetched,
                                 s->stats.bytes_fetched_raw);
}

/*
 * Decode READ_REPLY @payload (@plen bytes, the READ sent at @start) for
 * [off, off+len) into @buf.  Returns 0, -errno, or the (positive) number of
 * REF chunks that could not be resolved.
 */
static int coroutine_fn velo_co_decode_read(BDRVVeloState *s, uint64_t off,
                                            uint64_t len, uint8_t *buf,
                                            uint32_t flags,
                                            const uint8_t *payload,
                                            uint32_t plen, int64_t start,
                                            uint64_t delivered,
                                            int64_t delivered_ns,
                                            Error **errp)
{
    int64_t ns, now;
    VeloRange r = { .offset = off, .length = len, .flags = flags };
    uint64_t n = DIV_ROUND_UP(len, s->extent_size);
    g_autofree uint8_t *kinds = s->cas ? g_malloc0(n) : NULL;
    g_autofree uint8_t *hashes = NULL;
    uint64_t next = off, i;
    size_t pos = 0;
    VeloChunk c;
    const char *why;
    int ret;

    while ((ret = velo_chunk_next(payload, plen, &pos, &r, &next,
                                  s->features, &c, &why)) > 0) {
        uint8_t *dst = buf + (c.offset - off);
        uint64_t x = (c.offset - off) >> s->map->extent_shift;
        size_t dlen;

        switch (c.encoding) {
        case VELO_ENC_RAW:
            memcpy(dst, c.payload, c.length);
            break;
        case VELO_ENC_ZSTD:
            /* @dst holds exactly c.length bytes: that caps the output. */
            if (!s->zdctx) {
                ret = -1;
                why = "no memory for a zstd decompression context";
                goto bad;
            }
            dlen = ZSTD_decompressDCtx(s->zdctx, dst, c.length, c.payload,
                                       c.payload_length);
            if (ZSTD_isError(dlen) || dlen != c.length) {
                ret = -1;
                why = "a ZSTD chunk does not decompress to its length";
                goto bad;
            }
            break;
        case VELO_ENC_REF:
            if ((flags & VELO_READ_NO_REF) ||
                (c.offset - off) % s->extent_size ||
                c.length != MIN(s->extent_size, off + len - c.offset)) {
                ret = -1;
                why = "a REF chunk after NO_REF, or not exactly one extent";
                goto bad;
            }
            if (!hashes) {
                hashes = g_malloc(n * VELO_HASH_SIZE);
            }
            memcpy(hashes + x * VELO_HASH_SIZE, c.payload, VELO_HASH_SIZE);
            kinds[x] = VELO_DD_REF;
            continue;
        default:
            memset(dst, 0, c.length);
            continue;
        }
        s->stats.bytes_fetched_raw += c.length;
        if (kinds) {
            for (i = x; i < n && off + (i << s->map->extent_shift) <
                                 c.offset + c.length; i++) {
                kinds[i] = VELO_DD_DATA;
            }
        }
    }
bad:
    if (ret < 0) {
        error_setg(errp, "velo server sent a bad READ reply for export '%s' "
                   "at offset %" PRIu64 ": %s", s->export_name, off, why);
        velo_conn_distrust(s, why);
        return -EPROTO;
    }
    now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    ns = now - start;
    s->stats.bytes_fetched += plen;
    if (velo_link_est_sample(&s->link, s->stats.bytes_fetched - delivered,
                             now - delivered_ns, ns, now)) {
        trace_velo_link_sample(s, s->stats.bytes_fetched - delivered,
                               now - delivered_ns, s->link.bps,
                               s->link.rtt_ns);
    }
    s->link_delivered_ns = now;
    s->stats.fetch_ns_total += ns;
    s->stats.fetch_ns_max = MAX(s->stats.fetch_ns_max, (uint64_t)ns);
    s->stats.fetch_count++;
    trace_velo_fetch_done(s, off, len, plen, ns / 1000);
    if (kinds) {
        ret = velo_co_dedup_reply(s, buf, off, len, kinds, hashes);
    }
    return ret;
}

/*
 * One READ of [off, off+len) into @buf with READ @flags.  Returns 0, -errno,
 * or the (positive) number of REF chunks that could not be resolved.
 */
static int coroutine_fn velo_co_fetch_once(BDRVVeloState *s, uint64_t off,
                                           uint64_t len, uint8_t *buf,
                                           uint32_t flags, VeloReadPrio *prio,
                                           Error **errp)
{
    VeloRange r = { .offset = off, .length = len, .flags = flags };
    g_autoptr(VeloPayload) payload = NULL;
    uint8_t req[16];
    uint32_t plen;
    int64_t start = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    /* What had arrived, and when the last of it did: see velo_link_sample. */
    uint64_t delivered = s->stats.bytes_fetched;
    int64_t delivered_ns = s->link_delivered_ns ?: start;
    int ret;

    velo_read_req_encode(req, &r);
    s->stats.fetches++;
    ret = velo_co_request_handle(s, VELO_MSG_READ, req, sizeof(req),
                                 &payload, &plen, prio, errp);
    if (prio) {
        prio->handle = 0;
    }
    if (ret < 0) {
        return ret;
    }
    /* Counted against ram-size until it goes (when this function returns). */
    s->buf_bytes += plen;
    velo_ram_shrink(s);
    ret = velo_co_decode_read(s, off, len, buf, flags, payload, plen, start,
                              delivered, delivered_ns, errp);
    s->buf_bytes -= plen;
    velo_payload_free(g_steal_pointer(&payload));
    velo_heap_trim();
    return ret;
}

/*
 * Fetch [off, off+len) from the server into @buf; a guess (@prio) lets the
 * server send every other reply first.
 */
int coroutine_fn velo_co_fetch_range(BDRVVeloState *s, uint64_t off,
                                     uint64_t len, uint8_t *buf,
                                     VeloReadPrio *prio, Error **errp)
{
    int ret = velo_co_fetch_once(s, off, len, buf, 0, prio, errp);

    if (ret > 0) {
        /*
         * Our store lacks what the server thought it had: no REFs, please.
         * Rare enough to go with the others.
         */
        ret = velo_co_fetch_once(s, off, len, buf, VELO_READ_NO_REF, NULL,
                                 errp);
    }
    return ret;
}

typedef struct VeloFetchCo {
    BDRVVeloState *s;
    VeloBusy *b;
} VeloFetchCo;

static void coroutine_fn velo_fetch_entry(void *opaque)
{
    VeloFetchCo *fc = opaque;
    BDRVVeloState *s = fc->s;
    VeloBusy *b = fc->b;
    uint64_t off = b->first << s->map->extent_shift;
    uint64_t end = MIN(off + b->n * s->extent_size, s->disk_size);
    bool profile = b->profile;
    uint64_t first = b->first, n = b->n;
    Error *err = NULL;
    uint64_t i;
    int ret;

    g_free(fc);
    b->ret = -ENOENT;
    if (b->tier) {
        b->ret = velo_co_tier_get(s, first, n, b->buf);
    }
    if (b->ret < 0) {
        b->prio.background = b->readahead || b->profile;
        b->ret = velo_co_fetch_range(s, off, end - off, b->buf, &b->prio,
                                     &err);
    }
    if (b->readahead) {
        s->ra_inflight -= b->n * s->extent_size;
    } else if (!b->profile && --s->demand_fetches == 0) {
        velo_profile_kick(s);
    }
    if (b->ret < 0) {
        if (!b->readahead && !b->profile) {
            error_report_err(err);
        } else {
            trace_velo_readahead_failed(s, off, error_get_pretty(err));
            error_free(err);
        }
        ret = b->ret;
        velo_busy_finish(s, b);
        if (profile) {
            velo_profile_fetch_done(s, first, n, end - off, ret);
        }
        bdrv_dec_in_flight(s->bs);
        return;
    }

    /* Readers may use b->buf from now on; the extents stay busy meanwhile. */
    b->done = true;
    qemu_co_queue_restart_all(&b->waiters);

    for (i = 0; i < b->n; i++) {
        uint64_t idx = b->first + i;
        uint8_t *data = b->buf + i * s->extent_size;
        uint32_t len = velo_extmap_extent_len(s->map, idx);
        VeloExtState st = velo_extmap_get(s->map, idx);

        if (st != VELO_EXT_DATA && st != VELO_EXT_UNKNOWN) {
            continue;
        }
        if (buffer_is_zero(data, len)) {
            velo_extmap_set(s->map, idx, VELO_EXT_ZERO);
            continue;
        }
        velo_ram_put(s, idx, data);
        if (velo_cache_store_clean(s, idx, data) == 0) {
            velo_extmap_set(s->map, idx, VELO_EXT_CACHED);
        }
    }
    velo_busy_finish(s, b);
    velo_tier_kick(s);
    if (profile) {
        /* After the stores: a finished replay means cached extents. */
        velo_profile_fetch_done(s, first, n, end - off, 0);
    }
    bdrv_dec_in_flight(s->bs);
}

uint64_t velo_wire_window(BDRVVeloState *s, uint64_t raw_window)
{
    return velo_link_wire_window(raw_window, s->stats.bytes_fetched,
                                 s->stats.bytes_fetched_raw);
}

static bool needs_fetch(BDRVVeloState *s, uint64_t idx)
{
    VeloExtState st = velo_extmap_get(s->map, idx);

    return (st == VELO_EXT_DATA || st == VELO_EXT_UNKNOWN) &&
           !g_hash_table_contains(s->busy, &idx) &&
           !(s->ram && g_hash_table_contains(s->ram, &idx));
}

/*
 * Start fetches for the missing extents among [first, first + n).
 * Readahead must not delay demand fetches: its replies share the link, so
 * it gets smaller READs and a bounded number of bytes in flight
 * (velo_spec_window).  Profile replay gets the same
 * small READs; profile-rec.c bounds its bytes in flight.  Returns the
 * extent index up to which [first, first + n) has been dealt with.
 */
uint64_t velo_start_fetches(BDRVVeloState *s, uint64_t first, uint64_t n,
                            VeloFetchKind kind)
{
    bool readahead = kind == VELO_FETCH_READAHEAD;
    /* Offline since the open, the server's limit is unknown: one extent. */
    uint64_t room = s->max_payload > VELO_READ_OVERHEAD ?
                    s->max_payload - VELO_READ_OVERHEAD : s->extent_size;
    uint64_t batch = MAX(1, MIN(kind != VELO_FETCH_DEMAND ? VELO_RA_BATCH :
                                VELO_FETCH_BATCH, room) / s->extent_size);
    uint64_t idx = first, end = MIN(first + n, s->map->n_extents);

    if (kind != VELO_FETCH_DEMAND && !s->connected) {
        /*
         * No guesses while the link is down: they would wait for it, and a
         * drain or close of the node with them (reconnect-delay).
         */
        return first;
    }

    while (idx < end) {
        uint64_t run = 0;
        VeloFetchCo *fc;
        bool tier = velo_tier_has(s, idx);

        if (readahead && s->ra_inflight >= velo_spec_window(s)) {
            break;
        }
        /* A run comes all from the object store tier, or all from the WAN. */
        while (idx + run < end && run < batch && needs_fetch(s, idx + run) &&
               velo_tier_has(s, idx + run) == tier) {
            run++;
        }
        if (!run) {
            idx++;
            continue;
        }
        fc = g_new(VeloFetchCo, 1);
        fc->s = s;
        fc->b = velo_busy_new(s, idx, run, true);
        fc->b->readahead = readahead;
        fc->b->profile = kind == VELO_FETCH_PROFILE;
        fc->b->tier = tier;
        if (readahead) {
            s->stats.readahead_fetches++;
            s->ra_inflight += run * s->extent_size;
        } else if (kind == VELO_FETCH_PROFILE) {
            velo_profile_fetch_started(s, idx, run);
        } else {
            s->demand_fetches++;
        }
        trace_velo_fetch_start(s, idx, run, kind);
        s->fetches_started++;
        bdrv_inc_in_flight(s->bs);
        aio_co_enter(s->ctx, qemu_coroutine_create(velo_fetch_entry, fc));
        idx += run;
    }
    return idx;
}

/*
 * Adaptive sequential readahead: a read that continues the previous one
 * grows the window to twice the bytes read sequentially so far (at least 2
 * extents, at most readahead-max); any other read resets it.  New fetches
 * are issued when less than half a window is left ahead.
 */
static void velo_readahead(BDRVVeloState *s, uint64_t offset, uint64_t bytes)
{
    uint64_t start, end, done;

    if (!s->readahead_max) {
        return;
    }
    if (offset == s->seq_next) {
        s->seq_bytes += bytes;
        s->ra_window = MIN(MAX(2 * s->seq_bytes, 2 * (uint64_t)s->extent_size),
                           s->readahead_max);
    } else {
        s->seq_bytes = bytes;
        s->ra_window = 0;
        s->ra_end = 0;
    }
    s->seq_next = offset + bytes;
    if (!s->ra_window || s->seq_next >= s->disk_size) {
        return;
    }
    start = MAX(s->seq_next, s->ra_end);
    end = MIN(s->seq_next + s->ra_window, s->disk_size);
    if (start >= end || s->ra_end > s->seq_next + s->ra_window / 2) {
        return;
    }
    done = velo_start_fetches(s, start >> s->map->extent_shift,
                              ((end - 1) >> s->map->extent_shift) -
                              (start >> s->map->extent_shift) + 1,
                              VELO_FETCH_READAHEAD);
    s->ra_end = MIN(end, done << s->map->extent_shift);
}

/* --- reading ------------------------------------------------------------- */

typedef enum { SRC_ZERO, SRC_RAM, SRC_CACHE, SRC_FETCH } VeloSource;

/* Copy bytes [in_off, in_off+len) of extent @idx into @qiov at @qoff. */
static int coroutine_fn velo_co_read_piece(BDRVVeloState *s, uint64_t idx,
                                           uint32_t in_off, uint32_t len,
                                           QEMUIOVector *qiov, size_t qoff,
                                           VeloSource *src)
{
    for (;;) {
        VeloBusy *b = g_hash_table_lookup(s->busy, &idx);
        VeloRamEnt *e;
        VeloExtState st;

        if (b) {
            if (!b->done) {
                b->refcnt++;
                if (b->prio.background && !b->prio.promoted) {
                    /*
                     * A guess the guest now waits for: no longer last.  If
                     * it is not on the wire now (reconnecting), its resend
                     * goes without BACKGROUND.
                     */
                    b->prio.promoted = true;
                    velo_co_promote(s, b->prio.handle);
                }
                if (!b->done) {
                    qemu_co_queue_wait(&b->waiters, NULL);
                }
                *src = SRC_FETCH;
                if (b->ret < 0 && b->buf) {
                    /* A failed fetch fails its readers; a failed write doesn't. */
                    int ret = b->ret;
                    velo_busy_unref(b);
                    return ret;
                }
                velo_busy_unref(b);
                continue;
            }
            if (b->buf && b->ret == 0) {
                qemu_iovec_from_buf(qiov, qoff,
                                    b->buf + (idx - b->first) * s->extent_size +
                                    in_off, len);
                return 0;
            }
        }
        st = velo_extmap_get(s->map, idx);
        if (st == VELO_EXT_CACHED) {
            velo_tier_touch(s, idx);
        }
        if (st == VELO_EXT_ZERO) {
            qemu_iovec_memset(qiov, qoff, 0, len);
            *src = MAX(*src, SRC_ZERO);
            return 0;
        }
        e = velo_ram_lookup(s, idx);
        if (e) {
            qemu_iovec_from_buf(qiov, qoff, e->data + in_off, len);
            *src = MAX(*src, SRC_RAM);
            return 0;
        }
        if (st == VELO_EXT_DIRTY && velo_jres_lookup(s, idx)) {
            /* Written whole and still only in the journal. */
            int ret = velo_co_jres_read(s, idx, in_off, len, qiov, qoff);
            if (ret == 0) {
                *src = MAX(*src, SRC_CACHE);
            }
            if (ret != -EAGAIN) {
                return ret;
            }
            continue;
        }
        if ((st == VELO_EXT_CACHED || st == VELO_EXT_DIRTY) && in_off == 0 &&
            len == velo_extmap_extent_len(s->map, idx)) {
            /*
             * A whole extent: read it straight into the guest's buffer.  It
             * bypasses the RAM tier, which is for extents read piecemeal.
             */
            bool raced;
            int ret = velo_cache_readv(s, idx, qiov, qoff, &raced);
            if (ret == 0) {
                *src = MAX(*src, SRC_CACHE);
            }
            if (ret != -EAGAIN) {
                return ret;
            }
            continue;
        }
        if (st == VELO_EXT_CACHED || st == VELO_EXT_DIRTY) {
            uint8_t *buf = velo_workbuf_alloc(s, s->extent_size);
            bool raced;
            int ret = velo_cache_read(s, idx, buf, &raced);
            if (ret == 0) {
                if (!raced) {
                    velo_ram_put(s, idx, buf);
                }
                qemu_iovec_from_buf(qiov, qoff, buf + in_off, len);
                *src = MAX(*src, SRC_CACHE);
            }
            velo_workbuf_free(s, buf, s->extent_size);
            if (ret != -EAGAIN) {
                return ret;
            }
            continue;       /* raced with a write, or failed its check */
        }
        velo_start_fetches(s, idx, 1, VELO_FETCH_DEMAND);
    }
}

int coroutine_fn velo_co_preadv(BlockDriverState *bs, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags)
{
    BDRVVeloState *s = bs->opaque;
    uint64_t first = offset >> s->map->extent_shift;
    uint64_t last = (offset + bytes - 1) >> s->map->extent_shift;
    VeloSource src = SRC_ZERO;
    size_t qoff = 0;
    uint64_t idx, started;
    int64_t t0 = trace_event_get_state_backends(TRACE_VELO_READ_MISS) ?
                 get_clock() : 0;

    if (s->wb_error) {
        return -EIO;            /* the cache lacks a write (write.c) */
    }
    started = s->fetches_started;
    velo_start_fetches(s, first, last - first + 1, VELO_FETCH_DEMAND);
    velo_profile_read(s, first, last, s->fetches_started != started);
    if (s->readahead_max && s->fetches_started != started &&
        !velo_profile_replaying(s)) {
        /*
         * A miss: what lies just after it is likely next (files, inode
         * tables and directories cluster), so prefetch the following data
         * extents in the background, within the readahead budget.  Not
         * while a boot profile is replayed: it knows what comes next, and
         * guesses would only take link time from it.
         */
        uint64_t nb = MAX(1, MIN(velo_spec_window(s) / 2,
                                 s->readahead_max) / s->extent_size);
        uint64_t back = MIN(first, nb / 2);

        velo_start_fetches(s, last + 1, nb, VELO_FETCH_READAHEAD);
        velo_start_fetches(s, first - back, back, VELO_FETCH_READAHEAD);
    }
    velo_readahead(s, offset, bytes);

    for (idx = first; idx <= last; idx++) {
        uint64_t ext_start = idx << s->map->extent_shift;
        uint64_t lo = MAX((uint64_t)offset, ext_start);
        uint64_t hi = MIN((uint64_t)(offset + bytes),
                          ext_start + velo_extmap_extent_len(s->map, idx));
        int ret = velo_co_read_piece(s, idx, lo - ext_start, hi - lo, qiov,
                                     qoff, &src);
        if (ret < 0) {
            return ret;
        }
        qoff += hi - lo;
    }
    switch (src) {
    case SRC_ZERO: s->stats.zero_reads++; break;
    case SRC_RAM: s->stats.ram_hits++; break;
    case SRC_CACHE: s->stats.cache_hits++; break;
    case SRC_FETCH:
        s->stats.misses++;
        trace_velo_read_miss(s, offset, bytes,
                             t0 ? (get_clock() - t0) / SCALE_US : 0);
        break;
    }
    return 0;
}

void velo_fetch_init(BDRVVeloState *s)
{
    s->busy = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    s->jres = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    velo_ram_init(s);
    qemu_co_rwlock_init(&s->write_lock);
    qemu_co_queue_init(&s->wb_wait);
    s->zdctx = ZSTD_createDCtx();
}

void velo_fetch_cleanup(BDRVVeloState *s)
{
    velo_ram_cleanup(s);
    if (s->jres) {
        g_hash_table_destroy(s->jres);
        s->jres = NULL;
    }
    if (s->busy) {
        g_hash_table_destroy(s->busy);
        s->busy = NULL;
    }
    ZSTD_freeDCtx(s->zdctx);
    s->zdctx = NULL;
}
