/*
 * Velo block export: the 'velo' BlockExportDriver, which serves block nodes
 * to velo clients over the WAN protocol of docs/protocol.rst.
 *
 * This file owns the export's life (create, request_shutdown, delete), the
 * listening sockets that exports share by address, and the hooks that keep
 * clients out of the node while it is drained or moves between AioContexts.
 * export-int.h describes the objects; export-conn.c serves one connection.
 *
 * Drain and AioContext changes: drained_begin makes readers start no new
 * request, and drained_poll holds the drain until no request may touch
 * the node (nb_io): replies may still wait to be sent, on a client that
 * reads slowly or not at all.  So when the node changes AioContext,
 * readers and request coroutines waiting to send can be left: on the
 * socket in qio_channel_yield(), in the send queues, or parked (a reader
 * at its limits).  attach re-enters every one of them in the new context,
 * where each checks again and waits anew (QIOChannel and our wait loops
 * allow such spurious wake-ups), so none is later woken in the old one.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "qemu/main-loop.h"
#include "qemu/sockets.h"
#include "block/block_int.h"
#include "qemu/coroutine_int.h"
#include "sysemu/block-backend.h"
#include "export.h"
#include "export-int.h"
#include "tls.h"
#include "authz/base.h"
#include "trace/trace-block_velo.h"

#define VELO_EXP_DEFAULT_EXTENT     (64 * KiB)
#define VELO_EXP_DEFAULT_MAX_CONNS  100

/* --- listeners ------------------------------------------------------- */

static QLIST_HEAD(, VeloListener) velo_listeners =
    QLIST_HEAD_INITIALIZER(velo_listeners);

VeloExport *velo_listener_find(VeloListener *l, const char *name)
{
    VeloExport *exp;

    QLIST_FOREACH(exp, &l->exports, next) {
        if (!strcmp(exp->name, name)) {
            return exp;
        }
    }
    return NULL;
}


static void velo_accept(QIONetListener *qnl, QIOChannelSocket *sioc,
                        gpointer opaque)
{
    velo_client_new(opaque, sioc);
}


uint64_t velo_listener_max_conns(VeloListener *l)
{
    VeloExport *exp;
    uint64_t max = 0;

    QLIST_FOREACH(exp, &l->exports, next) {
        max += exp->max_conns;
    }
    return max;
}

/*
 * Accept while below max-connections plus the BUSY slack (the kernel's
 * backlog holds the rest); with no export left, close the socket and the
 * pending handshakes, and free @l once nothing uses it.
 */
void velo_listener_update(VeloListener *l)
{
    VeloClient *c;

    if (!QLIST_EMPTY(&l->exports)) {
        bool accept = l->nconns < velo_listener_max_conns(l) +
                                  VELO_EXP_BUSY_SLACK;

        qio_net_listener_set_client_func(l->qnl, accept ? velo_accept : NULL,
                                         l, NULL);
        return;
    }
    if (l->qnl) {
        trace_velo_export_unlisten(l->key);
        qio_net_listener_disconnect(l->qnl);
        object_unref(OBJECT(l->qnl));
        l->qnl = NULL;
    }
    QLIST_FOREACH(c, &l->pending, next) {
        velo_client_close(c);
    }
    if (l->nconns == 0) {
        QLIST_REMOVE(l, next);
        if (l->tlscreds) {
            object_unref(OBJECT(l->tlscreds));
        }
        g_free(l->tlsauthz);
        g_free(l->key);
        g_free(l);
    }
}

/*
 * Find the listener for @addr, or open a new one (with no export yet) that
 * speaks TLS with @creds (may be NULL) and authorizes with @authz.  Exports
 * sharing an address share its TLS set-up: the handshake comes before a
 * client names an export.
 */
static VeloListener *velo_listener_get(SocketAddress *addr,
                                       QCryptoTLSCreds *creds,
                                       const char *authz, Error **errp)
{
    g_autofree char *key = socket_uri(addr);
    VeloListener *l;
    QIONetListener *qnl;

    QLIST_FOREACH(l, &velo_listeners, next) {
        if (l->qnl && !strcmp(l->key, key)) {
            if (l->tlscreds != creds || g_strcmp0(l->tlsauthz, authz)) {
                error_setg(errp, "velo export: %s is already served with "
                           "other tls-creds or tls-authz; exports sharing "
                           "an address must use the same ones (or pick "
                           "another address)", key);
                return NULL;
            }
            return l;
        }
    }

    qnl = qio_net_listener_new();
    qio_net_listener_set_name(qnl, "velo-export-listener");
    if (qio_net_listener_open_sync(qnl, addr, SOMAXCONN, errp) < 0) {
        object_unref(OBJECT(qnl));
        return NULL;
    }
    l = g_new0(VeloListener, 1);
    l->key = g_steal_pointer(&key);
    l->qnl = qnl;
    if (creds) {
        object_ref(OBJECT(creds));
        l->tlscreds = creds;
    }
    l->tlsauthz = g_strdup(authz);
    QLIST_INIT(&l->exports);
    QLIST_INIT(&l->pending);
    QLIST_INSERT_HEAD(&velo_listeners, l, next);
    trace_velo_export_listen(l->key);
    return l;
}

/* --- the export ------------------------------------------------------ */

/* Wake what waits in @q in @ctx (a CoQueue wakes in the waiter's old one). */
static void velo_exp_move_queue(CoQueue *q, AioContext *ctx)
{
    Coroutine *co;

    while ((co = QSIMPLEQ_FIRST(&q->entries))) {
        QSIMPLEQ_REMOVE_HEAD(&q->entries, co_queue_next);
        aio_co_schedule(ctx, co);
    }
}

static void velo_exp_attached(AioContext *ctx, void *opaque)
{
    VeloExport *exp = opaque;
    VeloClient *c;

    trace_velo_export_aio_context(exp->name, ctx);
    exp->common.ctx = ctx;
    QLIST_FOREACH(c, &exp->clients, next) {
        qio_channel_attach_aio_context(c->ioc, ctx);
        /* Re-enter coroutines that waited in the old context. */
        if (c->read_yielding) {
            aio_co_schedule(ctx, c->reader);
        }
        if (c->write_yielding) {
            aio_co_schedule(ctx, c->write_yielding);
        }
        velo_exp_move_queue(&c->send_fg, ctx);
        velo_exp_move_queue(&c->send_bg, ctx);
        velo_client_gate_move(c, ctx);
        /*
         * No reader waits in the process's slot queue here, nor has been
         * let go of by it without running yet: the export is drained
         * (velo_exp_slots_quiesce, drained_poll).
         */
        if (c->parked == VELO_PARK_SLOT || c->parked == VELO_PARK_EXIT ||
            (c->parked == VELO_PARK_GLOBAL && velo_client_slot_unqueue(c))) {
            c->parked = VELO_PARK_NONE;
            aio_co_schedule(ctx, c->reader);
        }
    }
}

static void velo_exp_detach(void *opaque)
{
    VeloExport *exp = opaque;
    VeloClient *c;

    QLIST_FOREACH(c, &exp->clients, next) {
        qio_channel_detach_aio_context(c->ioc);
    }
    exp->common.ctx = NULL;
}

static void velo_exp_drained_begin(void *opaque)
{
    VeloExport *exp = opaque;

    velo_exp_slots_quiesce(exp, true);
}

static void velo_exp_drained_end(void *opaque)
{
    VeloExport *exp = opaque;
    VeloClient *c;

    velo_exp_slots_quiesce(exp, false);
    QLIST_FOREACH(c, &exp->clients, next) {
        if (c->parked == VELO_PARK_QUIESCE) {
            c->parked = VELO_PARK_NONE;
            aio_co_schedule(exp->common.ctx, c->reader);
        }
    }
}

/*
 * Drained once no request may still touch the node.  Replies waiting to
 * be sent don't count: a client that reads nothing must not hold up a
 * drain (blockdev-reopen, a job, shutdown) of the whole daemon.
 */
static bool velo_exp_drained_poll(void *opaque)
{
    VeloExport *exp = opaque;
    VeloClient *c;

    QLIST_FOREACH(c, &exp->clients, next) {
        if (c->nb_io) {
            return true;
        }
    }
    /* A reader woken by the slot queue runs in the context it slept in. */
    return velo_exp_slot_wakes(exp) != 0;
}

static const BlockDevOps velo_exp_dev_ops = {
    .drained_begin = velo_exp_drained_begin,
    .drained_end = velo_exp_drained_end,
    .drained_poll = velo_exp_drained_poll,
};

/* SHA-256 of name, file name and size: stable across server restarts. */
static void velo_exp_disk_id(VeloExport *exp, BlockDriverState *bs)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    const char *file = bs->filename[0] ? bs->filename : bdrv_get_node_name(bs);
    uint8_t size_be[8], digest[32];
    gsize len = sizeof(digest);

    stq_be_p(size_be, exp->disk_size);
    g_checksum_update(sum, (const guchar *)exp->name, strlen(exp->name) + 1);
    g_checksum_update(sum, (const guchar *)file, strlen(file) + 1);
    g_checksum_update(sum, size_be, sizeof(size_be));
    g_checksum_get_digest(sum, digest, &len);
    memcpy(exp->disk_id, digest, VELO_DISK_ID_SIZE);
}

static int velo_exp_create(BlockExport *blk_exp, BlockExportOptions *opts,
                           Error **errp)
{
    VeloExport *exp = container_of(blk_exp, VeloExport, common);
    BlockExportOptionsVelo *vo = &opts->u.velo;
    BlockBackend *blk = blk_exp->blk;
    const char *name = vo->has_name ? vo->name : blk_exp->id;
    uint64_t extent = vo->has_extent_size ? vo->extent_size
                                          : VELO_EXP_DEFAULT_EXTENT;
    QCryptoTLSCreds *creds = NULL;
    uint64_t perm, shared;
    VeloListener *l;
    int64_t size;
    int ret;

    if (extent < VELO_MIN_EXTENT || extent > VELO_MAX_EXTENT ||
        !is_power_of_2(extent)) {
        error_setg(errp, "extent-size must be a power of two from 4 KiB "
                   "to 4 MiB");
        return -EINVAL;
    }
    if (!*name || strlen(name) > VELO_MAX_STRING ||
        !g_utf8_validate(name, -1, NULL)) {
        error_setg(errp, "export name must be 1 to %d bytes of UTF-8",
                   VELO_MAX_STRING);
        return -EINVAL;
    }
    if (vo->has_compress_level &&
        (vo->compress_level < 0 || vo->compress_level > 19)) {
        error_setg(errp, "velo export: compress-level must be from 0 (no "
                   "compression) to 19, not %" PRId64, vo->compress_level);
        return -EINVAL;
    }
    if (vo->has_max_connections && vo->max_connections == 0) {
        error_setg(errp, "max-connections must be at least 1");
        return -EINVAL;
    }
    size = blk_getlength(blk);
    if (size < 0) {
        error_setg_errno(errp, -size, "cannot get the size of the node");
        return size;
    }
    if (size > VELO_MAX_DISK_SIZE) {
        error_setg(errp, "node is larger than the protocol allows (2^62)");
        return -EFBIG;
    }

    /* Clients cache the size and the disk id: forbid resizing. */
    blk_get_perm(blk, &perm, &shared);
    ret = blk_set_perm(blk, perm, shared & ~BLK_PERM_RESIZE, errp);
    if (ret < 0) {
        return ret;
    }

    if (vo->has_tls_creds) {
        creds = velo_tls_creds_get(vo->tls_creds,
                                   QCRYPTO_TLS_CREDS_ENDPOINT_SERVER,
                                   "velo export: tls-creds", errp);
        if (!creds) {
            return -EINVAL;
        }
    } else if (vo->has_tls_authz) {
        error_setg(errp, "velo export: tls-authz needs tls-creds");
        return -EINVAL;
    }
    if (vo->has_tls_authz &&
        !object_dynamic_cast(object_resolve_path_component(
                                 object_get_objects_root(), vo->tls_authz),
                             TYPE_QAUTHZ)) {
        error_setg(errp, "velo export: tls-authz: no authz object with id "
                   "'%s' (create it with --object authz-simple,id=%s,"
                   "identity=... or authz-list)", vo->tls_authz,
                   vo->tls_authz);
        if (creds) {
            object_unref(OBJECT(creds));
        }
        return -EINVAL;
    }

    l = velo_listener_get(vo->addr, creds,
                          vo->has_tls_authz ? vo->tls_authz : NULL, errp);
    if (creds) {
        object_unref(OBJECT(creds));    /* the listener holds its own */
    }
    if (!l) {
        return -EADDRNOTAVAIL;
    }
    if (velo_listener_find(l, name)) {
        error_setg(errp, "velo listener %s already has an export named '%s'",
                   l->key, name);
        return -EEXIST;
    }

    exp->name = g_strdup(name);
    exp->extent_size = extent;
    exp->max_conns = vo->has_max_connections ? vo->max_connections
                                             : VELO_EXP_DEFAULT_MAX_CONNS;
    exp->writable = opts->writable;
    exp->compress_level = vo->has_compress_level ? vo->compress_level
                                                 : VELO_EXP_DEFAULT_ZLEVEL;
    exp->dedup = !vo->has_dedup || vo->dedup;
    exp->disk_size = size;
    velo_exp_disk_id(exp, blk_bs(blk));
    QLIST_INIT(&exp->clients);
    exp->wst_fd = -1;
    if (exp->writable) {
        if (!vo->has_write_state) {
            error_setg(errp, "velo export '%s': writable=on needs "
                       "write-state=FILE, where the origin records the "
                       "journal writes it has applied", name);
            ret = -EINVAL;
        } else {
            ret = velo_exp_write_open(exp, vo->write_state, errp);
        }
    } else if (vo->has_write_state) {
        error_setg(errp, "velo export '%s': write-state needs writable=on",
                   name);
        ret = -EINVAL;
    }
    if (ret < 0) {
        velo_exp_write_close(exp);
        g_free(exp->name);
        exp->name = NULL;
        velo_listener_update(l);        /* closes it if it serves no one */
        return ret;
    }

    /* We quiesce ourselves; queued requests would keep drains waiting. */
    blk_set_disable_request_queuing(blk, true);
    blk_add_aio_context_notifier(blk, velo_exp_attached, velo_exp_detach,
                                 exp);
    blk_set_dev_ops(blk, &velo_exp_dev_ops, exp);

    exp->listener = l;
    QLIST_INSERT_HEAD(&l->exports, exp, next);
    velo_listener_update(l);
    return 0;
}

/* Leave the listener: no new client can find the export any more. */
static void velo_exp_unlisten(VeloExport *exp)
{
    VeloListener *l = exp->listener;

    if (l) {
        QLIST_REMOVE(exp, next);
        exp->listener = NULL;
        velo_listener_update(l);
    }
}

static void velo_exp_request_shutdown(BlockExport *blk_exp)
{
    VeloExport *exp = container_of(blk_exp, VeloExport, common);
    VeloClient *c;

    velo_exp_unlisten(exp);
    QLIST_FOREACH(c, &exp->clients, next) {
        velo_client_close(c);
    }
}

static void velo_exp_delete(BlockExport *blk_exp)
{
    VeloExport *exp = container_of(blk_exp, VeloExport, common);
    BlockBackend *blk = blk_exp->blk;

    assert(QLIST_EMPTY(&exp->clients));
    velo_exp_unlisten(exp);
    blk_set_dev_ops(blk, NULL, NULL);
    blk_remove_aio_context_notifier(blk, velo_exp_attached, velo_exp_detach,
                                    exp);
    blk_set_disable_request_queuing(blk, false);
    velo_exp_write_close(exp);
    g_free(exp->name);
}

const BlockExportDriver blk_exp_velo = {
    .type               = BLOCK_EXPORT_TYPE_VELO,
    .instance_size      = sizeof(VeloExport),
    .create             = velo_exp_create,
    .delete             = velo_exp_delete,
    .request_shutdown   = velo_exp_request_shutdown,
};
