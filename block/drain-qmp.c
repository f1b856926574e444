/*
 * Velo QMP command velo-drain: kick a velo node's journal drain and report
 * its progress (qapi/velo.json).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-velo.h"
#include "block/block_int.h"
#include "velo-int.h"

VeloJournalInfo *qmp_velo_drain(const char *node_name, Error **errp)
{
    BlockDriverState *bs = bdrv_find_node(node_name);
    VeloJournalInfo *info = NULL;
    BDRVVeloState *s;
    AioContext *ctx;

    if (!bs) {
        error_setg(errp, "no node named '%s'", node_name);
        return NULL;
    }
    if (!bs->drv || strcmp(bs->drv->format_name, "velo")) {
        error_setg(errp, "node '%s' is not a velo node", node_name);
        return NULL;
    }
    s = bs->opaque;
    ctx = bdrv_get_aio_context(bs);
    aio_context_acquire(ctx);
    if (!s->jrn) {
        error_setg(errp, "velo node '%s' has no journal (open it with "
                   "journal=NODE and write-mode=write-back)", node_name);
    } else if (s->write_mode == VELO_WRITE_MODE_CLOUD_PERSIST) {
        error_setg(errp, "velo node '%s' is in write-mode cloud-persist "
                   "(isolated from the origin); switch it to write-back "
                   "with blockdev-reopen first", node_name);
    } else if (!velo_drain_enabled(s)) {
        error_setg(errp, "velo node '%s' is read-only (write-mode read-only "
                   "or read-only=on): nothing drains; switch it to "
                   "write-back with blockdev-reopen first", node_name);
    } else if (s->jrn->fenced) {
        error_setg(errp, "velo node '%s' can no longer drain: %s", node_name,
                   s->jrn->last_error ? s->jrn->last_error : "fenced");
    } else {
        s->jrn->retry_ns = 0;
        /* The drain holds nothing back until what is written now is out. */
        s->jrn->urgent = true;
        s->jrn->urgent_seq = s->jrn->next_seq - 1;
        velo_drain_kick(s);
        info = velo_journal_info(s);
    }
    aio_context_release(ctx);
    return info;
}
