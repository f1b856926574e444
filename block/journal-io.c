/*
 * Velo write journal I/O: the journal child node of a velo node (any block
 * node), in the format of journal.h.  Loading (format, scan, epoch bump),
 * appending guest writes, reading records back for the drain, moving the
 * head, and replaying records into the cache file after a crash.
 *
 * Ordering: a guest write is appended here before it goes to the cache
 * file (write.c), and completes once the record is written; the cache file
 * gets it in the background.  So after a kill -9 the cache file never holds
 * a write the journal lacks; records after sb.cache_seq are replayed into
 * it when the node is opened again.  Appends run concurrently: each takes
 * its sequence number and ring space together, without a yield, and a
 * record counts as journaled (j->ents, j->next_seq) only once every record
 * before it is written too.  A guest flush waits for the appends in flight,
 * flushes the journal, then the cache file, then notes cache_seq.
 *
 * Each open of a writable node bumps the epoch (written and flushed before
 * the first append), which fences every earlier writer of the disk at the
 * origin and tells this session's records from stale ones left in the
 * ring: along the ring, epochs never decrease.
 *
 * All of it runs in the node's AioContext.  Superblock writes are
 * serialized by j->sb_lock.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/memalign.h"
#include "block/block_int.h"
#include "velo-int.h"
#include "trace.h"

int64_t velo_jrec_now_ns(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_HOST);
}

/*
 * Write the superblock from j->sb, with a newer generation, into the slot
 * that does not hold the last copy known to be durable (the slot is the
 * generation's parity, so a generation may be skipped): a power cut in
 * the middle of this write, or before a flush, leaves that copy.  Saves
 * without a flush only change what is safe to find older after a power
 * cut (cache_seq, the resync cursor); the head and the epoch move with a
 * flush.
 */
static int coroutine_fn velo_co_jsb_save(BDRVVeloState *s, bool flush)
{
    VeloJournal *j = s->jrn;
    uint8_t *buf = qemu_blockalign(j->child->bs, VELO_JSB_SLOT);
    unsigned slot;
    int ret;

    qemu_co_mutex_lock(&j->sb_lock);
    j->sb.gen++;
    if ((j->sb.gen & 1) == j->sb_durable_slot) {
        j->sb.gen++;
    }
    slot = j->sb.gen & 1;
    memset(buf, 0, VELO_JSB_SLOT);
    velo_jsb_encode(buf, &j->sb);
    ret = bdrv_co_pwrite(j->child, slot * VELO_JSB_SLOT, VELO_JSB_SLOT, buf,
                         0);
    if (ret == 0 && flush) {
        ret = bdrv_co_flush(j->child->bs);
        if (ret == 0) {
            j->sb_durable_slot = slot;
        }
    }
    qemu_co_mutex_unlock(&j->sb_lock);
    qemu_vfree(buf);
    return ret;
}

int coroutine_fn velo_co_journal_save_sb(BDRVVeloState *s)
{
    return velo_co_jsb_save(s, false);
}

int coroutine_fn velo_co_journal_claim(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    int ret = 0;

    qemu_co_mutex_lock(&j->claim_lock);
    if (!j->claimed) {
        j->sb.epoch++;
        ret = velo_co_jsb_save(s, true);
        if (ret < 0) {
            j->sb.epoch--;
        } else {
            j->claimed = true;
            trace_velo_journal_claim(s, j->sb.epoch);
        }
    }
    qemu_co_mutex_unlock(&j->claim_lock);
    return ret;
}

/* Track a live record (appended or found by the scan). */
static void velo_jent_push(VeloJournal *j, const VeloJRec *r, uint64_t off,
                           uint64_t size)
{
    VeloJEnt *e = g_new(VeloJEnt, 1);

    *e = (VeloJEnt) {
        .seq = r->seq, .off = off, .size = size, .time_ns = r->time_ns,
        .type = r->type, .offset = r->offset, .length = r->length,
    };
    g_queue_push_tail(&j->ents, e);
    j->live_bytes += r->length;
}

/* Read the record header at @off into @r; false if it is not one. */
static bool coroutine_fn velo_co_jrec_peek(BDRVVeloState *s, uint64_t off,
                                           uint8_t *buf, VeloJRec *r)
{
    VeloJournal *j = s->jrn;
    const char *why;

    if (bdrv_co_pread(j->child, off, VELO_JREC_ALIGN, buf, 0) < 0) {
        return false;
    }
    return velo_jrec_decode(buf, s->disk_size, r, &why);
}

/*
 * Find the live records: from the head, while each record continues the
 * sequence, its epoch does not go back, and its data checks out.
 */
static int coroutine_fn velo_co_journal_scan(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    uint64_t off = j->sb.head_off, seq = j->sb.head_seq, epoch = 0;
    uint8_t *buf = qemu_blockalign(j->child->bs,
                                   velo_jrec_size(VELO_JREC_MAX_DATA));
    bool wrapped = false;
    VeloJRec r;

    for (;;) {
        uint64_t size;

        if (!velo_co_jrec_peek(s, off, buf, &r) || r.seq != seq ||
            r.epoch < epoch || r.epoch > j->sb.epoch) {
            break;
        }
        if (r.type == VELO_JREC_WRAP) {
            if (off == VELO_JRING_START || wrapped) {
                break;
            }
            wrapped = true;
            off = VELO_JRING_START;
            continue;
        }
        size = velo_jrec_size(velo_jrec_data_len(&r));
        if (off + size > j->ring.end ||
            bdrv_co_pread(j->child, off, size, buf, 0) < 0 ||
            !velo_jrec_check_data(&r, buf + VELO_JREC_HDR_SIZE)) {
            break;
        }
        velo_jent_push(j, &r, off, size);
        epoch = r.epoch;
        seq++;
        off = velo_jring_next(&j->ring, off, size);
        if (off == VELO_JRING_START) {
            wrapped = true;
        }
        if (off == j->sb.head_off) {
            break;              /* went round: cannot happen, but be safe */
        }
    }
    qemu_vfree(buf);
    j->ring.tail = off;
    j->next_seq = seq;
    j->reserved_seq = seq;
    /* Records after cache_seq reach the cache file by replay. */
    j->cache_done_seq = MIN(j->sb.cache_seq, seq - 1);
    return 0;
}

int coroutine_fn velo_co_journal_load(BDRVVeloState *s, bool writable,
                                      uint64_t origin_seq, uint64_t origin_epoch,
                                      Error **errp)
{
    VeloJournal *j = s->jrn;
    BlockDriverState *jbs = j->child->bs;
    uint8_t *buf = qemu_blockalign(jbs, 2 * VELO_JSB_SLOT);
    int64_t len = bdrv_getlength(jbs);
    const char *why = NULL;
    int ret, i, slot;

    if (len < 0) {
        error_setg_errno(errp, -len, "velo: cannot get the size of journal "
                         "node '%s'", bdrv_get_node_name(jbs));
        ret = len;
        goto out;
    }
    ret = bdrv_co_pread(j->child, 0, 2 * VELO_JSB_SLOT, buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "velo: cannot read journal node '%s'",
                         bdrv_get_node_name(jbs));
        goto out;
    }
    slot = velo_jsb_pick(buf, buf + VELO_JSB_SLOT, &j->sb, &why);
    j->sb_durable_slot = slot < 0 ? 1 : slot;
    if (slot < 0) {
        for (i = 0; i < 2 * VELO_JSB_SLOT && !buf[i]; i++) {
            /* all zeros: a new journal */
        }
        if (i < 2 * VELO_JSB_SLOT) {
            error_setg(errp, "velo: journal node '%s' holds something that "
                       "is not a velo journal (%s); give an empty node",
                       bdrv_get_node_name(jbs), why);
            ret = -EINVAL;
            goto out;
        }
        if (!writable) {
            error_setg(errp, "velo: journal node '%s' is empty and the node "
                       "is read-only", bdrv_get_node_name(jbs));
            ret = -EINVAL;
            goto out;
        }
        if (origin_seq == UINT64_MAX) {
            error_setg(errp, "velo: journal node '%s' is new and the server "
                       "is unreachable; a new journal starts from the "
                       "origin's state, so connect first",
                       bdrv_get_node_name(jbs));
            ret = -ENOTCONN;
            goto out;
        }
        if (len < VELO_JOURNAL_MIN_SIZE) {
            error_setg(errp, "velo: journal node '%s' has %" PRId64 " bytes; "
                       "a journal needs at least %u", bdrv_get_node_name(jbs),
                       len, (unsigned)VELO_JOURNAL_MIN_SIZE);
            ret = -EINVAL;
            goto out;
        }
        j->sb = (VeloJournalSb) {
            .disk_size = s->disk_size,
            .ring_end = QEMU_ALIGN_DOWN(len, VELO_JREC_ALIGN),
            .epoch = origin_epoch,  /* bumped below: fences older writers */
            .head_off = VELO_JRING_START,
            .head_seq = origin_seq + 1,
            .cache_seq = origin_seq,
        };
        memcpy(j->sb.disk_id, s->disk_id, sizeof(j->sb.disk_id));
        j->formatted = true;
        trace_velo_journal_format(s, j->sb.ring_end);
    } else if (memcmp(j->sb.disk_id, s->disk_id, sizeof(s->disk_id)) ||
               j->sb.disk_size != s->disk_size) {
        error_setg(errp, "velo: journal node '%s' belongs to another disk",
                   bdrv_get_node_name(jbs));
        ret = -EINVAL;
        goto out;
    } else if (j->sb.ring_end > len) {
        error_setg(errp, "velo: journal node '%s' is shorter (%" PRId64
                   " bytes) than its journal (%" PRIu64 ")",
                   bdrv_get_node_name(jbs), len, j->sb.ring_end);
        ret = -EINVAL;
        goto out;
    }
    j->ring = (VeloJRing) {
        .end = j->sb.ring_end, .head = j->sb.head_off,
        .tail = j->sb.head_off,
    };
    ret = velo_co_journal_scan(s);
    if (ret == 0 && writable && !j->formatted && origin_seq != UINT64_MAX &&
        origin_epoch > j->sb.epoch) {
        /*
         * Another writer has used the disk since this journal's last
         * session: fenced before anything goes out (WRITEs, segments).  The
         * drain's first pass would find it too (velo_drain_pass).
         */
        j->fenced = true;
        j->last_error = g_strdup_printf("the origin has seen writer epoch %"
                                        PRIu64 ", newer than this journal's "
                                        "%" PRIu64 ": the disk was taken "
                                        "over elsewhere; draining stops",
                                        origin_epoch, j->sb.epoch);
        warn_report("velo: journal node '%s': %s", bdrv_get_node_name(jbs),
                    j->last_error);
    }
    if (ret == 0 && writable) {
        ret = velo_co_journal_claim(s);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "velo: cannot write journal node "
                             "'%s'", bdrv_get_node_name(jbs));
        }
    }
    trace_velo_journal_load(s, j->sb.epoch, j->sb.head_seq, j->next_seq,
                            velo_jring_used(&j->ring));
out:
    qemu_vfree(buf);
    return ret;
}

uint64_t velo_journal_used(VeloJournal *j)
{
    return velo_jring_used(&j->ring);
}

/*
 * Move the appends that finished, in sequence order, from j->pending to
 * the live records, and wake flushes waiting for them.  A record after one
 * still being written stays pending: the scan after a crash would stop at
 * the hole, so nothing may count it as in the journal yet.
 */
static void velo_journal_settle(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    VeloJEnt *e;
    bool moved = false;

    while ((e = g_queue_peek_head(&j->pending)) && e->written) {
        g_queue_pop_head(&j->pending);
        g_queue_push_tail(&j->ents, e);
        j->live_bytes += e->length;
        j->next_seq = e->seq + 1;
        moved = true;
    }
    if (moved) {
        qemu_co_queue_restart_all(&j->append_wait);
        if (j->passes < 2) {
            velo_drain_kick(s);     /* else a pass ending kicks it */
        }
    }
}

void velo_journal_cache_done(VeloJournal *j, uint64_t seq)
{
    uint64_t next;

    if (seq <= j->cache_done_seq) {
        return;
    }
    if (seq != j->cache_done_seq + 1) {
        uint64_t *key = g_new(uint64_t, 1);
        *key = seq;
        g_hash_table_add(j->cache_ahead, key);
        return;
    }
    j->cache_done_seq = seq;
    next = seq + 1;
    while (g_hash_table_remove(j->cache_ahead, &next)) {
        j->cache_done_seq = next++;
    }
}

bool velo_journal_in_cache(VeloJournal *j, uint64_t seq)
{
    return seq <= j->cache_done_seq || g_hash_table_contains(j->cache_ahead,
                                                             &seq);
}

/* Whether a record of @size ring bytes would fit now. */
static bool velo_journal_fits(VeloJournal *j, uint64_t size)
{
    VeloJRing r = j->ring;
    bool wrap;

    return velo_jring_reserve(&r, size, &wrap) != 0;
}

/*
 * Wait (throttled, counted in the stats) until a record of @size ring bytes
 * fits; it still fits when this returns 0, until the caller yields.
 */
static int coroutine_fn velo_co_journal_wait_fit(BDRVVeloState *s,
                                                 uint64_t size)
{
    VeloJournal *j = s->jrn;
    int64_t t0;

    if (velo_journal_fits(j, size) || j->failed) {
        return j->failed ? -EIO : 0;
    }
    t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    j->throttled++;
    trace_velo_journal_throttle(s, velo_jring_used(&j->ring), size);
    velo_drain_kick(s);         /* a held-back drain must not wait now */
    while (!velo_journal_fits(j, size) && !j->failed) {
        qemu_co_queue_wait(&j->space_wait, NULL);
    }
    j->throttle_ns += qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0;
    return j->failed ? -EIO : 0;
}

int coroutine_fn velo_co_journal_wait_room(BDRVVeloState *s, uint16_t type,
                                           uint32_t length)
{
    VeloJRec r = { .type = type, .length = length };

    return velo_co_journal_wait_fit(s, velo_jrec_size(velo_jrec_data_len(&r)));
}

/*
 * Append record @r (its data CRC set): @wq is its whole ring image, @hdr
 * the start of it, where the header is encoded.  See velo_co_journal_append.
 */
static int coroutine_fn velo_co_journal_append_iov(BDRVVeloState *s,
                                                   VeloJRec *r, uint8_t *hdr,
                                                   QEMUIOVector *wq,
                                                   bool nowait,
                                                   VeloJEnt **entp)
{
    VeloJournal *j = s->jrn;
    uint64_t size = wq->size, off, old_tail;
    VeloJEnt *e;
    bool wrap;
    int ret;

    if (j->failed) {
        return -EIO;
    }
    if (!j->claimed) {
        /* Opened read-only, reopened read-write: claim before appending. */
        ret = velo_co_journal_claim(s);
        if (ret < 0) {
            error_report("velo: cannot write the superblock of journal node "
                         "'%s': %s", bdrv_get_node_name(j->child->bs),
                         strerror(-ret));
            return ret;
        }
    }
    /* Throttle: no room until the drain frees some. */
    if (!velo_journal_fits(j, size)) {
        /* With @nowait the caller holds extents busy: it must not wait. */
        ret = nowait ? -EAGAIN : velo_co_journal_wait_fit(s, size);
        if (ret < 0) {
            return ret;
        }
    }
    /* It fits: nothing yielded since the check. */
    old_tail = j->ring.tail;
    off = velo_jring_reserve(&j->ring, size, &wrap);
    assert(off);

    /* The sequence follows the ring: both are taken without a yield. */
    r->epoch = j->sb.epoch;
    r->seq = j->reserved_seq++;
    velo_jrec_encode(hdr, r);
    e = g_new(VeloJEnt, 1);
    *e = (VeloJEnt) {
        .seq = r->seq, .off = off, .size = size, .time_ns = r->time_ns,
        .type = r->type, .offset = r->offset, .length = r->length,
    };
    g_queue_push_tail(&j->pending, e);

    if (wrap) {
        uint8_t *w = qemu_blockalign(j->child->bs, VELO_JREC_ALIGN);
        VeloJRec wr = {
            .type = VELO_JREC_WRAP, .epoch = r->epoch, .seq = r->seq,
            .time_ns = r->time_ns,
        };
        memset(w, 0, VELO_JREC_ALIGN);
        velo_jrec_encode(w, &wr);
        ret = bdrv_co_pwrite(j->child, old_tail, VELO_JREC_ALIGN, w, 0);
        qemu_vfree(w);
        if (ret < 0) {
            goto fail;
        }
    }
    ret = bdrv_co_pwritev(j->child, off, size, wq, 0);
    if (ret < 0) {
        goto fail;
    }
    j->bytes_appended += r->length;
    trace_velo_journal_append(s, r->seq, r->offset, r->length, off);
    e->written = true;
    velo_journal_settle(s);
    if (entp) {
        *entp = e;
    }
    return 0;

fail:
    /*
     * The ring no longer tells where the next record goes: stop here.  The
     * record stays pending, so no later one is ever counted as journaled.
     */
    j->failed = true;
    qemu_co_queue_restart_all(&j->space_wait);
    qemu_co_queue_restart_all(&j->append_wait);
    error_report("velo: cannot write journal node '%s': %s; guest writes "
                 "fail from now on", bdrv_get_node_name(j->child->bs),
                 strerror(-ret));
    return ret;
}

int coroutine_fn velo_co_journal_append(BDRVVeloState *s, uint16_t type,
                                        uint64_t offset, uint32_t length,
                                        QEMUIOVector *qiov, size_t qoff,
                                        bool nowait, VeloJEnt **entp)
{
    VeloJRec r = {
        .type = type, .offset = offset, .length = length,
        .time_ns = velo_jrec_now_ns(),
    };
    uint32_t dlen = velo_jrec_data_len(&r);
    uint64_t size = velo_jrec_size(dlen);
    static const uint8_t pad[VELO_JREC_ALIGN];
    QEMUIOVector wq;
    uint8_t *buf;
    int ret;

    /* Header, the guest's data where it is, zeros up to the alignment. */
    buf = qemu_blockalign(s->jrn->child->bs, VELO_JREC_HDR_SIZE);
    qemu_iovec_init(&wq, (qiov ? qiov->niov : 0) + 2);
    qemu_iovec_add(&wq, buf, VELO_JREC_HDR_SIZE);
    if (dlen) {
        QEMUIOVector data;

        qemu_iovec_init_slice(&data, qiov, qoff, dlen);
        r.data_crc = velo_qiov_crc(&data);
        qemu_iovec_concat(&wq, &data, 0, dlen);
        qemu_iovec_destroy(&data);
    }
    if (size > VELO_JREC_HDR_SIZE + dlen) {
        qemu_iovec_add(&wq, (void *)pad, size - VELO_JREC_HDR_SIZE - dlen);
    }
    ret = velo_co_journal_append_iov(s, &r, buf, &wq, nowait, entp);
    qemu_iovec_destroy(&wq);
    qemu_vfree(buf);
    return ret;
}

/*
 * Record buffers are reused, the one freed longest ago first.  A buffer
 * just written with O_DIRECT was read by the device a moment ago; storing
 * the next record's data into it at once was several times slower than
 * into one that rested (and the allocator hands back the newest free chunk
 * first).  Bounded: at most this many bytes wait for reuse.
 */
#define VELO_JREC_POOL_BYTES    (4u << 20)

typedef struct VeloJRecBuf {
    uint8_t *buf;
    uint64_t size;
} VeloJRecBuf;

uint8_t *velo_journal_rec_new(BDRVVeloState *s, uint32_t length)
{
    VeloJournal *j = s->jrn;
    uint64_t size = velo_jrec_size(length);
    VeloJRecBuf *p = g_queue_peek_head(&j->rec_pool);
    uint8_t *buf;

    if (p && p->size == size &&
        QEMU_PTR_IS_ALIGNED(p->buf, bdrv_opt_mem_align(j->child->bs))) {
        g_queue_pop_head(&j->rec_pool);
        j->rec_pool_bytes -= size;
        buf = p->buf;
        g_free(p);
        return buf;
    }
    return qemu_try_blockalign(j->child->bs, size);
}

void velo_journal_rec_free(BDRVVeloState *s, uint8_t *rec, uint32_t length)
{
    VeloJournal *j = s->jrn;
    uint64_t size = velo_jrec_size(length);
    VeloJRecBuf *p;

    if (size > VELO_JREC_POOL_BYTES / 4) {
        qemu_vfree(rec);
        return;
    }
    p = g_new(VeloJRecBuf, 1);
    *p = (VeloJRecBuf) { .buf = rec, .size = size };
    g_queue_push_tail(&j->rec_pool, p);
    j->rec_pool_bytes += size;
    while (j->rec_pool_bytes > VELO_JREC_POOL_BYTES) {
        p = g_queue_pop_head(&j->rec_pool);
        j->rec_pool_bytes -= p->size;
        qemu_vfree(p->buf);
        g_free(p);
    }
}

int coroutine_fn velo_co_journal_append_rec(BDRVVeloState *s,
                                            uint64_t offset, uint32_t length,
                                            uint8_t *rec, uint32_t data_crc,
                                            bool nowait, VeloJEnt **entp)
{
    VeloJRec r = {
        .type = VELO_JREC_WRITE, .offset = offset, .length = length,
        .time_ns = velo_jrec_now_ns(), .data_crc = data_crc,
    };
    uint64_t size = velo_jrec_size(length);
    QEMUIOVector wq;

    memset(rec + VELO_JREC_HDR_SIZE + length, 0,
           size - VELO_JREC_HDR_SIZE - length);
    /* One buffer: an O_DIRECT journal writes it without a bounce. */
    qemu_iovec_init_buf(&wq, rec, size);
    return velo_co_journal_append_iov(s, &r, rec, &wq, nowait, entp);
}

int coroutine_fn velo_co_journal_wait_journaled(BDRVVeloState *s, uint64_t seq)
{
    VeloJournal *j = s->jrn;

    while (j->next_seq <= seq && !j->failed) {
        qemu_co_queue_wait(&j->append_wait, NULL);
    }
    return j->next_seq <= seq ? -EIO : 0;
}

int coroutine_fn velo_co_journal_wait_appends(BDRVVeloState *s)
{
    return velo_co_journal_wait_journaled(s, s->jrn->reserved_seq - 1);
}

bool velo_journal_rec_ok(BDRVVeloState *s, const VeloJEnt *e,
                         const uint8_t *buf)
{
    const char *why;
    VeloJRec r;

    return velo_jrec_decode(buf, s->disk_size, &r, &why) && r.seq == e->seq &&
           velo_jrec_check_data(&r, buf + VELO_JREC_HDR_SIZE);
}

int coroutine_fn velo_co_journal_read(BDRVVeloState *s, const VeloJEnt *e,
                                      uint8_t *buf)
{
    int ret = bdrv_co_pread(s->jrn->child, e->off, e->size, buf, 0);

    if (ret < 0) {
        return ret;
    }
    return velo_journal_rec_ok(s, e, buf) ? 0 : -EILSEQ;
}

int coroutine_fn velo_co_journal_advance(BDRVVeloState *s, uint64_t upto)
{
    VeloJournal *j = s->jrn;
    uint64_t old_off = j->sb.head_off, old_seq = j->sb.head_seq;
    VeloJEnt *e;
    GList *l;
    int ret;

    for (l = j->ents.head; l && ((VeloJEnt *)l->data)->seq <= upto;
         l = l->next) {
        e = l->data;
        j->sb.head_off = velo_jring_next(&j->ring, e->off, e->size);
        j->sb.head_seq = e->seq + 1;
    }
    if (j->sb.head_seq == old_seq) {
        return 0;
    }
    /*
     * The new head must be durable before its room is reused: else a crash
     * could leave the old head pointing at a new record, and the scan would
     * lose every live record.
     */
    ret = velo_co_jsb_save(s, true);
    if (ret < 0) {
        j->sb.head_off = old_off;
        j->sb.head_seq = old_seq;
        return ret;
    }
    while ((e = g_queue_peek_head(&j->ents)) && e->seq <= upto) {
        g_queue_pop_head(&j->ents);
        j->ring.head = velo_jring_next(&j->ring, e->off, e->size);
        j->live_bytes -= e->length;
        g_free(e);
    }
    qemu_co_queue_restart_all(&j->space_wait);
    return 0;
}

int coroutine_fn velo_co_journal_flush(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    uint64_t done;
    int ret;

    ret = velo_co_journal_wait_appends(s);
    if (ret < 0) {
        return ret;
    }
    done = j->cache_done_seq;
    ret = bdrv_co_flush(j->child->bs);
    if (ret == 0) {
        ret = velo_cache_flush(s);
    }
    if (ret == 0 && done > j->sb.cache_seq) {
        j->sb.cache_seq = done;
        ret = velo_co_jsb_save(s, false);
    }
    return ret;
}

int coroutine_fn velo_co_journal_replay(BDRVVeloState *s, bool writable,
                                        Error **errp)
{
    VeloJournal *j = s->jrn;
    uint8_t *buf = qemu_blockalign(j->child->bs,
                                   velo_jrec_size(VELO_JREC_MAX_DATA));
    uint64_t n = 0;
    GList *l;
    int ret = 0;

    for (l = j->ents.head; l && ret == 0; l = l->next) {
        VeloJEnt *e = l->data;
        QEMUIOVector qiov;

        if (e->seq <= j->sb.cache_seq && !s->cache_created) {
            continue;           /* the cache file has it already */
        }
        ret = velo_co_journal_read(s, e, buf);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "velo: cannot read back record %"
                             PRIu64 " of journal node '%s'", e->seq,
                             bdrv_get_node_name(j->child->bs));
            break;
        }
        qemu_iovec_init_buf(&qiov, buf + VELO_JREC_HDR_SIZE, e->length);
        ret = velo_co_write_cache(s, e->offset, e->length,
                                  e->type == VELO_JREC_WRITE ? &qiov : NULL);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "velo: cannot replay record %"
                             PRIu64 " of journal node '%s' into the cache",
                             e->seq, bdrv_get_node_name(j->child->bs));
        }
        j->cache_done_seq = MAX(j->cache_done_seq, e->seq);
        n++;
    }
    qemu_vfree(buf);
    if (ret == 0 && n) {
        /* A read-only journal keeps its cache_seq: the next open replays. */
        ret = writable ? velo_co_journal_flush(s) : velo_cache_flush(s);
    }
    trace_velo_journal_replay(s, n, ret);
    return ret;
}

void velo_journal_free(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    VeloJRecBuf *p;
    VeloJEnt *e;

    if (!j) {
        return;
    }
    while ((e = g_queue_pop_head(&j->ents))) {
        g_free(e);
    }
    while ((e = g_queue_pop_head(&j->pending))) {
        g_free(e);
    }
    while ((p = g_queue_pop_head(&j->rec_pool))) {
        qemu_vfree(p->buf);
        g_free(p);
    }
    if (j->cache_ahead) {
        g_hash_table_destroy(j->cache_ahead);
    }
    g_free(j->last_error);
    g_free(j->unsynced);
    g_free(j);
    s->jrn = NULL;
}
