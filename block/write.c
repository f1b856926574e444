/*
 * Velo guest writes.  In write-back a write is journaled (journal-io.c) and
 * completes once its records are written there; the new extent contents
 * reach the cache file in the background (a "cache job" per record).  Until
 * a job has stored them its extents stay in s->busy, so readers, later
 * writes of those extents, eviction and the resync walk wait for it, and
 * writes to other extents run concurrently.  In cloud-persist a write goes
 * to the cache file only, one at a time.  Also read-modify-write of partial
 * extents, and the synchronous cache write used by journal replay.
 *
 * Ordering and crash safety: a cache job stores nothing before its record
 * counts as journaled (every earlier record written too: the scan after a
 * crash stops at the first hole), so the cache file never holds a write
 * the journal lacks; the journal keeps a record until cache_done_seq
 * (advanced by finished jobs, in sequence order) and a flush of the cache
 * file cover it, and replays the rest after a crash.  Overlapping writes
 * take their extents busy in ascending order before their records get
 * sequence numbers, so the journal's order and the cache file's agree.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/memalign.h"
#include "qemu/error-report.h"
#include "block/block_int.h"
#include "velo-int.h"
#include "trace.h"

/* Cache-job buffers alive at most; writers wait beyond it. */
#define VELO_WB_MAX_BYTES       (32u << 20)

void coroutine_fn velo_co_extent_wait_idle(BDRVVeloState *s, uint64_t idx)
{
    VeloBusy *b;

    while ((b = g_hash_table_lookup(s->busy, &idx))) {
        b->refcnt++;
        qemu_co_queue_wait(&b->waiters, NULL);
        velo_busy_unref(b);
    }
}

/*
 * Take extents [@first, @first + @n) busy for a write, in ascending order
 * (no two writers wait in a ring), into @busy.
 */
static void coroutine_fn velo_co_busy_take(BDRVVeloState *s, uint64_t first,
                                           uint64_t n, VeloBusy **busy)
{
    uint64_t i;

    for (i = 0; i < n; i++) {
        velo_co_extent_wait_idle(s, first + i);
        busy[i] = velo_busy_new(s, first + i, 1, false);
    }
}

/* Let @busy[0..@n) go, with result @ret for those who waited on them. */
static void coroutine_fn velo_busy_release(BDRVVeloState *s, VeloBusy **busy,
                                           uint64_t n, int ret)
{
    uint64_t i;

    for (i = 0; i < n; i++) {
        busy[i]->ret = ret;
        velo_busy_finish(s, busy[i]);
    }
}

/*
 * Extent @idx now holds a guest write (pinned, DIRTY): its object in the
 * store, if any, is older.
 */
static void velo_extent_dirtied(BDRVVeloState *s, uint64_t idx)
{
    velo_extmap_set(s->map, idx, VELO_EXT_DIRTY);
    velo_tier_forget(s, idx);
}

int coroutine_fn velo_co_extent_content(BDRVVeloState *s, uint64_t idx,
                                        uint8_t *buf)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    Error *err = NULL;
    VeloRamEnt *e;
    int ret;

    for (;;) {
        VeloExtState st = velo_extmap_get(s->map, idx);
        if (st == VELO_EXT_ZERO) {
            memset(buf, 0, len);
            return 0;
        }
        e = velo_ram_lookup(s, idx);
        if (e) {
            memcpy(buf, e->data, len);
            return 0;
        }
        if (st == VELO_EXT_DIRTY && velo_jres_lookup(s, idx)) {
            QEMUIOVector qiov;

            qemu_iovec_init_buf(&qiov, buf, len);
            ret = velo_co_jres_read(s, idx, 0, len, &qiov, 0);
            if (ret != -EAGAIN) {
                return ret;
            }
            continue;
        }
        if (st == VELO_EXT_CACHED || st == VELO_EXT_DIRTY) {
            bool raced;
            ret = velo_cache_read(s, idx, buf, &raced);
            if (ret != -EAGAIN) {
                return ret;
            }
            continue;
        }
        ret = velo_co_fetch_range(s, idx << s->map->extent_shift, len, buf,
                                  NULL, &err);
        if (ret < 0) {
            error_report_err(err);
        }
        return ret;
    }
}

int coroutine_fn velo_co_write_cache(BDRVVeloState *s, int64_t offset,
                                     int64_t bytes, QEMUIOVector *qiov)
{
    uint64_t first = offset >> s->map->extent_shift;
    uint64_t last = (offset + bytes - 1) >> s->map->extent_shift;
    uint8_t *buf = qemu_blockalign(NULL, s->extent_size);
    size_t qoff = 0;
    uint64_t idx;
    int ret = 0;

    for (idx = first; idx <= last && ret == 0; idx++) {
        uint64_t ext_start = idx << s->map->extent_shift;
        uint32_t ext_len = velo_extmap_extent_len(s->map, idx);
        uint64_t lo = MAX((uint64_t)offset, ext_start);
        uint64_t hi = MIN((uint64_t)(offset + bytes), ext_start + ext_len);
        VeloBusy *b;

        velo_co_extent_wait_idle(s, idx);
        b = velo_busy_new(s, idx, 1, false);
        if (hi - lo < ext_len) {
            ret = velo_co_extent_content(s, idx, buf);
        }
        if (ret == 0) {
            if (qiov) {
                qemu_iovec_to_buf(qiov, qoff, buf + (lo - ext_start), hi - lo);
            } else {
                memset(buf + (lo - ext_start), 0, hi - lo);
            }
            ret = velo_cache_store_dirty(s, idx, buf);
        }
        if (ret == 0) {
            velo_extent_dirtied(s, idx);
            velo_jres_drop(s, idx);
            velo_ram_put(s, idx, buf);
        }
        b->ret = ret;
        velo_busy_finish(s, b);
        qoff += hi - lo;
    }
    qemu_vfree(buf);
    return ret;
}

/* --- journal-resident extents ------------------------------------------- */

VeloJEnt *velo_jres_lookup(BDRVVeloState *s, uint64_t idx)
{
    return s->jres ? g_hash_table_lookup(s->jres, &idx) : NULL;
}

void velo_jres_drop(BDRVVeloState *s, uint64_t idx)
{
    VeloJEnt *e = velo_jres_lookup(s, idx);

    if (!e) {
        return;
    }
    g_hash_table_remove(s->jres, &idx);
    if (--e->jres == 0) {
        /* Every extent of the record is in the cache file, or newer. */
        velo_journal_cache_done(s->jrn, e->seq);
    }
}

int coroutine_fn velo_co_jres_read(BDRVVeloState *s, uint64_t idx,
                                   uint32_t in_off, uint32_t len,
                                   QEMUIOVector *qiov, size_t qoff)
{
    VeloJEnt *e = velo_jres_lookup(s, idx);
    uint64_t seq, at;
    QEMUIOVector slice;
    int ret;

    if (!e) {
        return -EAGAIN;
    }
    seq = e->seq;
    at = e->off + VELO_JREC_HDR_SIZE + ((idx << s->map->extent_shift) -
                                         e->offset) + in_off;
    qemu_iovec_init_slice(&slice, qiov, qoff, len);
    ret = bdrv_co_preadv(s->jrn->child, at, len, &slice, 0);
    qemu_iovec_destroy(&slice);
    /*
     * The record's room is reused only after the drain moved the extent to
     * the cache file and dropped it here: if it is still here, the read
     * got the record's data.
     */
    e = velo_jres_lookup(s, idx);
    if (!e || e->seq != seq) {
        return -EAGAIN;
    }
    return ret;
}

/* An extent the drain stores: its index, its record, its data. */
typedef struct VeloJresStore {
    uint64_t idx;
    VeloJEnt *e;
    uint8_t *data;
    VeloBusy *b;
} VeloJresStore;

static gint velo_jres_store_cmp(gconstpointer a, gconstpointer b)
{
    const struct VeloJresStore *x = a, *y = b;

    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int coroutine_fn velo_co_jres_materialize(BDRVVeloState *s, VeloJEnt **ents,
                                          uint8_t **recs, unsigned n)
{
    unsigned shift = s->map->extent_shift;
    g_autoptr(GArray) st = g_array_new(false, false, sizeof(VeloJresStore));
    g_autofree uint8_t **bufs = NULL;
    unsigned i, k, run;
    int ret = 0;

    /* The extents still resident in these records (records in seq order). */
    for (i = 0; i < n; i++) {
        VeloJEnt *e = ents[i];
        uint64_t idx, last = (e->offset + e->length - 1) >> shift;

        for (idx = e->offset >> shift; e->jres && idx <= last; idx++) {
            if (velo_jres_lookup(s, idx) == e) {
                VeloJresStore x = {
                    .idx = idx, .e = e,
                    .data = recs[i] + VELO_JREC_HDR_SIZE +
                            ((idx << shift) - e->offset),
                };
                g_array_append_val(st, x);
            }
        }
    }
    /* Take them busy in ascending order; drop those a newer write took. */
    g_array_sort(st, velo_jres_store_cmp);
    for (k = 0; k < st->len; k++) {
        VeloJresStore *x = &g_array_index(st, VeloJresStore, k);

        velo_co_extent_wait_idle(s, x->idx);
        if (velo_jres_lookup(s, x->idx) == x->e) {
            x->b = velo_busy_new(s, x->idx, 1, false);
        }
    }
    bufs = g_new(uint8_t *, st->len + 1);
    for (k = 0; k < st->len; k += run) {
        VeloJresStore *x = &g_array_index(st, VeloJresStore, k);

        for (run = 0; k + run < st->len; run++) {
            VeloJresStore *y = &g_array_index(st, VeloJresStore, k + run);
            if (!y->b || y->idx != x->idx + run) {
                break;
            }
            bufs[run] = y->data;
        }
        if (run == 0) {
            run = 1;            /* not taken: skip it */
            continue;
        }
        if (ret == 0) {
            ret = velo_cache_store_dirty_run(s, x->idx, run, bufs);
        }
        for (i = 0; i < run; i++) {
            VeloJresStore *y = &g_array_index(st, VeloJresStore, k + i);
            if (ret == 0) {
                velo_jres_drop(s, y->idx);
            }
            y->b->ret = ret;
            velo_busy_finish(s, y->b);
        }
    }
    return ret;
}

/*
 * Before a write that the journal will not hold (cloud-persist): store
 * every journal-resident extent in the cache file.  Else a record still
 * resident for another extent would stay "not in the cache", cache_seq
 * could not pass it, and replay after a crash or reopen would write it
 * over the newer cloud-persist data.  Called with write_lock held
 * exclusively, in a mode where the drain does not run.
 */
static int coroutine_fn velo_co_jres_store_all(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    unsigned left = g_queue_get_length(&j->ents);
    int ret = 0;

    while (ret == 0 && g_hash_table_size(s->jres) && left--) {
        VeloJEnt *e = NULL;
        uint8_t *buf;
        GList *l;

        for (l = j->ents.head; l && !e; l = l->next) {
            if (((VeloJEnt *)l->data)->jres) {
                e = l->data;
            }
        }
        if (!e) {
            break;
        }
        buf = qemu_blockalign(j->child->bs, e->size);
        ret = velo_co_journal_read(s, e, buf);
        if (ret == 0) {
            ret = velo_co_jres_materialize(s, &e, &buf, 1);
        }
        qemu_vfree(buf);
    }
    if (ret == 0 && g_hash_table_size(s->jres)) {
        ret = -EIO;             /* bookkeeping gone wrong: never silently */
    }
    if (ret < 0) {
        error_report("velo: cannot move journal-resident extents into cache "
                     "node '%s' before a cloud-persist write: %s",
                     bdrv_get_node_name(s->cache_child->bs), strerror(-ret));
    }
    return ret;
}

/*
 * A write-back record of whole extents from the guest's buffer (copied
 * once): the journal holds it, and its extents are read from there until
 * the drain moves them to the cache file.
 */
static int coroutine_fn velo_co_wb_whole(BDRVVeloState *s, int64_t offset,
                                         uint32_t n, QEMUIOVector *qiov,
                                         size_t qoff)
{
    unsigned shift = s->map->extent_shift;
    uint64_t first = offset >> shift, cnt = ((n - 1) >> shift) + 1, i;
    g_autofree VeloBusy **busy = g_new(VeloBusy *, cnt);
    uint8_t *rec = velo_journal_rec_new(s, n);
    uint32_t crc;
    VeloJEnt *e;
    int ret;

    if (!rec) {
        return -ENOMEM;
    }
    /*
     * A copy, laid out as the record: its checksum must match what reaches
     * the journal, and a guest may change a buffer while its write is in
     * flight.
     */
    crc = velo_qiov_crc_copy(qiov, qoff, rec + VELO_JREC_HDR_SIZE, n);
    for (;;) {
        velo_co_busy_take(s, first, cnt, busy);
        ret = velo_co_journal_append_rec(s, offset, n, rec, crc, true,
                                         &e);
        if (ret != -EAGAIN) {
            break;
        }
        /*
         * The journal is full: wait for room with no extent held, or the
         * drain could wait for one of them to free it (a deadlock).
         */
        velo_busy_release(s, busy, cnt, 0);
        ret = velo_co_journal_wait_room(s, VELO_JREC_WRITE, n);
        if (ret < 0) {
            velo_journal_rec_free(s, rec, n);
            return ret;
        }
    }
    velo_journal_rec_free(s, rec, n);
    /*
     * Only a journaled record may take the extents over: dropping the older
     * records' claims lets cache_seq pass them, and if a crash then ended
     * the scan at a hole before this one, they would be lost with it.
     */
    if (ret == 0) {
        ret = velo_co_journal_wait_journaled(s, e->seq);
    }
    if (ret == 0) {
        e->jres = cnt;
    }
    for (i = 0; i < cnt && ret == 0; i++) {
        uint64_t idx = first + i, *key = g_new(uint64_t, 1);

        *key = idx;
        velo_jres_drop(s, idx);
        g_hash_table_insert(s->jres, key, e);
        velo_extent_dirtied(s, idx);
        velo_ram_forget(s, idx);
        s->write_gen++;
    }
    velo_busy_release(s, busy, cnt, ret);
    return ret;
}

/* --- write-back --------------------------------------------------------- */

/* One journal record's extents on their way to the cache file. */
typedef struct VeloWbJob {
    BDRVVeloState *s;
    uint64_t seq;               /* the record */
    uint64_t first, n;          /* its extents */
    VeloBusy **busy;            /* one per extent, held until stored */
    uint8_t *buf;               /* n * extent_size: their new contents */
} VeloWbJob;

static void velo_wb_job_free(BDRVVeloState *s, VeloWbJob *job)
{
    qemu_vfree(job->buf);
    g_free(job->busy);
    s->wb_bytes -= job->n * s->extent_size;
    g_free(job);
    qemu_co_queue_restart_all(&s->wb_wait);
}

static void coroutine_fn velo_wb_job_co(void *opaque)
{
    VeloWbJob *job = opaque;
    BDRVVeloState *s = job->s;
    VeloJournal *j = s->jrn;
    uint64_t i;
    int ret;

    /*
     * Not before the record counts as journaled: while an earlier record is
     * still being written, a crash would end the scan at that hole and drop
     * this one, and the cache file must not hold it then.
     */
    ret = velo_co_journal_wait_journaled(s, job->seq);

    for (i = 0; i < job->n; i++) {
        uint64_t idx = job->first + i;
        uint8_t *buf = job->buf + i * s->extent_size;

        if (ret == 0) {
            ret = velo_cache_store_dirty(s, idx, buf);
        }
        if (ret == 0) {
            velo_extent_dirtied(s, idx);
            velo_jres_drop(s, idx);
            velo_ram_update(s, idx, buf);
        }
        job->busy[i]->ret = ret;
        velo_busy_finish(s, job->busy[i]);
    }
    if (ret == 0) {
        velo_journal_cache_done(s->jrn, job->seq);
        velo_drain_kick(s);     /* the drain may take the record now */
    } else if (j->failed && !s->wb_error) {
        s->wb_error = ret;      /* the journal said why when it failed */
    } else if (!s->wb_error) {
        /*
         * The journal holds the write, but the cloud view does not: fail
         * reads and writes rather than serve old data.  Opening the node
         * again replays the journal into the cache.
         */
        s->wb_error = ret;
        error_report("velo: cannot write cache node '%s': %s; the write is "
                     "safe in the journal, but this node fails I/O from now "
                     "on: open it again to replay the journal into the cache",
                     bdrv_get_node_name(s->cache_child->bs), strerror(-ret));
    }
    trace_velo_wb_job(s, job->seq, job->first, job->n, ret);
    s->wb_jobs--;
    velo_wb_job_free(s, job);
    bdrv_dec_in_flight(s->bs);
}

/*
 * Journal one record of a guest write, [@offset, @offset + @n) from @qiov
 * at @qoff (NULL: zeros), and start its cache job.
 */
static int coroutine_fn velo_co_wb_record(BDRVVeloState *s, int64_t offset,
                                          uint32_t n, QEMUIOVector *qiov,
                                          size_t qoff)
{
    unsigned shift = s->map->extent_shift;
    uint64_t first = offset >> shift, last = (offset + n - 1) >> shift;
    uint64_t cnt = last - first + 1, start = first << shift, i;
    QEMUIOVector jq;
    VeloWbJob *job;
    VeloJEnt *e;
    int ret = 0;

    if (qiov && !(offset & (s->extent_size - 1)) &&
        (!(n & (s->extent_size - 1)) || offset + n == s->disk_size)) {
        return velo_co_wb_whole(s, offset, n, qiov, qoff);
    }

    while (s->wb_bytes && s->wb_bytes + cnt * s->extent_size >
           VELO_WB_MAX_BYTES) {
        qemu_co_queue_wait(&s->wb_wait, NULL);
    }
    job = g_new0(VeloWbJob, 1);
    job->s = s;
    job->first = first;
    job->n = cnt;
    job->busy = g_new0(VeloBusy *, cnt);
    s->wb_bytes += cnt * s->extent_size;
    job->buf = qemu_try_blockalign(NULL, cnt * s->extent_size);
    if (!job->buf) {
        velo_wb_job_free(s, job);
        return -ENOMEM;
    }

again:
    velo_co_busy_take(s, first, cnt, job->busy);

    /* The new contents; a partial extent needs the old one first. */
    for (i = 0; i < cnt && ret == 0; i++) {
        uint64_t idx = first + i, ext_start = idx << shift;
        uint32_t ext_len = velo_extmap_extent_len(s->map, idx);
        uint64_t lo = MAX((uint64_t)offset, ext_start);
        uint64_t hi = MIN((uint64_t)offset + n, ext_start + ext_len);
        uint8_t *buf = job->buf + i * s->extent_size;

        if (hi - lo < ext_len) {
            ret = velo_co_extent_content(s, idx, buf);
        }
        if (ret == 0 && qiov) {
            qemu_iovec_to_buf(qiov, qoff + (lo - offset),
                              buf + (lo - ext_start), hi - lo);
        } else if (ret == 0) {
            memset(buf + (lo - ext_start), 0, hi - lo);
        }
    }

    /* The record's data is contiguous in job->buf: extents are. */
    if (ret == 0) {
        qemu_iovec_init_buf(&jq, job->buf + (offset - start), n);
        ret = velo_co_journal_append(s, qiov ? VELO_JREC_WRITE : VELO_JREC_ZERO,
                                     offset, n, &jq, 0, true, &e);
    }
    if (ret == -EAGAIN) {
        /* Full: wait with no extent held (see velo_co_wb_whole). */
        velo_busy_release(s, job->busy, cnt, 0);
        ret = velo_co_journal_wait_room(s, qiov ? VELO_JREC_WRITE :
                                        VELO_JREC_ZERO, n);
        if (ret == 0) {
            goto again;
        }
        velo_wb_job_free(s, job);
        return ret;
    }
    if (ret < 0) {
        velo_busy_release(s, job->busy, cnt, ret);
        velo_wb_job_free(s, job);
        return ret;
    }
    job->seq = e->seq;
    s->wb_jobs++;
    bdrv_inc_in_flight(s->bs);
    aio_co_enter(s->ctx, qemu_coroutine_create(velo_wb_job_co, job));
    return 0;
}

/*
 * Before a write the journal will not hold (cloud-persist): every record
 * must be in the cache file, and the journal must say so durably
 * (sb.cache_seq), or the replay after a crash or reopen would write an
 * older record over the new data.  Cache jobs still running finish first;
 * journal-resident extents go to the cache file; then the cache file is
 * flushed and cache_seq written and flushed.  Costs I/O only on the first
 * write after leaving write-back.  Called with write_lock held exclusively.
 */
static int coroutine_fn velo_co_journal_settle(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    int ret = 0;

    while (s->wb_jobs) {
        qemu_co_queue_wait(&s->wb_wait, NULL);
    }
    if (s->wb_error) {
        return s->wb_error;
    }
    if (g_hash_table_size(s->jres)) {
        ret = velo_co_jres_store_all(s);
    }
    if (ret == 0 && j->cache_done_seq > j->sb.cache_seq) {
        ret = velo_co_journal_flush(s);
        if (ret == 0) {
            ret = bdrv_co_flush(j->child->bs);
        }
        if (ret < 0) {
            error_report("velo: cannot note in journal node '%s' that the "
                         "cache file holds its records: %s; the write is "
                         "refused, so that no replay overwrites it",
                         bdrv_get_node_name(j->child->bs), strerror(-ret));
        }
    }
    return ret;
}

/*
 * Write @qiov (or zeros if NULL) at [offset, offset+bytes).  In write-back
 * the journal gets the write in records of at most VELO_JREC_MAX_DATA
 * bytes (waiting for room while it is full); the write completes when they
 * are journaled.  In cloud-persist it goes to the cache file.
 */
static int coroutine_fn velo_co_write(BDRVVeloState *s, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      BdrvRequestFlags flags)
{
    int64_t pos;
    int ret = 0;

    if (s->write_mode == VELO_WRITE_MODE_READ_ONLY) {
        return -EROFS;
    }
    if (s->wb_error) {
        return -EIO;
    }
    if (s->write_mode != VELO_WRITE_MODE_WRITE_BACK) {
        qemu_co_rwlock_wrlock(&s->write_lock);
        if (s->jrn) {
            ret = velo_co_journal_settle(s);
        }
        if (s->jrn && ret == 0) {
            /* Isolated: the origin will need these extents on resync. */
            ret = velo_co_resync_mark(s, offset, bytes);
        }
        if (ret == 0) {
            ret = velo_co_write_cache(s, offset, bytes, qiov);
        }
        if (ret == 0 && (flags & BDRV_REQ_FUA)) {
            /* With the journal: its superblock's resync mark, too. */
            ret = s->jrn ? velo_co_journal_flush(s) : velo_cache_flush(s);
        }
        qemu_co_rwlock_unlock(&s->write_lock);
        return ret;
    }

    s->jrn->last_write_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    qemu_co_rwlock_rdlock(&s->write_lock);
    for (pos = 0; pos < bytes && ret == 0; pos += VELO_JREC_MAX_DATA) {
        ret = velo_co_wb_record(s, offset + pos,
                                MIN(bytes - pos, VELO_JREC_MAX_DATA), qiov,
                                pos);
    }
    if (ret == 0 && (flags & BDRV_REQ_FUA)) {
        /* Durable once the journal is: the cache file can follow. */
        ret = velo_co_journal_wait_appends(s);
        if (ret == 0) {
            ret = bdrv_co_flush(s->jrn->child->bs);
        }
    }
    qemu_co_rwlock_unlock(&s->write_lock);
    s->jrn->last_write_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    return ret;
}

int coroutine_fn velo_co_pwritev(BlockDriverState *bs, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 BdrvRequestFlags flags)
{
    return velo_co_write(bs->opaque, offset, bytes, qiov, flags);
}

int coroutine_fn velo_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, BdrvRequestFlags flags)
{
    return velo_co_write(bs->opaque, offset, bytes, NULL, flags);
}
