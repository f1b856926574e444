/*
 * Velo journal drain: sends the write-back journal to the origin (the velo
 * export) in sequence order, and frees journal space once the origin has
 * made the records durable.
 *
 * A drain pass is a coroutine started by a bottom half when there are live
 * records, the mode is write-back, the node is connected and not drained.
 * It takes up to VELO_DRAIN_BATCH bytes of records from the head; slice by
 * slice (VELO_DRAIN_SLICE), right before sending, it reads them back from
 * the journal node (checking their CRCs), compresses them in a worker
 * thread, and sends them as pipelined WRITEs (epoch, seq), up
 * to the server's in-flight limit, with a FLUSH right behind them, so a
 * batch costs one round trip; the FLUSH_REPLY's durable seq moves the
 * journal head (once the cache file holds those records durably too).  On
 * any failure the pass ends and the next one, a second later, starts again
 * from the head: the origin answers what it already has as DUPLICATE, so
 * resending is harmless.  A STALE answer means another node took the disk
 * over: the drain stops for good (fenced) and says so in the stats.
 *
 * Two passes overlap: once a pass has taken its records, the next one may
 * start, read back and compress the records after them while the first
 * sends, and send its own right behind; the link does not idle for the
 * round trip, the origin's flush and the compression between batches.
 * Passes send and move the head in the order they started (tickets).  A
 * failed pass sends the next ones back to the head.
 *
 * A pass holds the node's in-flight counter, so a drain of the node waits
 * for it; it starts nothing while the node is drained or closing, except
 * for guest writes that wait for journal space: the drain of the node
 * waits for those, so passes (and reconnects) go on until they are done.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/memalign.h"
#include "block/block_int.h"
#include "block/thread-pool.h"
#include <zstd.h>
#include "velo-int.h"
#include "trace.h"

#define VELO_DRAIN_BATCH        (16u << 20)     /* guest bytes per pass */
#define VELO_DRAIN_MAX_RECORDS  2048            /* the export's in-flight limit */
#define VELO_DRAIN_SLICE        (1u << 20)      /* prepared just before sent */
#define VELO_DRAIN_RETRY_NS     (1 * NANOSECONDS_PER_SECOND)
#define VELO_DRAIN_ZLEVEL       1
#define VELO_DRAIN_QUIET_NS     (10 * SCALE_MS) /* the guest paused writing */

bool velo_drain_enabled(BDRVVeloState *s)
{
    /* A read-only open (qemu-img convert...) leaves the journal alone. */
    return s->jrn && s->write_mode == VELO_WRITE_MODE_WRITE_BACK &&
           !bdrv_is_read_only(s->bs);
}

/* One record of a pass: its frame and its request. */
typedef struct VeloDrainRec {
    VeloJEnt *e;
    uint8_t *rec;               /* the record (header + data), while the
                                   slice is prepared */
    uint8_t *frame;             /* WRITE payload */
    size_t frame_len;
    VeloReq req;
} VeloDrainRec;

typedef struct VeloDrainJob {
    VeloDrainRec *r;
    unsigned n;
    uint64_t epoch;
    bool compress;
} VeloDrainJob;

/* Build the WRITE frames (worker thread: compression takes CPU time). */
static int velo_drain_encode_worker(void *opaque)
{
    VeloDrainJob *job = opaque;
    ZSTD_CCtx *cctx = job->compress ? ZSTD_createCCtx() : NULL;
    unsigned i;

    for (i = 0; i < job->n; i++) {
        VeloDrainRec *d = &job->r[i];
        VeloJEnt *e = d->e;
        VeloWrite w = {
            .epoch = job->epoch, .seq = e->seq, .offset = e->offset,
            .length = e->length,
        };
        const uint8_t *data = d->rec + VELO_JREC_HDR_SIZE;
        size_t bound = cctx ? ZSTD_compressBound(e->length) : e->length;
        unsigned enc = VELO_ENC_RAW;
        size_t plen = e->length;

        d->frame = g_malloc(VELO_WRITE_OVERHEAD + MAX(bound, e->length));
        velo_write_req_encode(d->frame, &w);
        if (e->type == VELO_JREC_ZERO) {
            enc = VELO_ENC_ZERO;
            plen = 0;
        } else {
            size_t z = 0;
            if (cctx) {
                z = ZSTD_compressCCtx(cctx, d->frame + VELO_WRITE_OVERHEAD,
                                      bound, data, e->length,
                                      VELO_DRAIN_ZLEVEL);
            }
            if (cctx && !ZSTD_isError(z) &&
                z < e->length - e->length / 16) {
                enc = VELO_ENC_ZSTD;
                plen = z;
            } else {
                memcpy(d->frame + VELO_WRITE_OVERHEAD, data, e->length);
            }
        }
        velo_chunk_hdr_encode(d->frame + VELO_WRITE_HDR_SIZE, e->offset,
                              e->length, enc, plen);
        d->frame_len = VELO_WRITE_OVERHEAD + plen;
    }
    ZSTD_freeCCtx(cctx);
    return 0;
}

static void velo_drain_set_error(BDRVVeloState *s, Error *err)
{
    VeloJournal *j = s->jrn;

    g_free(j->last_error);
    j->last_error = g_strdup(error_get_pretty(err));
    trace_velo_drain_error(s, j->last_error);
    error_free(err);
}

int coroutine_fn velo_co_origin_state(BDRVVeloState *s, uint64_t *seq,
                                      uint64_t *epoch, Error **errp)
{
    uint8_t req[VELO_FLUSH_SIZE];
    g_autoptr(VeloPayload) payload = NULL;
    VeloFlushReply r;
    const char *why;
    uint32_t len;
    int ret;

    if (!(s->features & VELO_F_WRITE)) {
        error_setg(errp, "velo export '%s' does not accept writes (give it "
                   "writable=on and write-state=FILE)", s->export_name);
        return -EROFS;
    }
    /* The highest epoch: a FLUSH never adopts it, so this only asks. */
    velo_flush_req_encode(req, UINT64_MAX);
    ret = velo_co_request(s, VELO_MSG_FLUSH, req, sizeof(req), &payload,
                          &len, errp);
    if (ret < 0) {
        return ret;
    }
    if (!velo_flush_reply_decode(payload, len, &r, &why)) {
        error_setg(errp, "velo server sent a bad FLUSH_REPLY: %s", why);
        return -EPROTO;
    }
    *seq = r.durable_seq;
    *epoch = r.epoch;
    return 0;
}

/* Wait until *@turn (j->send_turn or j->done_turn) is @ticket's. */
static void coroutine_fn velo_co_drain_wait_turn(VeloJournal *j,
                                                 const uint64_t *turn,
                                                 uint64_t ticket)
{
    while (*turn != ticket) {
        qemu_co_queue_wait(&j->turn_wait, NULL);
    }
}

/* Send the WRITEs of records [@a, @b) of @d (it is this pass's turn). */
static void coroutine_fn velo_co_drain_send_writes(BDRVVeloState *s,
                                                   VeloDrainRec *d, unsigned a,
                                                   unsigned b)
{
    unsigned i;

    for (i = a; i < b; i++) {
        s->jrn->session_sent = true;
        velo_co_req_send(s, &d[i].req, VELO_MSG_WRITE, d[i].frame,
                         d[i].frame_len);
        s->jrn->wire_drained += d[i].frame_len;
        g_free(d[i].frame);     /* sent: the request no longer needs it */
        d[i].frame = NULL;
    }
}

/*
 * The @n WRITEs of @d are sent: send the FLUSH (unless @flush is false, after
 * a failure), hand the send turn on, and wait for every reply.  Returns the
 * durable seq or -errno.
 */
static int64_t coroutine_fn velo_co_drain_finish(BDRVVeloState *s,
                                                 VeloDrainRec *d, unsigned n,
                                                 bool flush_too,
                                                 uint64_t ticket, bool *sent,
                                                 Error **errp)
{
    VeloJournal *j = s->jrn;
    uint8_t freq[VELO_FLUSH_SIZE];
    VeloReq flush;
    VeloFlushReply fr;
    Error *err = NULL;
    const char *why;
    int ret = flush_too ? 0 : -EIO, r;
    unsigned i;

    /*
     * The FLUSH goes right behind them: the server applies what it
     * accepted first, so one round trip covers the whole batch.
     */
    if (flush_too) {
        velo_flush_req_encode(freq, j->sb.epoch);
        velo_co_req_send(s, &flush, VELO_MSG_FLUSH, freq, sizeof(freq));
    }
    if (!flush_too) {
        j->send_from = 0;       /* failed: the passes after this one restart */
    }
    /* The next pass's WRITEs may follow now. */
    *sent = true;
    j->send_turn = ticket + 1;
    qemu_co_queue_restart_all(&j->turn_wait);
    for (i = 0; i < n; i++) {
        VeloWriteReply wr;
        r = velo_co_req_wait(s, &d[i].req, ret < 0 ? NULL : &err);
        if (r == 0 && !velo_write_reply_decode(d[i].req.payload,
                                               d[i].req.hdr.length,
                                               d[i].e->seq, &wr, &why)) {
            error_setg(&err, "velo server sent a bad WRITE_REPLY: %s", why);
            r = -EPROTO;
        }
        velo_payload_free(d[i].req.payload);
        if (r < 0 && ret == 0) {
            ret = r;
            error_propagate_prepend(errp, err, "record %" PRIu64 ": ",
                                    d[i].e->seq);
            err = NULL;
        }
        error_free(err);
        err = NULL;
    }
    if (ret < 0) {
        if (flush_too) {
            velo_co_req_wait(s, &flush, NULL);
            velo_payload_free(flush.payload);
        }
        return ret;
    }
    ret = velo_co_req_wait(s, &flush, errp);
    if (ret == 0 && !velo_flush_reply_decode(flush.payload, flush.hdr.length,
                                             &fr, &why)) {
        error_setg(errp, "velo server sent a bad FLUSH_REPLY: %s", why);
        ret = -EPROTO;
    }
    velo_payload_free(flush.payload);
    return ret < 0 ? ret : (int64_t)fr.durable_seq;
}

/*
 * Read back records [@a, @b) of @d (one read for each run of them that lie
 * back to back in the ring), checking their CRCs; store the extents of
 * theirs that are still journal resident in the cache file (a record
 * leaves the journal only once the cache file has it; consecutive extents
 * in one write); and build their WRITE frames in a worker.  The record
 * buffers are freed once the frames are built.
 */
static int coroutine_fn velo_co_drain_prepare(BDRVVeloState *s,
                                              VeloDrainRec *d, unsigned a,
                                              unsigned b, uint64_t epoch,
                                              bool compress, Error **errp)
{
    VeloJournal *j = s->jrn;
    VeloDrainJob job = { .r = d + a, .n = b - a, .epoch = epoch,
                         .compress = compress };
    g_autofree VeloJEnt **ents = g_new(VeloJEnt *, b - a);
    g_autofree uint8_t **recs = g_new(uint8_t *, b - a);
    g_autoptr(GPtrArray) bufs = g_ptr_array_new_with_free_func(qemu_vfree);
    unsigned i, k, m;
    int ret = 0;

    for (i = a; i < b && ret == 0; i = k) {
        uint64_t span = d[i].e->size;
        uint8_t *buf;

        for (k = i + 1; k < b &&
             d[k].e->off == d[k - 1].e->off + d[k - 1].e->size; k++) {
            span += d[k].e->size;
        }
        buf = qemu_blockalign(j->child->bs, span);
        g_ptr_array_add(bufs, buf);
        ret = bdrv_co_pread(j->child, d[i].e->off, span, buf, 0);
        for (m = i, span = 0; m < k; span += d[m].e->size, m++) {
            d[m].rec = buf + span;
            if (ret == 0 && !velo_journal_rec_ok(s, d[m].e, d[m].rec)) {
                ret = -EILSEQ;
            }
        }
    }
    if (ret == -EILSEQ) {
        error_setg(errp, "journal records %" PRIu64 "..%" PRIu64 " read back "
                   "from node '%s' fail their checksum", d[a].e->seq,
                   d[b - 1].e->seq, bdrv_get_node_name(j->child->bs));
        goto out;
    } else if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot read back journal records %"
                         PRIu64 "..%" PRIu64 " from node '%s'", d[a].e->seq,
                         d[b - 1].e->seq, bdrv_get_node_name(j->child->bs));
        goto out;
    }
    for (i = a; i < b; i++) {
        ents[i - a] = d[i].e;
        recs[i - a] = d[i].rec;
    }
    ret = velo_co_jres_materialize(s, ents, recs, b - a);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot store journal records %" PRIu64
                         "..%" PRIu64 " in cache node '%s'", d[a].e->seq,
                         d[b - 1].e->seq,
                         bdrv_get_node_name(s->cache_child->bs));
        goto out;
    }
    thread_pool_submit_co(aio_get_thread_pool(s->ctx),
                          velo_drain_encode_worker, &job);
out:
    for (i = a; i < b; i++) {
        d[i].rec = NULL;
    }
    return ret;
}

static void coroutine_fn velo_drain_pass(void *opaque)
{
    BDRVVeloState *s = opaque;
    VeloJournal *j = s->jrn;
    g_autofree VeloDrainRec *d = g_new0(VeloDrainRec, VELO_DRAIN_MAX_RECORDS);
    uint64_t epoch = j->sb.epoch, bytes = 0, first_seq = 0;
    bool compress = (s->features & VELO_F_ZSTD) != 0;
    int64_t t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME), durable;
    uint64_t ticket = j->pass_tickets++;
    bool sent = false, aborted = false;
    Error *err = NULL;
    unsigned n = 0, n_sent = 0, i, a, b;
    GList *l;
    int ret = 0;

    if (!j->claimed) {
        /* Opened read-only, reopened read-write: claim before sending. */
        ret = velo_co_journal_claim(s);
        if (ret < 0) {
            error_setg_errno(&err, -ret, "cannot write journal node '%s'",
                             bdrv_get_node_name(j->child->bs));
            goto out;
        }
    }
    epoch = j->sb.epoch;
    if (!j->origin_known) {
        uint64_t oepoch;
        ret = velo_co_origin_state(s, &j->origin_durable, &oepoch, &err);
        /*
         * Epochs are chosen by the writers: one that opened an old journal
         * and one that took the disk over may both have picked this one.
         * Before this session sent a WRITE, the origin showing it means
         * another writer has used it.
         */
        if (ret == 0 && (oepoch > j->sb.epoch ||
                         (oepoch == j->sb.epoch && !j->session_sent))) {
            error_setg(&err, "the origin has seen writer epoch %" PRIu64
                       " from another writer (this journal's is %" PRIu64
                       "): the disk was taken over elsewhere; draining stops",
                       oepoch, j->sb.epoch);
            j->fenced = true;
            ret = -ESTALE;
        }
        if (ret == 0 && !j->session_sent &&
            j->origin_durable >= j->reserved_seq) {
            error_setg(&err, "the origin has applied writes up to seq %"
                       PRIu64 ", beyond this journal's last record (%"
                       PRIu64 "): the journal lost records (a power cut "
                       "before they were flushed?) or another writer used "
                       "the disk; draining stops", j->origin_durable,
                       j->reserved_seq - 1);
            j->fenced = true;
            ret = -EILSEQ;
        }
        if (ret == 0 && j->ents.head &&
            j->origin_durable + 1 < ((VeloJEnt *)j->ents.head->data)->seq) {
            error_setg(&err, "the origin has applied writes up to seq %"
                       PRIu64 " only, but this journal starts at %" PRIu64
                       ": the origin lost writes (was its write-state file "
                       "replaced?); draining stops", j->origin_durable,
                       ((VeloJEnt *)j->ents.head->data)->seq);
            j->fenced = true;
            ret = -EILSEQ;
        }
        j->origin_known = ret == 0;
        if (ret < 0) {
            goto out;
        }
    }

    for (l = j->ents.head; l && n < VELO_DRAIN_MAX_RECORDS &&
         (n == 0 || bytes < VELO_DRAIN_BATCH); l = l->next) {
        VeloJEnt *e = l->data;
        if (e->seq < j->send_from) {
            continue;           /* the pass before this one has it */
        }
        if (!e->jres && !velo_journal_in_cache(j, e->seq)) {
            break;              /* its cache job runs: it kicks us after */
        }
        d[n].e = e;
        bytes += e->length;
        n++;
    }
    if (n == 0) {
        goto out;
    }
    first_seq = d[0].e->seq;
    j->send_from = d[n - 1].e->seq + 1;
    velo_drain_kick(s);         /* the next pass may start reading */

    /*
     * Durable here before the origin gets them: else a power cut could take
     * records that the origin has made durable out of the journal, and the
     * next session would give their seqs to new writes, which the origin
     * would take for resends (DUPLICATE) and drop.
     */
    if (d[n - 1].e->seq > j->flushed_seq) {
        ret = bdrv_co_flush(j->child->bs);
        if (ret < 0) {
            error_setg_errno(&err, -ret, "cannot flush journal node '%s'",
                             bdrv_get_node_name(j->child->bs));
            goto out;
        }
        j->flushed_seq = MAX(j->flushed_seq, d[n - 1].e->seq);
    }

    /*
     * Read back, store and compress the records a slice at a time, each
     * slice right before it is sent: sending waits while the link's queue
     * is full, so the work keeps pace with the link instead of running
     * ahead of it in a burst that competes with the guest.
     */
    for (a = 0; a < n; a = b) {
        uint64_t slice = 0;

        for (b = a; b < n && (b == a || slice < VELO_DRAIN_SLICE); b++) {
            slice += d[b].e->length;
        }
        ret = velo_co_drain_prepare(s, d, a, b, epoch, compress, &err);
        if (ret < 0) {
            break;
        }
        if (a == 0) {
            velo_co_drain_wait_turn(j, &j->send_turn, ticket);
            if (j->send_from <= first_seq) {
                /* The pass before failed: the next starts at the head. */
                aborted = true;
                goto out;
            }
        }
        velo_co_drain_send_writes(s, d, a, b);
        n_sent = b;
    }
    if (n_sent == 0) {
        goto out;               /* nothing sent: the turn is handed on below */
    }
    durable = velo_co_drain_finish(s, d, n_sent, ret == 0, ticket, &sent,
                                   ret < 0 ? NULL : &err);
    if (ret < 0) {
        durable = ret;
    }
    velo_co_drain_wait_turn(j, &j->done_turn, ticket);
    if (durable < 0) {
        ret = durable;
        if (ret == -ESTALE) {
            j->fenced = true;
        }
        goto out;
    }
    if ((uint64_t)durable > j->sb.cache_seq) {
        /*
         * A record leaves the journal only once the cache file holds it
         * durably too: else a crash could leave the origin newer than the
         * cloud view, with nothing left to replay.
         */
        uint64_t done = j->cache_done_seq;
        ret = velo_cache_flush(s);
        if (ret < 0) {
            error_setg_errno(&err, -ret, "cannot flush cache node '%s'",
                             bdrv_get_node_name(s->cache_child->bs));
            goto out;
        }
        j->sb.cache_seq = MAX(j->sb.cache_seq, done);
        durable = MIN((uint64_t)durable, j->sb.cache_seq);
    }
    if ((uint64_t)durable >= first_seq) {
        uint64_t upto = MIN((uint64_t)durable, d[n - 1].e->seq), done = 0;
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        for (i = 0; i < n && d[i].e->seq <= upto; i++) {
            done += d[i].e->length;
        }
        j->bytes_drained += done;
        j->records_drained += upto - first_seq + 1;
        if (now > t0) {
            uint64_t r = done * NANOSECONDS_PER_SECOND / (now - t0);
            j->rate = j->rate ? (j->rate * 3 + r) / 4 : r;
        }
        j->rate_ns = now;
        trace_velo_drain_pass(s, first_seq, upto, done, now - t0);
        /* d[].e point into the queue: done with them before advancing. */
        for (i = 0; i < n; i++) {
            d[i].e = NULL;
        }
        ret = velo_co_journal_advance(s, upto);
        if (ret < 0) {
            error_setg_errno(&err, -ret, "cannot write the superblock of "
                             "journal node '%s'",
                             bdrv_get_node_name(j->child->bs));
        }
    }

out:
    for (i = 0; i < n; i++) {
        g_free(d[i].frame);
    }
    if (ret < 0) {
        j->send_from = 0;       /* the passes after this one: from the head */
    }
    /* Hand the turns on, in order, whatever happened. */
    if (!sent) {
        velo_co_drain_wait_turn(j, &j->send_turn, ticket);
        j->send_turn = ticket + 1;
    }
    velo_co_drain_wait_turn(j, &j->done_turn, ticket);
    j->done_turn = ticket + 1;
    qemu_co_queue_restart_all(&j->turn_wait);
    if (aborted) {
        /* Not an error of its own: the failed pass said what happened. */
    } else if (ret < 0) {
        if (!err) {
            error_setg_errno(&err, -ret, "drain failed");
        }
        velo_drain_set_error(s, err);
        j->origin_known = false;
        j->retry_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                      VELO_DRAIN_RETRY_NS;
    } else {
        g_free(j->last_error);
        j->last_error = NULL;
    }
    j->passes--;
    if (ret == 0 && n) {
        velo_drain_kick(s);
    }
    bdrv_dec_in_flight(s->bs);
}

/*
 * When the next pass may start (0: now).  The drain gives way to guest
 * writes: while the guest keeps writing, the drain's reading, storing and
 * compressing would compete with it for the CPU and the disk, so it holds
 * back until the guest pauses (VELO_DRAIN_QUIET_NS), the oldest record has
 * waited drain-lag-ms, or the journal is half full.  velo-drain (urgent,
 * until the writes made before it are drained) and writers waiting for
 * room hold nothing back.
 */
static int64_t velo_drain_due_ns(BDRVVeloState *s, int64_t now)
{
    VeloJournal *j = s->jrn;
    VeloJEnt *head = g_queue_peek_head(&j->ents);
    int64_t quiet = j->last_write_ns + VELO_DRAIN_QUIET_NS;
    /* Record times are wall clock; a negative age (skew) counts as due. */
    int64_t waited = velo_jrec_now_ns() - (int64_t)head->time_ns;
    int64_t lagged = now + (s->drain_lag_ns - waited);

    if (j->urgent || !s->drain_lag_ns || now >= quiet || waited < 0 ||
        waited >= s->drain_lag_ns ||
        !qemu_co_queue_empty(&j->space_wait) ||
        velo_jring_used(&j->ring) >= (j->ring.end - VELO_JRING_START) / 2) {
        return 0;
    }
    return MIN(quiet, lagged);
}

static void velo_drain_bh(void *opaque)
{
    BDRVVeloState *s = opaque;
    VeloJournal *j = s->jrn;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME), due;

    velo_resync_kick(s);
    j->holding = false;
    if (j->urgent && j->sb.head_seq > j->urgent_seq) {
        j->urgent = false;      /* velo-drain got what it asked for */
    }
    if (!velo_drain_enabled(s) || j->passes >= 2 || j->fenced ||
        (j->passes && j->send_from == 0) ||    /* after a failure: let it end */
        g_queue_is_empty(&j->ents) || !s->connected ||
        (j->passes && ((VeloJEnt *)j->ents.tail->data)->seq < j->send_from) ||
        (s->drained && qemu_co_queue_empty(&j->space_wait)) ||
        s->closing || now < j->retry_ns) {
        return;
    }
    due = velo_drain_due_ns(s, now);
    j->holding = due != 0;
    if (due) {
        /* At most one re-arm per quiet period, not one per write. */
        timer_mod_anticipate(j->lag_timer, due);
        trace_velo_drain_hold(s, due - now);
        return;
    }
    if (!j->passes) {
        j->send_from = 0;       /* nothing in flight: from the head */
    }
    j->passes++;
    bdrv_inc_in_flight(s->bs);
    aio_co_enter(s->ctx, qemu_coroutine_create(velo_drain_pass, s));
}

static void velo_drain_lag_timer_cb(void *opaque)
{
    velo_drain_kick(opaque);
}

void velo_drain_kick(BDRVVeloState *s)
{
    if (s->jrn && s->jrn->bh) {
        qemu_bh_schedule(s->jrn->bh);
    }
}

void velo_drain_attach(BDRVVeloState *s, AioContext *ctx)
{
    if (s->jrn && !s->jrn->bh) {
        s->jrn->bh = aio_bh_new(ctx, velo_drain_bh, s);
        s->jrn->lag_timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS,
                                          velo_drain_lag_timer_cb, s);
        velo_drain_kick(s);
    }
}

void velo_drain_detach(BDRVVeloState *s)
{
    if (s->jrn && s->jrn->bh) {
        qemu_bh_delete(s->jrn->bh);
        s->jrn->bh = NULL;
        timer_free(s->jrn->lag_timer);
        s->jrn->lag_timer = NULL;
    }
}
