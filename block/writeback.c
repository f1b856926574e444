/*
 * Velo write-back glue: opening the journal child, starting the journal
 * when the node opens (load, fencing epoch, crash replay), the resync of
 * extents written while isolated (cloud-persist), its statistics, and the
 * progress the velo-drain command reports.
 *
 * Resync: a write in cloud-persist on a node with a journal sets the
 * superblock flag RESYNC (durably, with the next guest flush) and marks
 * its extents.  Once write-back resumes, a coroutine walks the extents from
 * sb.resync_next and appends the current content of each marked one (or,
 * after a reopen, when the marks are gone, of each pinned one) to the
 * journal, under write_lock so no guest write interleaves.  Then the
 * origin converges on the cloud view; until the walk ends it may hold a
 * mix of old and new extents (not crash-consistent).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qmp/qdict.h"
#include "qemu/bitmap.h"
#include "qemu/memalign.h"
#include "block/block_int.h"
#include "velo-int.h"
#include "trace.h"

int velo_journal_open_child(BlockDriverState *bs, QDict *options,
                            Error **errp)
{
    BDRVVeloState *s = bs->opaque;
    BdrvChild *child;

    child = bdrv_open_child(NULL, options, "journal", bs, &child_of_bds,
                            BDRV_CHILD_METADATA, true, errp);
    if (!child) {
        if (*errp) {
            error_prepend(errp, "velo: journal: ");
            return -EINVAL;
        }
        if (s->write_mode == VELO_WRITE_MODE_WRITE_BACK) {
            error_setg(errp, "velo: write-mode=write-back needs a journal "
                       "node (journal=NODE-NAME), where writes wait for "
                       "the origin");
            return -EINVAL;
        }
        return 0;
    }
    s->jrn = g_new0(VeloJournal, 1);
    s->jrn->child = child;
    qemu_co_mutex_init(&s->jrn->sb_lock);
    qemu_co_mutex_init(&s->jrn->claim_lock);
    qemu_co_queue_init(&s->jrn->space_wait);
    qemu_co_queue_init(&s->jrn->append_wait);
    qemu_co_queue_init(&s->jrn->turn_wait);
    g_queue_init(&s->jrn->ents);
    g_queue_init(&s->jrn->pending);
    g_queue_init(&s->jrn->rec_pool);
    s->jrn->cache_ahead = g_hash_table_new_full(g_int64_hash, g_int64_equal,
                                                g_free, NULL);
    return 0;
}

int coroutine_fn velo_co_journal_start(BDRVVeloState *s, Error **errp)
{
    VeloJournal *j = s->jrn;
    bool writable = s->bs->open_flags & BDRV_O_RDWR;
    uint64_t oseq = UINT64_MAX, oepoch = 0;     /* unknown */
    Error *err = NULL;
    int ret;

    if (s->connected && (s->features & VELO_F_WRITE)) {
        ret = velo_co_origin_state(s, &oseq, &oepoch, &err);
        if (ret < 0) {
            error_propagate_prepend(errp, err, "velo: cannot ask the origin "
                                    "for its journal state: ");
            return ret;
        }
        j->origin_durable = oseq;
    } else if (s->connected && s->write_mode == VELO_WRITE_MODE_WRITE_BACK) {
        error_setg(errp, "velo: write-mode=write-back, but export '%s' does "
                   "not accept writes (start it with writable=on and "
                   "write-state=FILE)", s->export_name);
        return -EROFS;
    }
    ret = velo_co_journal_load(s, writable, oseq, oepoch, errp);
    if (ret < 0) {
        return ret;
    }
    if (s->jseg.store) {
        /* A new journal: on another host, this recovers the lost one. */
        ret = velo_co_jseg_recover(s, j->formatted, errp);
        if (ret < 0) {
            return ret;
        }
    }
    /* Even read-only: the cache (always writable) must show every record. */
    return velo_co_journal_replay(s, writable, errp);
}

void velo_journal_stats(BDRVVeloState *s, BlockStatsSpecificVelo *v)
{
    if (s->jrn) {
        v->has_journal = true;
        v->journal = velo_journal_info(s);
    }
}

VeloJournalInfo *velo_journal_info(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    VeloJournalInfo *info = g_new0(VeloJournalInfo, 1);
    VeloJEnt *oldest = g_queue_peek_head(&j->ents);
    int64_t now = velo_jrec_now_ns();

    info->node_name = g_strdup(bdrv_get_node_name(j->child->bs));
    info->limit = j->ring.end - VELO_JRING_START;
    info->used = velo_jring_used(&j->ring);
    info->records = g_queue_get_length(&j->ents);
    info->bytes_pending = j->live_bytes;
    info->bytes_written = j->bytes_appended;
    info->bytes_drained = j->bytes_drained;
    info->wire_bytes_drained = j->wire_drained;
    info->drain_rate = j->rate;
    info->rpo_ms = oldest && now > (int64_t)oldest->time_ns ?
                   (now - oldest->time_ns) / SCALE_MS : 0;
    info->epoch = j->sb.epoch;
    info->written_seq = j->next_seq - 1;
    info->drained_seq = j->sb.head_seq - 1;
    info->local_only_ms = velo_jseg_local_only_ms(s);
    if (s->jseg.store) {
        info->has_objstore_seq = true;
        info->objstore_seq = MAX(s->jseg.uploaded_seq, j->sb.head_seq - 1);
        info->has_segments_uploaded = true;
        info->segments_uploaded = s->jseg.segments;
        info->has_recovered = true;
        info->recovered = s->jseg.recovered;
        if (s->jseg.last_error) {
            info->has_objstore_error = true;
            info->objstore_error = g_strdup(s->jseg.last_error);
        }
    }
    info->throttled = j->throttled;
    info->throttle_ms = j->throttle_ns / SCALE_MS;
    if (j->failed) {
        info->state = VELO_DRAIN_STATE_FAILED;
    } else if (j->fenced) {
        info->state = VELO_DRAIN_STATE_FENCED;
    } else if (s->write_mode == VELO_WRITE_MODE_CLOUD_PERSIST ||
               !velo_drain_enabled(s)) {
        info->state = VELO_DRAIN_STATE_ISOLATED;    /* (or read-only) */
    } else if (!oldest && !(j->sb.flags & VELO_JSB_F_RESYNC)) {
        /* (A resync still to append cloud-persist writes is not idle.) */
        info->state = VELO_DRAIN_STATE_IDLE;
    } else if (!s->connected || j->last_error) {
        info->state = VELO_DRAIN_STATE_WAITING;
    } else if (j->holding && !j->passes) {
        info->state = VELO_DRAIN_STATE_HOLDING;
    } else {
        info->state = VELO_DRAIN_STATE_DRAINING;
    }
    if (j->last_error) {
        info->has_last_error = true;
        info->last_error = g_strdup(j->last_error);
    }
    return info;
}

/* --- resync after cloud-persist ----------------------------------------- */

#define VELO_RESYNC_SAVE_EVERY  256     /* extents between cursor saves */

int coroutine_fn velo_co_resync_mark(BDRVVeloState *s, int64_t offset,
                                     int64_t bytes)
{
    VeloJournal *j = s->jrn;
    uint64_t first = offset >> s->map->extent_shift;
    uint64_t last = (offset + bytes - 1) >> s->map->extent_shift;
    bool save = false;

    if (!(j->sb.flags & VELO_JSB_F_RESYNC)) {
        j->sb.flags |= VELO_JSB_F_RESYNC;
        j->sb.resync_next = first;
        g_free(j->unsynced);
        j->unsynced = bitmap_new(s->map->n_extents);
        save = true;
    } else if (first < j->sb.resync_next) {
        j->sb.resync_next = first;
        save = true;
    }
    if (j->unsynced) {
        bitmap_set(j->unsynced, first, last - first + 1);
    }
    return save ? velo_co_journal_save_sb(s) : 0;
}

/* Append extent @idx's content to the journal (write_lock held exclusively). */
static int coroutine_fn velo_co_resync_extent(BDRVVeloState *s, uint64_t idx,
                                              uint8_t *buf)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    uint64_t off = idx << s->map->extent_shift;
    QEMUIOVector qiov;
    VeloJEnt *e;
    uint32_t pos;
    int ret;

    velo_co_extent_wait_idle(s, idx);   /* a write-back write finishing */
    ret = velo_co_extent_content(s, idx, buf);
    qemu_iovec_init_buf(&qiov, buf, len);
    for (pos = 0; ret == 0 && pos < len; pos += VELO_JREC_MAX_DATA) {
        ret = velo_co_journal_append(s, VELO_JREC_WRITE, off + pos,
                                     MIN(len - pos, VELO_JREC_MAX_DATA),
                                     &qiov, pos, false, &e);
        if (ret == 0) {
            velo_journal_cache_done(s->jrn, e->seq);    /* it came from there */
        }
    }
    return ret;
}

static void coroutine_fn velo_resync_co(void *opaque)
{
    BDRVVeloState *s = opaque;
    VeloJournal *j = s->jrn;
    uint8_t *buf = qemu_blockalign(NULL, s->extent_size);
    uint64_t idx, n = 0;
    int ret = 0;

    trace_velo_resync(s, j->sb.resync_next, "start");
    while (ret == 0 && velo_drain_enabled(s) && !s->drained &&
           !s->closing && (j->sb.flags & VELO_JSB_F_RESYNC)) {
        qemu_co_rwlock_wrlock(&s->write_lock);
        idx = j->sb.resync_next;
        if (idx >= s->map->n_extents) {
            j->sb.flags &= ~VELO_JSB_F_RESYNC;
            g_free(j->unsynced);
            j->unsynced = NULL;
            ret = velo_co_journal_save_sb(s);
            qemu_co_rwlock_unlock(&s->write_lock);
            trace_velo_resync(s, n, "done");
            break;
        }
        if (velo_extmap_get(s->map, idx) == VELO_EXT_DIRTY &&
            (!j->unsynced || test_bit(idx, j->unsynced))) {
            ret = velo_co_resync_extent(s, idx, buf);
            n++;
        }
        if (ret == 0) {
            if (j->unsynced) {
                clear_bit(idx, j->unsynced);
            }
            j->sb.resync_next = idx + 1;
            if (idx % VELO_RESYNC_SAVE_EVERY == 0) {
                ret = velo_co_journal_save_sb(s);
            }
        }
        qemu_co_rwlock_unlock(&s->write_lock);
    }
    if (ret < 0) {
        g_free(j->last_error);
        j->last_error = g_strdup_printf("resync after cloud-persist failed "
                                        "at extent %" PRIu64 ": %s",
                                        j->sb.resync_next, strerror(-ret));
    }
    qemu_vfree(buf);
    j->resync_running = false;
    bdrv_dec_in_flight(s->bs);
}

void velo_resync_kick(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;

    if (!j || j->resync_running || !velo_drain_enabled(s) || s->drained ||
        s->closing || !(j->sb.flags & VELO_JSB_F_RESYNC) || j->failed) {
        return;
    }
    j->resync_running = true;
    bdrv_inc_in_flight(s->bs);
    aio_co_enter(s->ctx, qemu_coroutine_create(velo_resync_co, s));
}
