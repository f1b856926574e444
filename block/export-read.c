/*
 * Velo block export: answering MAP and READ requests.
 *
 * The connection's reader (export-conn.c) decodes each request and starts
 * one coroutine for it here.  A READ reads its extents from the node,
 * encodes them (zstd, content references) in the thread pool, and sends
 * its reply.  Guesses (BACKGROUND READs, feature PRIO) must not slow what
 * the guest waits for: they encode one at a time in the order the client
 * sent them, while plain READs encode at once, and their replies go after
 * the others' (velo_co_sendv).  PROMOTE turns a guess into a plain READ.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "qemu/timer.h"
#include "block/block_int.h"
#include "sysemu/block-backend.h"
#include "export-int.h"
#include "trace/trace-block_velo.h"

/* One MAP or READ, served by its own coroutine. */
typedef struct VeloReq {
    VeloClient *c;
    uint16_t type;                      /* VELO_MSG_MAP or VELO_MSG_READ */
    uint64_t handle;
    VeloRange r;
    uint64_t charge;                    /* counted in c->inflight_bytes */
    bool background;                    /* a BACKGROUND READ, not promoted:
                                           in c->bg_reqs */
    bool io;                            /* counted in c->nb_io */
    int64_t t_recv;                     /* get_clock() at receipt, when
                                           velo_export_reply is traced */
    GList *bg_link;                     /* in c->bg_order, or NULL */
    Coroutine *gate_co;                 /* waiting for its turn to encode */
} VeloReq;

static VeloMapKind velo_map_kind(int status)
{
    if (!(status & BDRV_BLOCK_ZERO)) {
        return VELO_MAP_DATA;
    }
    return status & BDRV_BLOCK_ALLOCATED ? VELO_MAP_ZERO : VELO_MAP_HOLE;
}

/*
 * Answer MAP from block status over the whole backing chain, merging
 * neighbours of the same kind.  The reply may cover a prefix only: it stops
 * at the payload limit or after VELO_EXP_MAP_MAX_CALLS lookups.
 */
static void coroutine_fn velo_co_map(VeloClient *c, VeloReq *req)
{
    BlockDriverState *bs = blk_bs(c->exp->common.blk);
    uint32_t max = velo_map_max_entries(VELO_EXP_MAX_PAYLOAD);
    uint64_t off = req->r.offset, end = req->r.offset + req->r.length;
    g_autoptr(GArray) e = g_array_new(false, false, sizeof(VeloMapEntry));
    g_autofree uint8_t *buf = NULL;
    unsigned calls;

    for (calls = 0; off < end && calls < VELO_EXP_MAP_MAX_CALLS; calls++) {
        VeloMapEntry *last = e->len ?
            &g_array_index(e, VeloMapEntry, e->len - 1) : NULL;
        int64_t pnum = 0;
        int ret;

        ret = bdrv_block_status_above(bs, NULL, off, end - off, &pnum,
                                      NULL, NULL);
        if (ret < 0 || pnum <= 0) {
            velo_co_error(c, req->handle, VELO_E_IO,
                          "block status at %" PRIu64 ": %s", off,
                          ret < 0 ? strerror(-ret) : "no progress");
            return;
        }
        if (last && last->kind == velo_map_kind(ret)) {
            last->length += pnum;
        } else if (e->len == max) {
            break;
        } else {
            VeloMapEntry n = {
                .offset = off, .length = pnum, .kind = velo_map_kind(ret),
            };
            g_array_append_val(e, n);
        }
        off += pnum;
    }
    velo_client_req_io_end(c, &req->io);    /* the reply may wait */
    buf = g_malloc(4 + (size_t)e->len * VELO_MAP_ENTRY_SIZE);
    velo_co_send(c, VELO_MSG_MAP_REPLY, req->handle, VELO_OK, buf,
                 velo_map_reply_encode(buf, (VeloMapEntry *)e->data, e->len));
}

/* Let the BACKGROUND READ now first in c->bg_order encode, if none does. */
static void velo_bg_gate_kick(VeloClient *c)
{
    VeloReq *head = g_queue_peek_head(&c->bg_order);

    if (!c->bg_encoding && head && head->gate_co) {
        Coroutine *co = head->gate_co;

        head->gate_co = NULL;
        aio_co_wake(co);
    }
}

/*
 * @req no longer takes a turn to encode as a guess; the guess now first
 * gets its turn if none encodes.
 */
static void velo_bg_order_remove(VeloClient *c, VeloReq *req)
{
    if (req->bg_link) {
        g_queue_delete_link(&c->bg_order, req->bg_link);
        req->bg_link = NULL;
    }
    velo_bg_gate_kick(c);
}

void velo_client_gate_move(VeloClient *c, AioContext *ctx)
{
    GList *l;

    for (l = c->bg_order.head; l; l = l->next) {
        VeloReq *req = l->data;

        if (req->gate_co) {
            aio_co_schedule(ctx, req->gate_co);
            req->gate_co = NULL;
        }
    }
}

/*
 * Wait until @req may encode: at once unless it is a guess, else when it
 * is the oldest guess not yet encoded and no other guess encodes.
 * Returns whether it holds c->bg_encoding (give it back and call
 * velo_bg_order_remove once encoded).  A PROMOTE or the connection
 * closing lets it go at once, without the turn.
 */
static bool coroutine_fn velo_bg_turn(VeloClient *c, VeloReq *req)
{
    while (req->bg_link && !c->closing &&
           (c->bg_encoding || c->bg_order.head != req->bg_link)) {
        req->gate_co = qemu_coroutine_self();
        qemu_coroutine_yield();
        req->gate_co = NULL;
    }
    if (!req->bg_link || c->closing) {
        velo_bg_order_remove(c, req);
        return false;
    }
    c->bg_encoding = true;
    return true;
}

/*
 * Answer READ with one chunk per run of extents: all-zero extents become
 * a payload-less ZERO chunk, the rest RAW chunks that point into the read
 * buffer.  Merging runs bounds the reply: each ZERO chunk saves at least
 * 4 KiB for its 20-byte header, so the payload is at most the read length
 * plus one header, within max-payload.
 */
static void coroutine_fn velo_co_read_extents(VeloClient *c, VeloReq *req)
{
    BlockBackend *blk = c->exp->common.blk;
    uint64_t esz = c->exp->extent_size, len = req->r.length;
    size_t nmax = len / esz + 2, n = DIV_ROUND_UP(len, esz), i, j;
    g_autofree uint8_t *hb = g_malloc(VELO_HDR_SIZE +
                                      nmax * VELO_CHUNK_HDR_SIZE);
    g_autofree struct iovec *iov = g_new(struct iovec, 2 * nmax + 1);
    g_autofree VeloEncExtent *ext = g_new(VeloEncExtent, n);
    g_autofree uint8_t *zbuf = NULL;
    size_t hpos = VELO_HDR_SIZE, hstart = 0;
    unsigned niov = 0;
    VeloHdr h = { .type = VELO_MSG_READ_REPLY, .handle = req->handle };
    VeloEncodeJob job = {
        .len = len, .esz = esz, .ext = ext,
        .level = c->features & VELO_F_ZSTD ? c->exp->compress_level : 0,
        .store_id = c->features & VELO_F_HASH ? c->store_id : NULL,
        .no_ref = req->r.flags & VELO_READ_NO_REF,
    };
    uint8_t *data;
    bool bg;
    int ret;

    data = qemu_try_blockalign(blk_bs(blk), len);
    if (job.level) {
        zbuf = g_try_malloc(n * velo_zstd_bound(esz));
    }
    if (!data || (job.level && !zbuf)) {
        velo_co_error(c, req->handle, VELO_E_IO, "out of memory");
        qemu_vfree(data);
        return;
    }
    ret = blk_co_pread(blk, req->r.offset, len, data, 0);
    velo_client_req_io_end(c, &req->io);    /* the reply may wait */
    if (ret < 0) {
        velo_co_error(c, req->handle, VELO_E_IO, "read at %" PRIu64 ": %s",
                      req->r.offset, strerror(-ret));
        qemu_vfree(data);
        return;
    }
    job.data = data;
    job.zbuf = zbuf;
    bg = velo_bg_turn(c, req);
    ret = velo_co_encode_extents(&job);
    if (bg) {
        c->bg_encoding = false;
        velo_bg_order_remove(c, req);
    }
    if (ret < 0) {
        velo_co_error(c, req->handle, VELO_E_IO, "out of memory");
        qemu_vfree(data);
        return;
    }

    /* Runs of ZERO or RAW extents make one chunk; ZSTD and REF extents one
     * each. */
    for (i = 0; i < n; i = j) {
        uint64_t pos = i * esz, run;
        unsigned enc = ext[i].enc;
        const uint8_t *payload = enc == VELO_ENC_ZSTD ? zbuf + i * job.bound :
                                 enc == VELO_ENC_REF ? ext[i].hash :
                                 data + pos;
        size_t plen;

        for (j = i + 1; j < n && (enc == VELO_ENC_ZERO || enc == VELO_ENC_RAW)
                        && ext[j].enc == enc; j++) {
            /* extend the run */
        }
        run = MIN(j * esz, len) - pos;
        plen = enc == VELO_ENC_ZERO ? 0 : enc == VELO_ENC_ZSTD ? ext[i].clen :
               enc == VELO_ENC_REF ? VELO_HASH_SIZE : run;
        velo_chunk_hdr_encode(hb + hpos, req->r.offset + pos, run, enc, plen);
        hpos += VELO_CHUNK_HDR_SIZE;
        h.length += VELO_CHUNK_HDR_SIZE + plen;
        if (plen) {
            iov[niov++] = (struct iovec) { hb + hstart, hpos - hstart };
            iov[niov++] = (struct iovec) { (void *)payload, plen };
            hstart = hpos;
        }
    }
    if (hpos > hstart) {
        iov[niov++] = (struct iovec) { hb + hstart, hpos - hstart };
    }
    assert(h.length <= VELO_EXP_MAX_PAYLOAD && niov <= 2 * nmax + 1);
    velo_hdr_encode(hb, &h);
    if (req->t_recv) {
        int64_t t_ready = get_clock(), t_start = t_ready;

        velo_co_sendv(c, iov, niov, &req->background, &t_start);
        trace_velo_export_reply(c, req->handle, req->r.flags, h.length,
                                (t_ready - req->t_recv) / SCALE_US,
                                (t_start - t_ready) / SCALE_US,
                                (get_clock() - t_start) / SCALE_US);
    } else {
        velo_co_sendv(c, iov, niov, &req->background, NULL);
    }
    qemu_vfree(data);
}
static void coroutine_fn velo_req_co(void *opaque)
{
    g_autofree VeloReq *req = opaque;
    VeloClient *c = req->c;

    if (req->type == VELO_MSG_MAP) {
        velo_co_map(c, req);
    } else {
        velo_co_read_extents(c, req);
    }
    if (req->background &&
        g_hash_table_lookup(c->bg_reqs, &req->handle) == req) {
        g_hash_table_remove(c->bg_reqs, &req->handle);
    }
    velo_bg_order_remove(c, req);
    velo_client_req_done(c, req->charge, &req->io);
}

/* Decode a MAP or READ (payload @p) and start a coroutine for it. */
void coroutine_fn velo_co_start_request(VeloClient *c, VeloHdr *h,
                                        const uint8_t *p)
{
    VeloExport *exp = c->exp;
    VeloReq *req;
    VeloRange r, wide;
    const char *why, *why2;
    bool ok;

    if (h->type == VELO_MSG_MAP) {
        ok = velo_map_req_decode(p, 16, exp->disk_size, &r, &why);
    } else {
        ok = velo_read_req_decode(p, 16, exp->disk_size, exp->extent_size,
                                  VELO_EXP_MAX_PAYLOAD, &r, &why);
    }
    if (!ok) {
        /* It is a RANGE error if it would be fine on an endless disk. */
        bool range = h->type == VELO_MSG_MAP ?
            velo_map_req_decode(p, 16, UINT64_MAX, &wide, &why2) :
            velo_read_req_decode(p, 16, UINT64_MAX, exp->extent_size,
                                 VELO_EXP_MAX_PAYLOAD, &wide, &why2);
        velo_co_error(c, h->handle, range ? VELO_E_RANGE : VELO_E_INVAL,
                      "%s", why);
        return;
    }
    if ((r.flags & VELO_READ_BACKGROUND) && !(c->features & VELO_F_PRIO)) {
        velo_co_error(c, h->handle, VELO_E_INVAL,
                      "READ flag BACKGROUND without feature PRIO");
        return;
    }
    if ((r.flags & VELO_READ_BACKGROUND) &&
        g_hash_table_contains(c->bg_reqs, &h->handle)) {
        /* PROMOTE names READs by handle: it must be unique. */
        velo_co_error(c, h->handle, VELO_E_INVAL, "BACKGROUND READ with "
                      "handle %" PRIu64 ", already in flight", h->handle);
        return;
    }
    trace_velo_export_request(c, velo_msg_name(h->type), h->handle,
                              r.offset, r.length);

    while (exp->quiescing && !c->closing) {
        c->parked = VELO_PARK_QUIESCE;
        qemu_coroutine_yield();
    }
    if (c->closing) {
        return;
    }

    req = g_new(VeloReq, 1);
    *req = (VeloReq) {
        .c = c, .type = h->type, .handle = h->handle, .r = r,
        /* A compressed READ holds the data and its compressed copy. */
        .charge = h->type != VELO_MSG_READ ? VELO_EXP_MAX_PAYLOAD :
                  (c->features & VELO_F_ZSTD) && exp->compress_level ?
                  2 * r.length : r.length,
        .background = r.flags & VELO_READ_BACKGROUND,
        .t_recv = trace_event_get_state_backends(TRACE_VELO_EXPORT_REPLY) ?
                  get_clock() : 0,
    };
    if (req->background) {
        g_hash_table_insert(c->bg_reqs, &req->handle, req);
        g_queue_push_tail(&c->bg_order, req);
        req->bg_link = c->bg_order.tail;
    }
    velo_client_req_start(c, req->charge, &req->io);
    aio_co_enter(exp->common.ctx, qemu_coroutine_create(velo_req_co, req));
}

/*
 * PROMOTE (header only, the handle of a READ): the client waits for that
 * BACKGROUND READ after all, so its reply goes with the others from now on.
 * A READ already answered, or never BACKGROUND, is ignored.  Returns why
 * the connection must close, or NULL.
 */
const char *coroutine_fn velo_co_promote_req(VeloClient *c, VeloHdr *h)
{
    VeloReq *req;

    if (h->length || !(c->features & VELO_F_PRIO)) {
        velo_co_error(c, h->handle, VELO_E_PROTO, h->length ?
                      "PROMOTE carries a payload" :
                      "PROMOTE without feature PRIO");
        return "bad PROMOTE";
    }
    trace_velo_export_request(c, "PROMOTE", h->handle, 0, 0);
    req = g_hash_table_lookup(c->bg_reqs, &h->handle);
    if (req) {
        g_hash_table_remove(c->bg_reqs, &h->handle);
        req->background = false;
        /* If it waits to encode or send, it now goes with the others. */
        velo_bg_order_remove(c, req);
        if (req->gate_co) {
            Coroutine *co = req->gate_co;

            req->gate_co = NULL;
            aio_co_wake(co);
        }
        qemu_co_queue_restart_all(&c->send_bg);
    }
    return NULL;
}
