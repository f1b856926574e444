/*
 * Velo write-back glue: opening the journal child, starting the journal
 * when the node opens (load, fencing epoch, crash replay), its statistics,
 * and the progress the velo-drain command reports.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qmp/qdict.h"
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
    qemu_co_queue_init(&s->jrn->space_wait);
    g_queue_init(&s->jrn->ents);
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
    if (writable) {
        ret = velo_co_journal_replay(s, errp);
    }
    return ret;
}

void velo_journal_stats(BDRVVeloState *s, BlockStatsSpecificVelo *v)
{
    if (s->jrn) {
        v->journal = velo_journal_info(s);
    }
}

VeloJournalInfo *velo_journal_info(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    VeloJournalInfo *info = g_new0(VeloJournalInfo, 1);
    VeloJEnt *oldest = g_queue_peek_head(&j->ents);
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

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
    info->throttled = j->throttled;
    info->throttle_ms = j->throttle_ns / SCALE_MS;
    if (j->failed) {
        info->state = VELO_DRAIN_STATE_FAILED;
    } else if (j->fenced) {
        info->state = VELO_DRAIN_STATE_FENCED;
    } else if (s->write_mode == VELO_WRITE_MODE_CLOUD_PERSIST) {
        info->state = VELO_DRAIN_STATE_ISOLATED;
    } else if (!oldest) {
        info->state = VELO_DRAIN_STATE_IDLE;
    } else if (!s->connected || j->last_error) {
        info->state = VELO_DRAIN_STATE_WAITING;
    } else {
        info->state = VELO_DRAIN_STATE_DRAINING;
    }
    if (j->last_error) {
        info->has_last_error = true;
        info->last_error = g_strdup(j->last_error);
    }
    return info;
}
