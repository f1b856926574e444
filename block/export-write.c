/*
 * Velo block export: journal writes from a cloud node (WRITE and FLUSH with
 * feature WRITE) and their fencing, see docs/protocol.rst "Writes".
 *
 * A cloud node drains its journal here in sequence order.  Each WRITE
 * carries the writer's epoch and the record's sequence number:
 *
 *   - an epoch older than the newest one seen is refused (STALE): a node
 *     whose disk was taken over elsewhere can no longer write;
 *   - a sequence number already applied is answered DUPLICATE and not
 *     applied again (a resend after a lost reply); one accepted but still
 *     being applied gets BUSY (resend later);
 *   - one past the next expected is refused (SEQ): a gap.
 *
 * Accepted writes are applied to the image strictly in sequence order (a
 * later write never lands before an earlier one it may overlap).  FLUSH
 * waits for every accepted write, flushes the image, and then records the
 * epoch and the last applied sequence number in the write-state file, so
 * the fencing survives a restart of the server.
 *
 * The write-state file holds two 512-byte slots written alternately
 * (wstate.h); the valid slot with the higher generation counts.
 *
 * Everything runs in the export's AioContext.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/thread-pool.h"
#include "block/aio.h"
#include "sysemu/block-backend.h"
#include "qemu/memalign.h"
#include <zstd.h>
#include "export-int.h"
#include "bytes.h"
#include "cachefmt.h"
#include "wstate.h"
#include "trace/trace-block_velo.h"

/* --- the write-state file (format: wstate.h) ------------------------------ */

int velo_exp_write_open(VeloExport *exp, const char *path, Error **errp)
{
    uint8_t buf[2 * VELO_WST_SLOT];
    const char *why = NULL;
    VeloWState st;
    ssize_t n;
    int ret;

    exp->wst_fd = qemu_create(path, O_RDWR, 0600, errp);
    if (exp->wst_fd < 0) {
        error_prepend(errp, "velo export: write-state: ");
        return -EINVAL;
    }
    exp->wst_path = g_strdup(path);
    n = pread(exp->wst_fd, buf, sizeof(buf), 0);
    if (n < 0) {
        error_setg_errno(errp, errno, "velo export: cannot read write-state "
                         "file '%s'", path);
        return -EIO;
    }
    ret = velo_wst_pick(buf, n, &st, &why);
    if (ret == 0) {
        /* A new file: nothing applied yet, any epoch may start. */
        st = (VeloWState) { .gen = 0 };
    } else if (ret < 0) {
        error_setg(errp, "velo export: write-state file '%s' is corrupt "
                   "(%s); restore it, or remove it only if the origin must "
                   "accept a new journal history", path, why);
        return -EINVAL;
    } else if (memcmp(st.disk_id, exp->disk_id, VELO_DISK_ID_SIZE)) {
        error_setg(errp, "velo export: write-state file '%s' belongs to "
                   "another disk (give each export its own file)", path);
        return -EINVAL;
    }
    exp->wst_epoch = st.epoch;
    exp->durable_seq = st.seq;
    exp->wst_gen = st.gen;
    exp->epoch = exp->wst_epoch;
    exp->applied_seq = exp->durable_seq;
    exp->next_seq = exp->durable_seq + 1;
    qemu_co_queue_init(&exp->apply_wait);
    exp->turns = g_hash_table_new(g_int64_hash, g_int64_equal);
    trace_velo_export_write_state(exp->name, exp->epoch, exp->durable_seq);
    return 0;
}

void velo_exp_write_close(VeloExport *exp)
{
    if (exp->wst_fd > 0) {
        qemu_close(exp->wst_fd);
    }
    exp->wst_fd = -1;
    g_free(exp->wst_path);
    exp->wst_path = NULL;
    if (exp->turns) {
        g_hash_table_destroy(exp->turns);
        exp->turns = NULL;
    }
}

typedef struct VeloWstJob {
    int fd;
    uint8_t buf[VELO_WST_SLOT];
    off_t off;
} VeloWstJob;

static int velo_wst_worker(void *opaque)
{
    VeloWstJob *j = opaque;

    if (pwrite(j->fd, j->buf, VELO_WST_SLOT, j->off) != VELO_WST_SLOT) {
        return -EIO;
    }
    return qemu_fdatasync(j->fd) < 0 ? -errno : 0;
}

/* Record @epoch and @seq durably (in a worker thread). */
static int coroutine_fn velo_co_wst_save(VeloExport *exp, uint64_t epoch,
                                         uint64_t seq)
{
    VeloWstJob j = { .fd = exp->wst_fd };
    uint64_t gen;
    int ret;

    while (exp->wst_saving) {
        qemu_co_queue_wait(&exp->apply_wait, NULL);
    }
    if (exp->wst_epoch >= epoch && exp->durable_seq >= seq) {
        return 0;
    }
    /* After the wait: the slot a save in progress wrote is not ours. */
    gen = exp->wst_gen + 1;
    exp->wst_saving = true;
    {
        VeloWState st = { .gen = gen, .epoch = epoch, .seq = seq };
        memcpy(st.disk_id, exp->disk_id, VELO_DISK_ID_SIZE);
        velo_wst_encode(j.buf, &st);
    }
    j.off = (gen & 1) * VELO_WST_SLOT;
    ret = thread_pool_submit_co(aio_get_thread_pool(exp->common.ctx),
                                velo_wst_worker, &j);
    exp->wst_saving = false;
    qemu_co_queue_restart_all(&exp->apply_wait);
    if (ret == 0) {
        exp->wst_gen = gen;
        exp->wst_epoch = epoch;
        exp->durable_seq = seq;
    }
    return ret;
}

/* --- WRITE --------------------------------------------------------------- */

typedef struct VeloWriteReq {
    VeloClient *c;
    uint64_t handle;
    VeloWrite w;
    uint8_t *buf;                       /* the data, decoded (owned) */
    bool all_zero;
    uint64_t charge;                    /* counted in c->inflight_bytes */
    bool io;                            /* counted in c->nb_io */
    CoQueue turn;                       /* it waits here for its turn */
} VeloWriteReq;

/*
 * Wake the write whose turn it is now, or (after a failure moved next_seq
 * back) every waiting write, so they give up; and FLUSHes.  One wake per
 * applied write: a deep pipeline of small writes would otherwise wake
 * every waiter for every write.
 */
static void velo_write_wake(VeloExport *exp, bool failed)
{
    if (failed) {
        GHashTableIter it;
        gpointer v;

        exp->fail_gen++;
        g_hash_table_iter_init(&it, exp->turns);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            qemu_co_queue_restart_all(&((VeloWriteReq *)v)->turn);
        }
        /* They all give up: resent writes of the same seqs come next. */
        g_hash_table_remove_all(exp->turns);
    } else {
        uint64_t next = exp->applied_seq + 1;
        VeloWriteReq *wr = g_hash_table_lookup(exp->turns, &next);

        if (wr) {
            qemu_co_queue_restart_all(&wr->turn);
        }
    }
    qemu_co_queue_restart_all(&exp->apply_wait);
}

/* Decode the chunks of @p (@len bytes) into @buf; false if invalid. */
static bool velo_write_decode(VeloClient *c, const VeloWrite *w,
                              const uint8_t *p, uint32_t len, uint8_t *buf,
                              bool *all_zero, const char **why)
{
    VeloRange r = { .offset = w->offset, .length = w->length };
    uint64_t next = r.offset;
    size_t pos = VELO_WRITE_HDR_SIZE;
    /* One ZSTD chunk per extent at most: each costs a decompression. */
    uint64_t zmax = (w->offset + w->length - 1) / c->exp->extent_size -
                    w->offset / c->exp->extent_size + 1;
    VeloChunk ch;
    int ret;

    *all_zero = true;
    while ((ret = velo_chunk_next(p, len, &pos, &r, &next,
                                  c->features & VELO_F_ZSTD, &ch,
                                  why)) > 0) {
        uint8_t *dst = buf + (ch.offset - r.offset);
        size_t got;

        switch (ch.encoding) {
        case VELO_ENC_ZERO:
            memset(dst, 0, ch.length);
            break;
        case VELO_ENC_RAW:
            memcpy(dst, ch.payload, ch.length);
            *all_zero = false;
            break;
        case VELO_ENC_ZSTD:
            if (zmax-- == 0) {
                *why = "more ZSTD chunks than extents in the range";
                return false;
            }
            if (!c->dctx) {
                c->dctx = ZSTD_createDCtx();
                if (!c->dctx) {
                    *why = "out of memory for decompression";
                    return false;
                }
            }
            got = ZSTD_decompressDCtx(c->dctx, dst, ch.length, ch.payload,
                                      ch.payload_length);
            if (ZSTD_isError(got) || got != ch.length) {
                *why = "ZSTD chunk does not decompress to its length";
                return false;
            }
            *all_zero = false;
            break;
        }
    }
    return ret == 0;
}

static void coroutine_fn velo_write_co(void *opaque)
{
    g_autofree VeloWriteReq *wr = opaque;
    VeloClient *c = wr->c;
    VeloExport *exp = c->exp;
    BlockBackend *blk = exp->common.blk;
    uint64_t seq = wr->w.seq;
    uint8_t *buf = wr->buf;
    bool all_zero = wr->all_zero;
    const char *why = NULL;
    int ret = 0;

    uint64_t gen = exp->fail_gen;

    /* Our turn comes when every earlier accepted write has been applied. */
    qemu_co_queue_init(&wr->turn);
    while (exp->applied_seq + 1 != seq) {
        if (seq >= exp->next_seq || exp->fail_gen != gen) {
            /* An earlier write failed; the client resends from there. */
            ret = -ECANCELED;
            why = "an earlier write failed";
            break;
        }
        g_hash_table_insert(exp->turns, &wr->w.seq, wr);
        qemu_co_queue_wait(&wr->turn, NULL);
        if (g_hash_table_lookup(exp->turns, &wr->w.seq) == wr) {
            g_hash_table_remove(exp->turns, &wr->w.seq);
        }
    }
    if (ret == 0) {
        ret = all_zero ?
            blk_co_pwrite_zeroes(blk, wr->w.offset, wr->w.length,
                                 BDRV_REQ_MAY_UNMAP) :
            blk_co_pwrite(blk, wr->w.offset, wr->w.length, buf, 0);
        if (ret < 0) {
            why = strerror(-ret);
        }
    }
    if (ret == 0) {
        exp->applied_seq = seq;
        exp->bytes_written += wr->w.length;
    } else if (exp->applied_seq + 1 == seq) {
        /* Refuse everything after this one until it is sent again. */
        exp->next_seq = seq;
    }
    velo_write_wake(exp, ret < 0 && ret != -ECANCELED);
    velo_client_req_io_end(c, &wr->io);     /* the reply may wait */
    qemu_vfree(buf);
    trace_velo_export_write(c, seq, wr->w.offset, wr->w.length, ret);

    if (ret == 0) {
        uint8_t rep[VELO_WRITE_REPLY_SIZE];
        VeloWriteReply r = {
            .result = VELO_WRITE_APPLIED, .next_seq = seq + 1,
        };
        velo_write_reply_encode(rep, &r);
        velo_co_send(c, VELO_MSG_WRITE_REPLY, wr->handle, VELO_OK, rep,
                     sizeof(rep));
    } else {
        velo_co_error(c, wr->handle, ret == -ECANCELED ? VELO_E_SEQ : VELO_E_IO,
                      "WRITE seq %" PRIu64 " failed: %s", seq, why);
    }
    velo_client_req_done(c, wr->charge, &wr->io);
}

void coroutine_fn velo_co_write_start(VeloClient *c, VeloHdr *h,
                                      uint8_t *payload)
{
    VeloExport *exp = c->exp;
    g_autofree uint8_t *p = payload;
    VeloWriteReq *wr;
    const char *why;
    uint8_t *buf;
    bool all_zero;
    VeloWrite w;

    if (!velo_write_req_decode(p, h->length, exp->disk_size,
                               VELO_EXP_MAX_PAYLOAD, &w, &why)) {
        /* RANGE if it would be fine on an endless disk, as for READ. */
        const char *why2;
        bool range = velo_write_req_decode(p, h->length, UINT64_MAX,
                                           VELO_EXP_MAX_PAYLOAD, &w, &why2);
        velo_co_error(c, h->handle, range ? VELO_E_RANGE : VELO_E_INVAL,
                      "%s", why);
        return;
    }
    if (w.epoch < exp->epoch) {
        velo_co_error(c, h->handle, VELO_E_STALE, "WRITE from epoch %" PRIu64
                      ", but epoch %" PRIu64 " has taken over this disk",
                      w.epoch, exp->epoch);
        return;
    }
    if (w.seq <= exp->applied_seq) {
        uint8_t rep[VELO_WRITE_REPLY_SIZE];
        VeloWriteReply r = {
            .result = VELO_WRITE_DUPLICATE, .next_seq = exp->next_seq,
        };
        trace_velo_export_write(c, w.seq, w.offset, w.length, 1);
        velo_write_reply_encode(rep, &r);
        velo_co_send(c, VELO_MSG_WRITE_REPLY, h->handle, VELO_OK, rep,
                     sizeof(rep));
        return;
    }
    if (w.seq < exp->next_seq) {
        velo_co_error(c, h->handle, VELO_E_BUSY, "WRITE seq %" PRIu64
                      " is being applied; resend it after that", w.seq);
        return;
    }
    if (w.seq > exp->next_seq) {
        velo_co_error(c, h->handle, VELO_E_SEQ, "WRITE seq %" PRIu64
                      " leaves a gap: expected %" PRIu64, w.seq,
                      exp->next_seq);
        return;
    }
    /* Decode before accepting: a bad WRITE must not fence anyone. */
    buf = qemu_try_blockalign(blk_bs(exp->common.blk), w.length);
    if (!buf) {
        velo_co_error(c, h->handle, VELO_E_IO, "out of memory for a %u-byte "
                      "WRITE", w.length);
        return;
    }
    if (!velo_write_decode(c, &w, p, h->length, buf, &all_zero, &why)) {
        qemu_vfree(buf);
        velo_co_error(c, h->handle, VELO_E_INVAL, "%s", why);
        return;
    }
    exp->epoch = w.epoch;       /* a newer writer fences older ones now */
    exp->next_seq++;
    wr = g_new(VeloWriteReq, 1);
    *wr = (VeloWriteReq) {
        .c = c, .handle = h->handle, .w = w, .buf = buf,
        .all_zero = all_zero, .charge = MAX(h->length, w.length),
    };
    velo_client_req_start(c, wr->charge, &wr->io);
    aio_co_enter(exp->common.ctx, qemu_coroutine_create(velo_write_co, wr));
}

/* --- FLUSH --------------------------------------------------------------- */

typedef struct VeloFlushReq {
    VeloClient *c;
    uint64_t handle;
    uint64_t epoch;
    bool io;                            /* counted in c->nb_io */
} VeloFlushReq;

static void coroutine_fn velo_flush_co(void *opaque)
{
    g_autofree VeloFlushReq *fr = opaque;
    VeloClient *c = fr->c;
    VeloExport *exp = c->exp;
    uint8_t rep[VELO_FLUSH_REPLY_SIZE];
    VeloFlushReply r;
    uint64_t upto, epoch;
    int ret;

    if (fr->epoch < exp->epoch) {
        velo_co_error(c, fr->handle, VELO_E_STALE, "FLUSH from epoch %"
                      PRIu64 ", but epoch %" PRIu64 " has taken over this "
                      "disk", fr->epoch, exp->epoch);
        velo_client_req_done(c, 0, &fr->io);
        return;
    }
    /* Everything accepted so far must be applied first. */
    while (exp->applied_seq + 1 < exp->next_seq) {
        qemu_co_queue_wait(&exp->apply_wait, NULL);
    }
    upto = exp->applied_seq;
    epoch = exp->epoch;
    ret = blk_co_flush(exp->common.blk);
    if (ret == 0) {
        ret = velo_co_wst_save(exp, epoch, upto);
    }
    velo_client_req_io_end(c, &fr->io);     /* the reply may wait */
    trace_velo_export_flush(c, upto, epoch, ret);
    if (ret < 0) {
        velo_co_error(c, fr->handle, VELO_E_IO, "FLUSH failed: %s",
                      strerror(-ret));
    } else if (fr->epoch < exp->epoch) {
        velo_co_error(c, fr->handle, VELO_E_STALE, "FLUSH from epoch %"
                      PRIu64 ", but epoch %" PRIu64 " has taken over this "
                      "disk", fr->epoch, exp->epoch);
    } else {
        r = (VeloFlushReply) { .durable_seq = upto, .epoch = epoch };
        velo_flush_reply_encode(rep, &r);
        velo_co_send(c, VELO_MSG_FLUSH_REPLY, fr->handle, VELO_OK, rep,
                     sizeof(rep));
    }
    velo_client_req_done(c, 0, &fr->io);
}

void coroutine_fn velo_co_flush_start(VeloClient *c, VeloHdr *h,
                                      const uint8_t *payload)
{
    VeloFlushReq *fr;
    const char *why;
    uint64_t epoch;

    if (!velo_flush_req_decode(payload, h->length, &epoch, &why)) {
        velo_co_error(c, h->handle, VELO_E_INVAL, "%s", why);
        return;
    }
    fr = g_new(VeloFlushReq, 1);
    *fr = (VeloFlushReq) { .c = c, .handle = h->handle, .epoch = epoch };
    velo_client_req_start(c, 0, &fr->io);
    aio_co_enter(c->exp->common.ctx, qemu_coroutine_create(velo_flush_co, fr));
}
