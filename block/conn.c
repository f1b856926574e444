/*
 * Velo driver connection: connect, handshake, send requests, read replies,
 * detect dead links, reconnect and resend.
 *
 * One long-lived coroutine per node, the connection manager (conn_co), owns
 * the socket's read side (the connect itself, TLS included, runs in a thread:
 * conn-thread.c):
 *
 *   +--> connect (in a thread) --> HELLO / HELLO_REPLY --> read replies --+
 *   |        | failed                                         | error     |
 *   +-- back-off sleep <--------------------------------------+-----------+
 *
 * Requests (velo_co_request) are sent by the coroutine that needs them,
 * under send_mutex, and then yield until conn_co hands them the reply.  When
 * the connection drops, every request in flight is woken with -ECONNRESET
 * and resends once reconnected, until reconnect-delay has passed since the
 * drop; all v1 requests are idempotent.  A reply that breaks the protocol
 * fails its own request with -EPROTO (a hostile server can't make us loop)
 * and drops the connection.  Requests themselves, and waiting for a link,
 * are in conn-req.c.
 *
 * A 1 s tick timer bounds the handshake, pings a silent busy connection and
 * then declares it dead (a link cut that leaves TCP open), and wakes
 * waiters so they can check their deadlines.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/error-report.h"
#include "qemu/sockets.h"
#include "bytes.h"
#include "velo-int.h"
#include "conn-int.h"
#include "trace.h"

/* --- framing ---------------------------------------------------------- */

/* Read exactly @len bytes, noting progress for stall detection. */
static int coroutine_fn velo_co_read_full(BDRVVeloState *s, void *buf,
                                          size_t len, Error **errp)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = qio_channel_read(s->ioc, (char *)p, len, errp);
        if (n == QIO_CHANNEL_ERR_BLOCK) {
            /* Parked here, conn_co may be moved to another AioContext. */
            s->conn_in_read = qemu_coroutine_self() == s->conn_co;
            qio_channel_yield(s->ioc, G_IO_IN);
            s->conn_in_read = false;
            continue;
        }
        if (n < 0) {
            return -EIO;
        }
        if (n == 0) {
            error_setg(errp, "%s", s->timeout_reason ? s->timeout_reason :
                       "server closed the connection");
            return -EIO;
        }
        s->last_rx_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        s->ping_sent = false;
        s->stats.bytes_wire += n;
        p += n;
        len -= n;
    }
    return 0;
}

/* The largest reply payload a request allows (conn-int.h). */
uint32_t velo_reply_max(uint16_t type, const uint8_t *req, size_t req_len)
{
    uint32_t err = 2 + VELO_MAX_STRING;

    if (type == VELO_MSG_READ && req_len >= 12) {
        return MAX(err, 2 * velo_get32(req + 8) + 65536);
    }
    return type == VELO_MSG_MAP ? 0 : MAX(err, 64);
}

/*
 * Read one frame; the payload (if any) is returned in *@payload.  With
 * @replies, a reply's length is checked against its request before any
 * memory is taken for it.
 */
static int coroutine_fn velo_co_read_frame(BDRVVeloState *s, uint32_t limit,
                                           bool replies, VeloHdr *h,
                                           uint8_t **payload, Error **errp)
{
    uint8_t hdr[VELO_HDR_SIZE];
    const char *why;
    int ret;

    *payload = NULL;
    ret = velo_co_read_full(s, hdr, sizeof(hdr), errp);
    if (ret < 0) {
        return ret;
    }
    if (!velo_hdr_decode(hdr, limit, h, &why)) {
        error_setg(errp, "protocol error from server: %s", why);
        return -EPROTO;
    }
    if (replies && h->length) {
        VeloReq *req = g_hash_table_lookup(s->reqs, &h->handle);

        if (req && req->max_reply && h->length > req->max_reply) {
            error_setg(errp, "protocol error from server: a %u-byte %s to "
                       "a %s that allows at most %u", h->length,
                       velo_msg_name(h->type), velo_msg_name(req->type),
                       req->max_reply);
            return -EPROTO;
        }
    }
    if (h->length) {
        *payload = velo_payload_try_alloc(h->length);
        if (!*payload) {
            error_setg(errp, "out of memory for a %u-byte frame", h->length);
            return -ENOMEM;
        }
        ret = velo_co_read_full(s, *payload, h->length, errp);
        if (ret < 0) {
            velo_payload_free(*payload);
            *payload = NULL;
            return ret;
        }
    }
    return 0;
}

/* Send one frame (conn-int.h). */
int coroutine_fn velo_conn_co_send(BDRVVeloState *s, uint16_t type,
                                   uint64_t handle, const uint8_t *payload,
                                   size_t len, QIOChannel **used,
                                   Error **errp)
{
    QIOChannel *ioc;
    uint8_t hdr[VELO_HDR_SIZE];
    VeloHdr h = { .type = type, .handle = handle, .length = len };
    struct iovec iov[2] = {
        { .iov_base = hdr, .iov_len = sizeof(hdr) },
        { .iov_base = (void *)payload, .iov_len = len },
    };
    int ret;

    velo_hdr_encode(hdr, &h);
    qemu_co_mutex_lock(&s->send_mutex);
    ioc = s->ioc;
    if (!ioc || (type != VELO_MSG_HELLO && !s->connected)) {
        qemu_co_mutex_unlock(&s->send_mutex);
        error_setg(errp, "not connected");
        return -EIO;
    }
    object_ref(OBJECT(ioc));
    ret = qio_channel_writev_all(ioc, iov, len ? 2 : 1, errp);
    if (ret == 0) {
        s->stats.bytes_wire += sizeof(hdr) + len;
    }
    qemu_co_mutex_unlock(&s->send_mutex);
    if (used) {
        *used = ioc;
    } else {
        object_unref(OBJECT(ioc));
    }
    return ret < 0 ? -EIO : 0;
}

/* --- connection life cycle ---------------------------------------------- */

/* Restart the silence and reply clocks (conn-int.h). */
void velo_conn_clocks_start(BDRVVeloState *s)
{
    s->last_rx_ns = s->last_reply_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

static void velo_set_error(BDRVVeloState *s, Error *err)
{
    g_free(s->last_error);
    s->last_error = g_strdup(err ? error_get_pretty(err) : "unknown error");
    error_free(err);
}

/* Wake every request in flight (conn-int.h). */
void velo_conn_drop(BDRVVeloState *s, uint64_t bad_handle)
{
    GHashTableIter it;
    VeloReq *req;

    trace_velo_conn_drop(s, s->last_error ? s->last_error : "");
    if (s->ioc) {
        /*
         * The reader is not parked on the channel (it is the one calling us,
         * or there is none), but senders may be: they hold their own
         * references and the shutdown makes their writes fail at once.
         */
        qio_channel_shutdown(s->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
        object_unref(OBJECT(s->ioc));
        s->ioc = NULL;
    }
    if (s->connected) {
        s->down_since_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    }
    s->connected = false;
    s->handshaking = false;
    s->timeout_reason = NULL;
    s->inflight = 0;

    g_hash_table_iter_init(&it, s->reqs);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&req)) {
        req->done = true;
        req->ret = req->handle == bad_handle ? -EPROTO : -ECONNRESET;
        g_hash_table_iter_remove(&it);
        if (req->waiting) {
            aio_co_wake(req->co);
        }
    }
    qemu_co_enter_all(&s->slot_wait, NULL);
}

static int coroutine_fn velo_co_handshake(BDRVVeloState *s, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(18 + VELO_MAX_STRING + VELO_STORE_ID_SIZE);
    g_autoptr(VeloPayload) payload = NULL;
    g_autofree VeloHello *hello = g_new0(VeloHello, 1);
    VeloHelloReply r;
    VeloHdr h;
    const char *why;
    size_t len;
    int ret;

    hello->version_min = VELO_VERSION_MIN;
    hello->version_max = VELO_VERSION_MAX;
    hello->features = s->want_features;
    g_strlcpy(hello->name, s->export_name, sizeof(hello->name));
    if (s->cas) {
        memcpy(hello->store_id, velo_cas_id(s->cas), VELO_STORE_ID_SIZE);
    }
    len = velo_hello_encode(buf, hello);
    ret = velo_conn_co_send(s, VELO_MSG_HELLO, 0, buf, len, NULL, errp);
    if (ret >= 0) {
        ret = velo_co_read_frame(s, VELO_HANDSHAKE_MAX, false, &h, &payload,
                                 errp);
    }
    if (ret < 0 && ret != -EPROTO) {
        /* Closed on us: the usual sign of a TLS mismatch or refusal. */
        error_prepend(errp, s->tlscreds ?
                      "no HELLO_REPLY (the server may have refused this "
                      "client's TLS identity: check its tls-authz): " :
                      "no HELLO_REPLY (if the export uses TLS, give "
                      "tls-creds): ");
    }
    if (ret < 0) {
        return ret;
    }
    if (h.type == VELO_MSG_ERROR) {
        g_autofree char *msg = NULL;
        if (!velo_error_decode(payload, h.length, &msg, &why)) {
            error_setg(errp, "protocol error from server: %s", why);
            return -EPROTO;
        }
        error_setg(errp, "server refused export '%s': %s (%s)",
                   s->export_name, msg, velo_status_name(h.status));
        return velo_status_to_errno(h.status) ?: -EIO;
    }
    if (h.type != VELO_MSG_HELLO_REPLY) {
        error_setg(errp, "protocol error from server: expected HELLO_REPLY, "
                   "got %s", velo_msg_name(h.type));
        return -EPROTO;
    }
    if (!velo_hello_reply_decode(payload, h.length, hello->features, &r,
                                 &why)) {
        error_setg(errp, "incompatible server: %s", why);
        return -EPROTO;
    }
    if (s->have_geometry &&
        (r.disk_size != s->disk_size || r.extent_size != s->extent_size ||
         memcmp(r.disk_id, s->disk_id, sizeof(r.disk_id)))) {
        error_setg(errp, "export '%s' is no longer the disk this node opened "
                   "(size or identity changed); reopen the node",
                   s->export_name);
        return -ESTALE;
    }
    s->disk_size = r.disk_size;
    s->extent_size = r.extent_size;
    memcpy(s->disk_id, r.disk_id, sizeof(s->disk_id));
    s->have_geometry = true;
    s->max_payload = r.max_payload;
    s->features = r.features;
    s->max_inflight = MIN(r.max_inflight, s->max_inflight_opt);
    s->srv_max_inflight = r.max_inflight;
    trace_velo_conn_handshake(s, r.version, r.disk_size, r.extent_size,
                              r.max_payload, r.max_inflight);
    return 0;
}

static int coroutine_fn velo_co_connect_once(BDRVVeloState *s, Error **errp)
{
    QIOChannel *ioc;
    int ret;

    trace_velo_conn_attempt(s, s->attempts);
    ioc = velo_co_connect_socket(s, errp);
    if (!ioc) {
        return -ECONNREFUSED;
    }
    if (s->closing) {
        object_unref(OBJECT(ioc));
        error_setg(errp, "node is closing");
        return -ECANCELED;
    }
    qio_channel_set_delay(ioc, false);
    qio_channel_set_blocking(ioc, false, NULL);
    qio_channel_attach_aio_context(ioc, s->ctx);
    s->ioc = ioc;
    s->handshaking = true;
    s->conn_start_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    ret = velo_co_handshake(s, errp);
    s->handshaking = false;
    return ret;
}

/* Dispatch one reply to its request; false means a protocol violation. */
static bool velo_dispatch(BDRVVeloState *s, VeloHdr *h, uint8_t **payload,
                          Error **errp)
{
    static const uint16_t reply_to[VELO_MSG__MAX] = {
        [VELO_MSG_MAP] = VELO_MSG_MAP_REPLY,
        [VELO_MSG_READ] = VELO_MSG_READ_REPLY,
        [VELO_MSG_PING] = VELO_MSG_PONG,
        [VELO_MSG_WRITE] = VELO_MSG_WRITE_REPLY,
        [VELO_MSG_FLUSH] = VELO_MSG_FLUSH_REPLY,
    };
    VeloReq *req = g_hash_table_lookup(s->reqs, &h->handle);

    if (!req) {
        error_setg(errp, "protocol error from server: reply %s to unknown "
                   "handle %" PRIu64, velo_msg_name(h->type), h->handle);
        return false;
    }
    if (h->type != VELO_MSG_ERROR && h->type != reply_to[req->type]) {
        error_setg(errp, "protocol error from server: %s answered with %s",
                   velo_msg_name(req->type), velo_msg_name(h->type));
        return false;
    }
    if (h->type == VELO_MSG_ERROR) {
        const char *why;
        if (!velo_error_decode(*payload, h->length, &req->errmsg, &why)) {
            error_setg(errp, "protocol error from server: %s", why);
            return false;
        }
        req->ret = velo_status_to_errno(h->status);
        if (req->ret == 0) {
            req->ret = -EIO;
        }
    } else {
        req->ret = 0;
    }
    req->hdr = *h;
    req->payload = g_steal_pointer(payload);
    req->done = true;
    s->last_reply_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    g_hash_table_remove(s->reqs, &h->handle);
    s->inflight--;
    qemu_co_enter_next(&s->slot_wait, NULL);
    if (req->waiting) {
        aio_co_wake(req->co);
    }
    return true;
}

static void coroutine_fn velo_conn_entry(void *opaque)
{
    BDRVVeloState *s = opaque;

    while (!s->closing) {
        Error *err = NULL;
        g_autoptr(VeloPayload) payload = NULL;
        VeloHdr h = { 0 };
        int ret;

        if (!s->connected && s->drained && !velo_conn_needed(s)) {
            /* No new connection while drained; velo_conn_drain_end() resumes us. */
            s->conn_parked = true;
            qemu_coroutine_yield();
            s->conn_parked = false;
            continue;
        }
        if (!s->connected) {
            /*
             * While drained we connect only for I/O the drain waits for; it
             * must also wait for this attempt, so that the node does not
             * move to another AioContext in the middle of it.
             */
            bool hold = s->drained > 0;
            s->attempts++;
            s->conn_tries++;
            if (hold) {
                bdrv_inc_in_flight(s->bs);
            }
            ret = velo_co_connect_once(s, &err);
            if (hold) {
                bdrv_dec_in_flight(s->bs);
            }
            if (ret < 0) {
                velo_set_error(s, err);
                velo_conn_drop(s, 0);
                qemu_co_enter_all(&s->conn_wait, NULL);
                if (s->closing) {
                    break;
                }
                if (s->drained && !velo_conn_needed(s)) {
                    continue;       /* park instead of sleeping */
                }
                /* Back off: 0.1 s doubling to 2 s. */
                s->conn_co_sleeping = true;
                qemu_co_sleep_ns_wakeable(&s->conn_sleep, QEMU_CLOCK_REALTIME,
                    MIN((int64_t)100 * SCALE_MS << MIN(s->attempts, 5),
                        2 * NANOSECONDS_PER_SECOND));
                s->conn_co_sleeping = false;
                continue;
            }
            if (s->down_since_ns || s->stats.reconnects || s->attempts > 1) {
                s->stats.reconnects++;
            }
            s->connected = true;
            s->attempts = 0;
            s->down_since_ns = 0;
            velo_conn_clocks_start(s);
            qemu_co_enter_all(&s->conn_wait, NULL);
            qemu_co_enter_all(&s->slot_wait, NULL);
            continue;
        }

        ret = velo_co_read_frame(s, s->max_payload, true, &h, &payload,
                                 &err);
        if (ret == 0 && !velo_dispatch(s, &h, &payload, &err)) {
            ret = -EPROTO;
        }
        if (ret < 0) {
            velo_set_error(s, err);
            velo_conn_drop(s, ret == -EPROTO ? h.handle : 0);
        }
    }
    velo_conn_drop(s, 0);
    s->conn_co = NULL;
    qemu_co_enter_all(&s->conn_wait, NULL);
    aio_wait_kick();
}

/* --- the tick: timeouts and deadlines ----------------------------------- */

static void coroutine_fn velo_ping_entry(void *opaque)
{
    BDRVVeloState *s = opaque;
    g_autoptr(VeloPayload) payload = NULL;
    uint32_t len;

    /* Any reply (or a drop) is fine; silence is what the tick watches. */
    velo_co_request(s, VELO_MSG_PING, NULL, 0, &payload, &len, NULL);
    bdrv_dec_in_flight(s->bs);
}

static void coroutine_fn velo_wake_waiters_entry(void *opaque)
{
    BDRVVeloState *s = opaque;

    /*
     * In coroutine context this only queues the waiters to run after us, so
     * one that waits again lands in the (then empty) queue and is not
     * re-entered in a loop, as qemu_co_enter_all() outside a coroutine
     * would do.
     */
    qemu_co_queue_restart_all(&s->conn_wait);
}

/* Stop waiting for a connect thread that may hang; it cleans up later. */
static void velo_tick(void *opaque)
{
    BDRVVeloState *s = opaque;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    velo_drain_kick(s);         /* retries a failed pass, after reconnects */
    velo_jseg_tick(s);
    if (s->handshaking && now - s->conn_start_ns > VELO_HANDSHAKE_NS) {
        trace_velo_conn_timeout(s, "handshake");
        s->timeout_reason = "no answer to the handshake within 10 s";
        qio_channel_shutdown(s->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    } else if (s->connected && g_hash_table_size(s->reqs)) {
        int64_t quiet = now - s->last_rx_ns;
        if (s->reply_timeout &&
            now - s->last_reply_ns >
            (int64_t)s->reply_timeout * NANOSECONDS_PER_SECOND) {
            /*
             * Alive (it answers PINGs, or trickles) but no request ends:
             * a hung disk on-prem, or a hostile server.  Cut: the requests
             * are sent again, and fail once reconnect-delay has passed.
             */
            trace_velo_conn_timeout(s, "no reply");
            s->timeout_reason = "no request answered within reply-timeout "
                                "(the server's disk hung?)";
            qio_channel_shutdown(s->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
        } else if (quiet > VELO_STALL_DEAD_NS) {
            trace_velo_conn_timeout(s, "no data from server");
            s->timeout_reason = "no data from the server for 10 s (link down?)";
            qio_channel_shutdown(s->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
        } else if (quiet > VELO_STALL_PING_NS && !s->ping_sent) {
            s->ping_sent = true;
            bdrv_inc_in_flight(s->bs);
            aio_co_enter(s->ctx, qemu_coroutine_create(velo_ping_entry, s));
        }
    }
    /* Let waiters re-check their deadlines. */
    if (!qemu_co_queue_empty(&s->conn_wait)) {
        aio_co_enter(s->ctx, qemu_coroutine_create(velo_wake_waiters_entry, s));
    }
    timer_mod(s->tick, now + NANOSECONDS_PER_SECOND);
}

void velo_conn_start(BDRVVeloState *s)
{
    s->reqs = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, NULL);
    qemu_co_mutex_init(&s->send_mutex);
    qemu_co_queue_init(&s->slot_wait);
    qemu_co_queue_init(&s->conn_wait);
    s->next_handle = 1;
    s->max_inflight = s->max_inflight_opt;
    s->tick = aio_timer_new(s->ctx, QEMU_CLOCK_REALTIME, SCALE_NS, velo_tick, s);
    timer_mod(s->tick, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
              NANOSECONDS_PER_SECOND);
    s->conn_co = qemu_coroutine_create(velo_conn_entry, s);
    aio_co_enter(s->ctx, s->conn_co);
}

void velo_conn_stop(BDRVVeloState *s)
{
    if (s->tick) {
        timer_free(s->tick);
        s->tick = NULL;
    }
    s->closing = true;
    if (s->conn_co) {
        if (s->ioc) {
            qio_channel_shutdown(s->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
        }
        if (s->conn_co_sleeping) {
            qemu_co_sleep_wake(&s->conn_sleep);
        }
        velo_connect_abandon(s);
        velo_conn_unpark(s);        /* closed while drained (bdrv_close) */
        AIO_WAIT_WHILE(s->ctx, s->conn_co != NULL);
    }
    if (s->reqs) {
        g_hash_table_destroy(s->reqs);
        s->reqs = NULL;
    }
    g_free(s->last_error);
    s->last_error = NULL;
}

bool velo_conn_needed(BDRVVeloState *s)
{
    return s->link_waiters ||
           (s->jrn && !qemu_co_queue_empty(&s->jrn->space_wait));
}

/* Resume a parked conn_co (once: whoever clears the flag schedules it). */
void velo_conn_unpark(BDRVVeloState *s)
{
    if (s->conn_parked && s->conn_co) {
        s->conn_parked = false;
        aio_co_schedule(s->ctx, s->conn_co);
    }
}

/*
 * Drained: park conn_co where it can be moved.  While connected it waits in
 * velo_co_read_full() (replies must keep flowing so the drain can finish);
 * otherwise we cut short its back-off sleep or connect attempt so that it
 * parks at the top of its loop until velo_conn_drain_end().
 */
void coroutine_fn velo_conn_drain_begin(BDRVVeloState *s)
{
    s->drained++;
    if (velo_conn_needed(s)) {
        /*
         * Requests in flight wait for the link (a read of an uncached
         * extent, a write throttled until the journal drains): the drain
         * waits for them, so keep reconnecting meanwhile.
         */
        return;
    }
    if (s->conn_co_sleeping) {
        qemu_co_sleep_wake(&s->conn_sleep);
    }
    velo_connect_abandon(s);
}

void coroutine_fn velo_conn_drain_end(BDRVVeloState *s)
{
    assert(s->drained > 0);
    if (--s->drained == 0) {
        velo_conn_unpark(s);
    }
}

void velo_conn_detach(BDRVVeloState *s)
{
    if (s->ioc) {
        /* Forgets the parked reader's fd handler; attach re-arms it. */
        qio_channel_detach_aio_context(s->ioc);
    }
    if (s->tick) {
        timer_del(s->tick);
    }
}

void velo_conn_attach(BDRVVeloState *s, AioContext *ctx)
{
    s->ctx = ctx;
    if (s->ioc) {
        qio_channel_attach_aio_context(s->ioc, ctx);
    }
    if (s->tick) {
        timer_free(s->tick);
        s->tick = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS, velo_tick, s);
        timer_mod(s->tick, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                  NANOSECONDS_PER_SECOND);
    }
    if (s->conn_co && s->conn_in_read) {
        /*
         * Resume the reader in the new context: it returns from
         * qio_channel_yield(), finds nothing to read and yields again, now
         * with its fd handler in @ctx.  Parked at the top of its loop it
         * stays parked until the drain ends.
         */
        aio_co_schedule(ctx, s->conn_co);
    }
}
