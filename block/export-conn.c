/*
 * Velo block export: one client connection, from accept to close.
 *
 * Each connection is driven by one coroutine, the reader:
 *
 *     main loop                    export's AioContext
 *     accept -> HELLO (10 s) ----> HELLO_REPLY -> read frames ----+
 *                |                                   |  MAP/READ  |
 *                | ERROR + close                     +-> request coroutines
 *                v                                   v   (<= 64, reply under
 *     free <------------------------------------ close     send_busy)
 *
 * The reader runs the handshake in the main loop, because until HELLO names
 * an export there is no AioContext to run in; it then takes a reference on
 * the export and moves itself and the channel to the export's AioContext.
 * There it reads request frames and spawns one coroutine per MAP or READ.
 * It stops reading (backpressure) while max-inflight requests or
 * VELO_EXP_BUF_BUDGET bytes of replies are outstanding, and it starts no
 * request while the node is drained (export.c's drain hooks).  On any end
 * it shuts the socket down, waits for its requests, and returns to the main
 * loop to free the client.
 *
 * Nothing touches the block node before HELLO has been validated and named
 * an existing export.  Every frame goes through the proto.c codec.  Frame
 * errors (bad header, wrong length, a non-request type) get ERROR PROTO and
 * close the connection; a well-formed MAP or READ that fails validation gets
 * ERROR INVAL or RANGE and the connection goes on.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "qemu/memalign.h"
#include "qemu/timer.h"
#include "block/aio-wait.h"
#include "block/block_int.h"
#include "sysemu/block-backend.h"
#include <zstd.h>
#include "export-int.h"
#include "tls.h"
#include "trace/trace-block_velo.h"


/*
 * Request coroutines of every client of the process, and the readers that
 * wait for one of VELO_EXP_MAX_REQS_ALL slots (VeloClient *, oldest
 * first, each with slot_wait set).  Clients run in several AioContexts:
 * velo_exp_slots_lock protects the three, and each client's slot_wait and
 * slot_granted, and each export's slot_wakes and (for writing) quiescing.
 *
 * A slot freed in one AioContext wakes a reader of another client, which
 * may be in another.  A wake crossing an export's move to a new context
 * would run the reader in the old one; so while an export is drained (as
 * it is for a move) none of its readers waits in the queue, and its
 * drained_poll waits for the wakes already let go to have run.
 */
static QemuMutex velo_exp_slots_lock;
static unsigned velo_exp_reqs_all;
static GQueue velo_exp_slot_waiters = G_QUEUE_INIT;

static void __attribute__((__constructor__)) velo_exp_slots_init(void)
{
    qemu_mutex_init(&velo_exp_slots_lock);
}

/* True if the process has no slot: @c is queued, its reader must yield. */
static bool velo_client_slot_wait(VeloClient *c)
{
    bool wait;

    qemu_mutex_lock(&velo_exp_slots_lock);
    wait = velo_exp_reqs_all >= VELO_EXP_MAX_REQS_ALL;
    if (wait && c->exp->quiescing) {
        c->parked = VELO_PARK_QUIESCE;  /* drained_end wakes it */
    } else if (wait) {
        c->slot_wait = true;
        c->parked = VELO_PARK_GLOBAL;
        g_queue_push_tail(&velo_exp_slot_waiters, c);
    }
    qemu_mutex_unlock(&velo_exp_slots_lock);
    return wait;
}

/* @c's reader runs again after velo_client_slot_wait(). */
static void velo_client_slot_woken(VeloClient *c)
{
    bool kick = false;

    qemu_mutex_lock(&velo_exp_slots_lock);
    if (c->slot_granted) {
        c->slot_granted = false;
        kick = --c->exp->slot_wakes == 0 && c->exp->quiescing;
    }
    qemu_mutex_unlock(&velo_exp_slots_lock);
    if (kick) {
        aio_wait_kick();        /* a drain waits in velo_exp_slot_wakes() */
    }
}

/*
 * From drained_begin/end, in the main thread with the export's AioContext
 * held: that, not the slots lock, keeps the readers whose parked it sets
 * from running meanwhile (QEMU 7.2's AioContext lock).
 */
void velo_exp_slots_quiesce(VeloExport *exp, bool quiescing)
{
    VeloClient *c;

    qemu_mutex_lock(&velo_exp_slots_lock);
    exp->quiescing = quiescing;
    QLIST_FOREACH(c, &exp->clients, next) {
        if (quiescing && c->slot_wait) {
            c->slot_wait = false;
            c->parked = VELO_PARK_QUIESCE;
            g_queue_remove(&velo_exp_slot_waiters, c);
        }
    }
    qemu_mutex_unlock(&velo_exp_slots_lock);
}

unsigned velo_exp_slot_wakes(VeloExport *exp)
{
    unsigned n;

    qemu_mutex_lock(&velo_exp_slots_lock);
    n = exp->slot_wakes;
    qemu_mutex_unlock(&velo_exp_slots_lock);
    return n;
}

bool velo_client_slot_unqueue(VeloClient *c)
{
    bool was;

    qemu_mutex_lock(&velo_exp_slots_lock);
    was = c->slot_wait;
    if (was) {
        c->slot_wait = false;
        g_queue_remove(&velo_exp_slot_waiters, c);
    }
    qemu_mutex_unlock(&velo_exp_slots_lock);
    return was;
}

/* --- socket I/O ------------------------------------------------------ */

void velo_client_close(VeloClient *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    qio_channel_shutdown(c->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    if (c->exp &&
        (c->parked == VELO_PARK_SLOT || c->parked == VELO_PARK_QUIESCE ||
         (c->parked == VELO_PARK_GLOBAL && velo_client_slot_unqueue(c)))) {
        /* (A reader the slot queue let go is woken already.) */
        c->parked = VELO_PARK_NONE;
        aio_co_schedule(c->exp->common.ctx, c->reader);
    }
}

/*
 * Read exactly @len bytes.  Returns 0, -EPIPE on end-of-file before the
 * first byte, or another negative errno.
 */
static int coroutine_fn velo_co_read(VeloClient *c, void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        struct iovec iov = { .iov_base = buf + done, .iov_len = len - done };
        ssize_t n;

        if (c->closing) {
            return -ESHUTDOWN;
        }
        n = qio_channel_readv(c->ioc, &iov, 1, NULL);
        if (n == QIO_CHANNEL_ERR_BLOCK) {
            c->read_yielding = true;
            qio_channel_yield(c->ioc, G_IO_IN);
            c->read_yielding = false;
            continue;
        }
        if (n <= 0) {
            return n == 0 && done == 0 ? -EPIPE : -EIO;
        }
        done += n;
    }
    return 0;
}

/* Read and drop @len bytes (the payload of a request we refuse). */
static int coroutine_fn velo_co_skip(VeloClient *c, size_t len)
{
    g_autofree uint8_t *buf = g_malloc(MIN(len, 64 * KiB));
    int ret = 0;

    while (len && ret == 0) {
        size_t n = MIN(len, 64 * KiB);
        ret = velo_co_read(c, buf, n);
        len -= n;
    }
    return ret;
}

/* Send one frame (export-int.h). */
int coroutine_fn velo_co_sendv(VeloClient *c, struct iovec *iov,
                               unsigned niov, const bool *background,
                               int64_t *t_start)
{
    bool was_bg = false, bg = false;
    int ret = 0;

    for (;;) {
        bg = background && *background;
        if (!c->send_busy) {
            if (was_bg && c->bg_turn) {
                c->bg_turn = false;     /* woken from send_bg for its turn */
                break;
            }
            if (!c->bg_turn && (!bg || qemu_co_queue_empty(&c->send_fg))) {
                break;
            }
        }
        was_bg = bg;
        qemu_co_queue_wait(bg ? &c->send_bg : &c->send_fg, NULL);
    }
    c->send_busy = true;
    if (t_start) {
        *t_start = get_clock();
    }
    while (niov > 0 && ret == 0) {
        ssize_t n;

        if (c->closing) {
            ret = -ESHUTDOWN;
            break;
        }
        n = qio_channel_writev(c->ioc, iov, MIN(niov, IOV_MAX), NULL);
        if (n == QIO_CHANNEL_ERR_BLOCK) {
            c->write_yielding = qemu_coroutine_self();
            qio_channel_yield(c->ioc, G_IO_OUT);
            c->write_yielding = NULL;
        } else if (n < 0) {
            ret = -EIO;
        } else {
            iov_discard_front(&iov, &niov, n);
        }
    }
    c->send_busy = false;
    if (qemu_co_queue_empty(&c->send_bg)) {
        c->fg_run = 0;
        qemu_co_queue_next(&c->send_fg);
    } else if (qemu_co_queue_empty(&c->send_fg)) {
        qemu_co_queue_next(&c->send_bg);
    } else if (!bg && ++c->fg_run >= VELO_EXP_BG_SHARE - 1) {
        c->fg_run = 0;
        c->bg_turn = true;
        qemu_co_queue_next(&c->send_bg);
    } else {
        qemu_co_queue_next(&c->send_fg);
    }
    if (ret < 0) {
        velo_client_close(c);
    }
    return ret;
}

int coroutine_fn velo_co_send(VeloClient *c, uint16_t type, uint64_t handle,
                              uint32_t status, void *payload, size_t len)
{
    uint8_t hdr[VELO_HDR_SIZE];
    VeloHdr h = {
        .type = type, .handle = handle, .length = len, .status = status,
    };
    struct iovec iov[2] = {
        { .iov_base = hdr, .iov_len = sizeof(hdr) },
        { .iov_base = payload, .iov_len = len },
    };

    velo_hdr_encode(hdr, &h);
    return velo_co_sendv(c, iov, len ? 2 : 1, NULL, NULL);
}

int coroutine_fn G_GNUC_PRINTF(4, 5)
velo_co_error(VeloClient *c, uint64_t handle, VeloStatus status,
              const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    uint8_t buf[2 + VELO_MAX_STRING];
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_velo_export_error(c, handle, velo_status_name(status), msg);
    return velo_co_send(c, VELO_MSG_ERROR, handle, status, buf,
                        velo_error_encode(buf, msg));
}


void velo_client_req_start(VeloClient *c, uint64_t charge, bool *io)
{
    c->nb_requests++;
    c->nb_io++;
    *io = true;
    c->inflight_bytes += charge;
    qemu_mutex_lock(&velo_exp_slots_lock);
    velo_exp_reqs_all++;
    qemu_mutex_unlock(&velo_exp_slots_lock);
}

void velo_client_req_io_end(VeloClient *c, bool *io)
{
    if (*io) {
        *io = false;
        c->nb_io--;
        if (c->exp->quiescing && c->nb_io == 0) {
            aio_wait_kick();
        }
    }
}

void velo_client_req_done(VeloClient *c, uint64_t charge, bool *io)
{
    VeloClient *next;

    velo_client_req_io_end(c, io);
    c->nb_requests--;
    c->inflight_bytes -= charge;
    if (c->parked == VELO_PARK_SLOT ||
        (c->parked == VELO_PARK_EXIT && c->nb_requests == 0)) {
        c->parked = VELO_PARK_NONE;
        aio_co_wake(c->reader);
    }
    /* A slot of the process is free: to the reader that waited longest. */
    qemu_mutex_lock(&velo_exp_slots_lock);
    velo_exp_reqs_all--;
    next = velo_exp_reqs_all < VELO_EXP_MAX_REQS_ALL ?
           g_queue_pop_head(&velo_exp_slot_waiters) : NULL;
    if (next) {
        next->slot_wait = false;
        next->slot_granted = true;
        next->exp->slot_wakes++;
    }
    qemu_mutex_unlock(&velo_exp_slots_lock);
    if (next) {
        aio_co_wake(next->reader);
    }
}

/* --- the connection --------------------------------------------------- */

static void velo_hello_timeout(void *opaque)
{
    VeloClient *c = opaque;

    trace_velo_export_hello_timeout(c);
    velo_client_close(c);
}

/*
 * Attach @c to @exp and move its channel and coroutine to the export's
 * AioContext.  Runs in the main loop.
 */
static void coroutine_fn velo_co_attach(VeloClient *c, VeloExport *exp)
{
    AioContext *ctx = exp->common.ctx;

    timer_free(c->hello_timer);
    c->hello_timer = NULL;

    exp->nclients++;
    aio_context_acquire(ctx);
    blk_exp_ref(&exp->common);
    QLIST_REMOVE(c, next);
    QLIST_INSERT_HEAD(&exp->clients, c, next);
    c->exp = exp;
    qio_channel_attach_aio_context(c->ioc, ctx);
    aio_context_release(ctx);

    /* The export may move while we are on the way. */
    while (qemu_get_current_aio_context() != exp->common.ctx) {
        aio_co_reschedule_self(exp->common.ctx);
    }
}

/*
 * Read and answer HELLO.  Returns NULL when the client is attached to an
 * export, otherwise why the connection must close.
 */
static const char *coroutine_fn velo_co_handshake(VeloClient *c)
{
    g_autofree VeloHello *hello = g_new0(VeloHello, 1);
    g_autofree uint8_t *p = NULL;
    uint8_t hdr[VELO_HDR_SIZE], rep[VELO_HELLO_REPLY_SIZE];
    VeloHelloReply r;
    VeloHdr h = { 0 };
    VeloExport *exp;
    const char *why;
    unsigned version;

    if (velo_co_read(c, hdr, sizeof(hdr)) < 0) {
        return c->closing ? "closed before HELLO (timeout or shutdown)"
                          : "connection lost before HELLO";
    }
    if (!velo_hdr_decode(hdr, VELO_HANDSHAKE_MAX, &h, &why)) {
        velo_co_error(c, h.handle, VELO_E_PROTO, "%s", why);
        return why;
    }
    if (h.type != VELO_MSG_HELLO) {
        velo_co_error(c, h.handle, VELO_E_PROTO, "expected HELLO, got %s",
                      velo_msg_name(h.type));
        return "first frame is not HELLO";
    }
    p = g_malloc(h.length + 1);
    if (velo_co_read(c, p, h.length) < 0) {
        return "connection lost in HELLO";
    }
    if (!velo_hello_decode(p, h.length, hello, &why)) {
        velo_co_error(c, h.handle, VELO_E_PROTO, "%s", why);
        return why;
    }

    version = velo_pick_version(hello->version_min, hello->version_max);
    if (!version) {
        velo_co_error(c, h.handle, VELO_E_VERSION,
                      "no protocol version in common (server speaks %u..%u)",
                      VELO_VERSION_MIN, VELO_VERSION_MAX);
        return "no common protocol version";
    }
    exp = velo_listener_find(c->listener, hello->name);
    if (!exp) {
        velo_co_error(c, h.handle, VELO_E_NOENT, "no export named '%s'",
                      hello->name);
        return "unknown export";
    }
    if (c->busy || exp->nclients >= exp->max_conns) {
        velo_co_error(c, h.handle, VELO_E_BUSY, "too many connections");
        return "too many connections";
    }

    velo_co_attach(c, exp);
    c->features = hello->features & VELO_EXP_FEATURES;
    if (!exp->compress_level) {
        c->features &= ~VELO_F_ZSTD;
    }
    if (!exp->dedup) {
        c->features &= ~VELO_F_HASH;
    }
    if (!exp->writable) {
        c->features &= ~VELO_F_WRITE;
    }
    memcpy(c->store_id, hello->store_id, VELO_STORE_ID_SIZE);
    trace_velo_export_handshake(c, exp->name, version, hello->features);

    r = (VeloHelloReply) {
        .version = version,
        .extent_size = exp->extent_size,
        .features = c->features,
        .disk_size = exp->disk_size,
        .max_payload = VELO_EXP_MAX_PAYLOAD,
        .max_inflight = VELO_EXP_MAX_INFLIGHT,
        .export_flags = exp->writable ? 0 : VELO_EXPORT_READ_ONLY,
    };
    memcpy(r.disk_id, exp->disk_id, VELO_DISK_ID_SIZE);
    velo_hello_reply_encode(rep, &r);
    if (velo_co_send(c, VELO_MSG_HELLO_REPLY, h.handle, VELO_OK, rep,
                     sizeof(rep)) < 0) {
        return "connection lost sending HELLO_REPLY";
    }
    return NULL;
}

/*
 * WRITE or FLUSH: refused without feature WRITE (the payload is skipped),
 * else handed to export-write.c.  Returns why the connection must end, or
 * NULL.
 */
static const char *coroutine_fn velo_co_serve_write(VeloClient *c, VeloHdr *h)
{
    bool flush = h->type == VELO_MSG_FLUSH;
    uint8_t *payload;

    trace_velo_export_request(c, velo_msg_name(h->type), h->handle, 0,
                              h->length);
    if (!(c->features & VELO_F_WRITE)) {
        if (velo_co_skip(c, h->length) < 0) {
            return "connection lost in a request";
        }
        velo_co_error(c, h->handle, c->exp->writable ? VELO_E_NOTSUP
                                                     : VELO_E_PERM,
                      "%s refused: %s", velo_msg_name(h->type),
                      c->exp->writable ? "feature WRITE was not negotiated"
                                       : "the export is read-only");
        return NULL;
    }
    if (flush ? h->length != VELO_FLUSH_SIZE
              : h->length < VELO_WRITE_HDR_SIZE) {
        velo_co_error(c, h->handle, VELO_E_PROTO, "%s payload of %u bytes",
                      velo_msg_name(h->type), h->length);
        return "bad request length";
    }
    payload = g_try_malloc(h->length);
    if (!payload) {
        velo_co_error(c, h->handle, VELO_E_PROTO, "out of memory");
        return "out of memory for a WRITE";
    }
    if (velo_co_read(c, payload, h->length) < 0) {
        g_free(payload);
        return "connection lost in a request";
    }
    while (c->exp->quiescing && !c->closing) {
        c->parked = VELO_PARK_QUIESCE;
        qemu_coroutine_yield();
    }
    if (c->closing) {
        g_free(payload);
        return "closed by the server";
    }
    if (flush) {
        velo_co_flush_start(c, h, payload);
        g_free(payload);
    } else {
        velo_co_write_start(c, h, payload);
    }
    return NULL;
}

/* Serve requests until the connection ends; returns why it ended. */
static const char *coroutine_fn velo_co_serve(VeloClient *c)
{
    uint8_t hdr[VELO_HDR_SIZE], p[16];
    const char *why;

    for (;;) {
        VeloHdr h = { 0 };
        int ret;

        /*
         * Backpressure: read nothing more while the client is at its
         * limit, or the process at its (VELO_EXP_MAX_REQS_ALL).
         */
        for (;;) {
            if (!c->closing &&
                (c->nb_requests >= VELO_EXP_MAX_INFLIGHT ||
                 (c->nb_requests &&
                  c->inflight_bytes >= VELO_EXP_BUF_BUDGET))) {
                c->parked = VELO_PARK_SLOT;
                qemu_coroutine_yield();
            } else if (!c->closing && velo_client_slot_wait(c)) {
                qemu_coroutine_yield();
                velo_client_slot_woken(c);
                c->parked = VELO_PARK_NONE;
            } else {
                break;
            }
        }

        ret = velo_co_read(c, hdr, sizeof(hdr));
        if (ret < 0) {
            return c->closing ? "closed by the server"
                 : ret == -EPIPE ? "client closed the connection"
                 : "connection lost";
        }
        if (!velo_hdr_decode(hdr, VELO_EXP_MAX_PAYLOAD, &h, &why)) {
            velo_co_error(c, h.handle, VELO_E_PROTO, "%s", why);
            return why;
        }

        switch (h.type) {
        case VELO_MSG_MAP:
        case VELO_MSG_READ:
            if (h.length != sizeof(p)) {
                velo_co_error(c, h.handle, VELO_E_PROTO,
                              "%s payload must be 16 bytes",
                              velo_msg_name(h.type));
                return "bad request length";
            }
            if (velo_co_read(c, p, sizeof(p)) < 0) {
                return "connection lost in a request";
            }
            velo_co_start_request(c, &h, p);
            break;
        case VELO_MSG_PING:
        case VELO_MSG_DISCONNECT:
            if (h.length) {
                velo_co_error(c, h.handle, VELO_E_PROTO,
                              "%s carries a payload", velo_msg_name(h.type));
                return "bad request length";
            }
            trace_velo_export_request(c, velo_msg_name(h.type), h.handle,
                                      0, 0);
            if (h.type == VELO_MSG_DISCONNECT) {
                return "client sent DISCONNECT";
            }
            velo_co_send(c, VELO_MSG_PONG, h.handle, VELO_OK, NULL, 0);
            break;
        case VELO_MSG_PROMOTE:
            why = velo_co_promote_req(c, &h);
            if (why) {
                return why;
            }
            break;
        case VELO_MSG_WRITE:
        case VELO_MSG_FLUSH:
            why = velo_co_serve_write(c, &h);
            if (why) {
                return why;
            }
            break;
        default:
            velo_co_error(c, h.handle, VELO_E_PROTO,
                          "%s is not a request", velo_msg_name(h.type));
            return "unexpected frame type";
        }
    }
}

static bool coroutine_fn velo_co_tls_wait(QIOChannel *master,
                                          GIOCondition cond, void *opaque)
{
    VeloClient *c = opaque;

    if (!c->closing) {
        qio_channel_yield(master, cond);
    }
    return !c->closing;
}

/*
 * TLS from the first byte, before anything else is read: no plaintext can
 * be buffered ahead of the session, and nothing reaches an export before
 * the peer is authenticated (tls-authz).  The hello timer bounds it.
 */
static const char *coroutine_fn velo_co_tls(VeloClient *c)
{
    VeloListener *l = c->listener;
    Error *err = NULL;
    QIOChannelTLS *tioc;

    tioc = qio_channel_tls_new_server(c->ioc, l->tlscreds, l->tlsauthz, &err);
    if (!tioc) {
        trace_velo_export_tls_fail(c, error_get_pretty(err));
        error_free(err);
        return "cannot start a TLS session";
    }
    qio_channel_set_name(QIO_CHANNEL(tioc), "velo-export-tls");
    if (velo_tls_handshake(tioc, velo_co_tls_wait, c, &err) < 0) {
        trace_velo_export_tls_fail(c, error_get_pretty(err));
        error_free(err);
        object_unref(OBJECT(tioc));
        return "TLS handshake failed or peer not authorized";
    }
    c->ioc = QIO_CHANNEL(tioc);
    trace_velo_export_tls_ok(c);
    return NULL;
}

/* The reader: owns the client from accept to free. */
static void coroutine_fn velo_client_co(void *opaque)
{
    VeloClient *c = opaque;
    VeloListener *l = c->listener;
    VeloExport *exp;
    const char *reason = NULL;

    if (l->tlscreds) {
        reason = velo_co_tls(c);
    }
    if (!reason) {
        reason = velo_co_handshake(c);
    }
    if (!reason) {
        reason = velo_co_serve(c);
    }
    trace_velo_export_disconnect(c, reason);

    velo_client_close(c);
    while (c->nb_requests) {
        if (c->write_yielding) {
            /*
             * A reply blocked on a client that reads nothing: the shutdown
             * does not wake it on every socket type (AF_UNIX), so do; it
             * runs once we yield, and sees c->closing.
             */
            Coroutine *co = c->write_yielding;

            c->write_yielding = NULL;
            aio_co_wake(co);
        }
        c->parked = VELO_PARK_EXIT;
        qemu_coroutine_yield();
    }
    qio_channel_detach_aio_context(c->ioc);
    aio_co_reschedule_self(qemu_get_aio_context());

    exp = c->exp;
    if (exp) {
        AioContext *ctx = exp->common.ctx;

        exp->nclients--;
        aio_context_acquire(ctx);
        QLIST_REMOVE(c, next);
        blk_exp_unref(&exp->common);
        aio_context_release(ctx);
    } else {
        QLIST_REMOVE(c, next);
    }
    timer_free(c->hello_timer);
    if (c->ioc != QIO_CHANNEL(c->sioc)) {
        object_unref(OBJECT(c->ioc));
    }
    object_unref(OBJECT(c->sioc));
    g_hash_table_destroy(c->bg_reqs);
    ZSTD_freeDCtx(c->dctx);
    g_free(c);

    l->nconns--;
    velo_listener_update(l);
}

/*
 * Keep TCP's queue of unsent replies short (TCP_NOTSENT_LOWAT; the bytes
 * in flight, the congestion window, are left alone): what sits there can
 * no longer be reordered, and TCP's autotuned send buffer can hold seconds
 * of a slow link, so a demand reply (feature PRIO) would wait behind it.
 * Best effort: a kernel without it just queues more.  UNIX sockets (local
 * and the emulated WAN) keep their buffers: shrinking them made no
 * difference there.
 */
static void velo_client_short_queue(QIOChannelSocket *sioc)
{
#ifdef TCP_NOTSENT_LOWAT
    int v = VELO_EXP_UNSENT_MAX;

    if (sioc->localAddr.ss_family == AF_INET ||
        sioc->localAddr.ss_family == AF_INET6) {
        setsockopt(sioc->fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof(v));
    }
#endif
}

void velo_client_new(VeloListener *l, QIOChannelSocket *sioc)
{
    VeloClient *c = g_new0(VeloClient, 1);

    c->listener = l;
    c->busy = l->nconns >= velo_listener_max_conns(l);
    c->sioc = sioc;
    object_ref(OBJECT(sioc));
    c->ioc = QIO_CHANNEL(sioc);
    qio_channel_set_name(c->ioc, "velo-export-client");
    qio_channel_set_blocking(c->ioc, false, NULL);
    qio_channel_set_delay(c->ioc, false);
    velo_client_short_queue(sioc);
    qemu_co_queue_init(&c->send_fg);
    qemu_co_queue_init(&c->send_bg);
    g_queue_init(&c->bg_order);
    c->bg_reqs = g_hash_table_new(g_int64_hash, g_int64_equal);

    l->nconns++;
    QLIST_INSERT_HEAD(&l->pending, c, next);
    trace_velo_export_connect(c, l->key, l->nconns, c->busy);

    c->hello_timer = aio_timer_new(qemu_get_aio_context(), QEMU_CLOCK_REALTIME,
                                   SCALE_MS, velo_hello_timeout, c);
    timer_mod(c->hello_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
              VELO_EXP_HELLO_TIMEOUT_S * 1000);
    velo_listener_update(l);

    c->reader = qemu_coroutine_create(velo_client_co, c);
    aio_co_enter(qemu_get_aio_context(), c->reader);
}
