/*
 * Velo driver requests: wait for a link within reconnect-delay, send a
 * request, wait for its reply (resending it after a reconnect), PROMOTE a
 * guess.  The connection they travel on is conn.c's.
 *
 * A request coroutine sends its frame under send_mutex and waits in
 * s->reqs (by handle) until the connection manager hands it the reply, or
 * wakes it with -ECONNRESET when the connection drops: it then waits for
 * the next connection and sends again, until reconnect-delay has passed
 * since the loss.  v1 requests are idempotent, so a resend is always safe.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "bytes.h"
#include "velo-int.h"
#include "conn-int.h"
#include "trace.h"

bool coroutine_fn velo_co_wait_connected(BDRVVeloState *s, uint32_t timeout_s)
{
    int64_t deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                       (int64_t)timeout_s * NANOSECONDS_PER_SECOND;

    while (!s->connected && s->conn_co) {
        if (timeout_s == 0 ? s->attempts >= 1 && !s->handshaking &&
                             s->last_error
                           : qemu_clock_get_ns(QEMU_CLOCK_REALTIME) >= deadline) {
            break;
        }
        qemu_co_queue_wait(&s->conn_wait, NULL);
    }
    return s->connected;
}

/* Wait for a connection within reconnect-delay of its loss. */
static int coroutine_fn velo_co_await_link(BDRVVeloState *s, Error **errp)
{
    uint64_t tries0 = s->conn_tries;

    while (!s->connected) {
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        int64_t since = s->down_since_ns ? s->down_since_ns : now;

        if (s->closing || !s->conn_co) {
            error_setg(errp, "node is closing");
            return -ECANCELED;
        }
        /*
         * Past reconnect-delay since the loss, a request fails at once,
         * unless the connection manager sleeps in its back-off and has not
         * tried since the request came: then one attempt first (the server
         * may be back).
         */
        if (now - since >= (int64_t)s->reconnect_delay * NANOSECONDS_PER_SECOND &&
            (s->down_since_ns || s->attempts) &&
            !(s->reconnect_delay && s->conn_tries == tries0 &&
              s->conn_co_sleeping)) {
            error_setg(errp, "velo server for export '%s' unreachable for %u s "
                       "(reconnect-delay): %s", s->export_name,
                       s->reconnect_delay,
                       s->last_error ? s->last_error : "not connected");
            return -EIO;
        }
        if (!s->down_since_ns) {
            s->down_since_ns = now;
        }
        /*
         * While drained, conn_co parks unless someone needs the link.  The
         * first request to wait cuts a back-off sleep short: the link may
         * be back, and reconnect-delay may be shorter than the back-off.
         */
        if ((s->link_waiters++ == 0 || s->conn_tries == tries0) &&
            s->conn_co_sleeping) {
            qemu_co_sleep_wake(&s->conn_sleep);
        }
        velo_conn_unpark(s);
        qemu_co_queue_wait(&s->conn_wait, NULL);
        s->link_waiters--;
    }
    return 0;
}

int coroutine_fn velo_co_request(BDRVVeloState *s, uint16_t type,
                                 const uint8_t *reqbuf, size_t req_len,
                                 uint8_t **payload, uint32_t *len,
                                 Error **errp)
{
    return velo_co_request_handle(s, type, reqbuf, req_len, payload, len,
                                  NULL, errp);
}

void velo_conn_distrust(BDRVVeloState *s, const char *why)
{
    if (s->ioc && s->connected) {
        g_free(s->last_error);
        s->last_error = g_strdup(why);
        trace_velo_conn_drop(s, why);
        /* The reader, parked on the channel, sees it fail and drops it. */
        qio_channel_shutdown(s->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    }
}

void coroutine_fn velo_co_promote(BDRVVeloState *s, uint64_t handle)
{
    if (handle && s->connected && (s->features & VELO_F_PRIO)) {
        trace_velo_request(s, "PROMOTE", handle);
        velo_conn_co_send(s, VELO_MSG_PROMOTE, handle, NULL, 0, NULL, NULL);
    }
}

/*
 * Whether a READ with priority @prio goes with flag BACKGROUND on this
 * connection: a guess the guest does not wait for yet, to a server that
 * accepted PRIO (a reconnect may have found one that did not).
 */
static bool velo_read_background(BDRVVeloState *s, const VeloReadPrio *prio)
{
    return prio && prio->background && !prio->promoted &&
           (s->features & VELO_F_PRIO);
}

int coroutine_fn velo_co_request_handle(BDRVVeloState *s, uint16_t type,
                                        const uint8_t *reqbuf, size_t req_len,
                                        uint8_t **payload, uint32_t *len,
                                        VeloReadPrio *prio, Error **errp)
{
    VeloReq req = {
        .type = type, .co = qemu_coroutine_self(),
        .max_reply = velo_reply_max(type, reqbuf, req_len),
    };
    QIOChannel *used = NULL;
    int64_t first_reset_ns = 0;
    const uint8_t *send;
    uint8_t rb[16];
    int ret;

    for (;;) {
        Error *local_err = NULL;

        ret = velo_co_await_link(s, errp);
        if (ret < 0) {
            return ret;
        }
        if (s->inflight >= s->max_inflight) {
            qemu_co_queue_wait(&s->slot_wait, NULL);
            continue;
        }
        req.handle = s->next_handle++;
        req.done = false;
        req.ret = 0;
        if (g_hash_table_size(s->reqs) == 0) {
            velo_conn_clocks_start(s);  /* the link becomes busy */
        }
        s->inflight++;
        g_hash_table_insert(s->reqs, &req.handle, &req);
        if (prio) {
            prio->handle = req.handle;
        }
        trace_velo_request(s, velo_msg_name(type), req.handle);
        send = reqbuf;
        if (type == VELO_MSG_READ && req_len == sizeof(rb) &&
            velo_read_background(s, prio)) {
            /* Decided at each send: a reconnect may change the answer. */
            memcpy(rb, reqbuf, sizeof(rb));
            velo_read_req_add_flags(rb, VELO_READ_BACKGROUND);
            send = rb;
        }
        ret = velo_conn_co_send(s, type, req.handle, send, req_len, &used,
                                &local_err);
        if (ret < 0 && !req.done && used) {
            /* The reader will notice the broken socket; wait for its drop. */
            qio_channel_shutdown(used, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
        }
        if (used) {
            object_unref(OBJECT(used));
            used = NULL;
        }
        error_free(local_err);
        /* Only the reader (a reply) or a drop ends this wait. */
        while (!req.done) {
            req.waiting = true;
            qemu_coroutine_yield();
            req.waiting = false;
        }
        if (req.ret == -ECONNRESET) {
            int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
            if (!first_reset_ns) {
                first_reset_ns = now;
            } else if (now - first_reset_ns >
                       (int64_t)s->reconnect_delay * NANOSECONDS_PER_SECOND) {
                /* The server keeps dropping us on this very request. */
                error_setg(errp, "velo server for export '%s' dropped the "
                           "connection on every try of this %s for %u s "
                           "(reconnect-delay): %s", s->export_name,
                           velo_msg_name(type), s->reconnect_delay,
                           s->last_error ? s->last_error : "?");
                return -EIO;
            }
            continue;
        }
        break;
    }
    if (req.ret == -EPROTO && !req.errmsg) {
        error_setg(errp, "velo server for export '%s' broke the protocol: %s",
                   s->export_name, s->last_error ? s->last_error : "?");
        velo_payload_free(req.payload);
        return -EPROTO;
    }
    if (req.ret < 0) {
        error_setg(errp, "velo server refused %s: %s", velo_msg_name(type),
                   req.errmsg ? req.errmsg : strerror(-req.ret));
        g_free(req.errmsg);
        velo_payload_free(req.payload);
        return req.ret;
    }
    *payload = req.payload;
    *len = req.hdr.length;
    return 0;
}

void coroutine_fn velo_co_req_send(BDRVVeloState *s, VeloReq *req,
                                   uint16_t type, const uint8_t *buf,
                                   size_t len)
{
    QIOChannel *used = NULL;
    int ret;

    *req = (VeloReq) {
        .type = type, .co = qemu_coroutine_self(),
        .max_reply = velo_reply_max(type, buf, len),
    };
    /* The drain may use every slot the server grants; fetches hold few. */
    while (s->connected && s->inflight >= MAX(s->srv_max_inflight, 1)) {
        qemu_co_queue_wait(&s->slot_wait, NULL);
    }
    if (!s->connected) {
        req->done = true;
        req->ret = -ENOTCONN;
        return;
    }
    req->handle = s->next_handle++;
    if (g_hash_table_size(s->reqs) == 0) {
        velo_conn_clocks_start(s);      /* the link becomes busy */
    }
    s->inflight++;
    g_hash_table_insert(s->reqs, &req->handle, req);
    trace_velo_request(s, velo_msg_name(type), req->handle);
    ret = velo_conn_co_send(s, type, req->handle, buf, len, &used, NULL);
    if (ret < 0 && !req->done && used) {
        qio_channel_shutdown(used, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    }
    if (used) {
        object_unref(OBJECT(used));
    }
    /* On failure the drop (or a reply) still ends the request. */
}

int coroutine_fn velo_co_req_wait(BDRVVeloState *s, VeloReq *req,
                                  Error **errp)
{
    while (!req->done) {
        req->waiting = true;
        qemu_coroutine_yield();
        req->waiting = false;
    }
    if (req->ret == -ECONNRESET || req->ret == -ENOTCONN) {
        error_setg(errp, "connection to the velo server lost: %s",
                   s->last_error ? s->last_error : "?");
    } else if (req->ret < 0) {
        error_setg(errp, "velo server refused %s: %s",
                   velo_msg_name(req->type),
                   req->errmsg ? req->errmsg : strerror(-req->ret));
    }
    g_free(req->errmsg);
    req->errmsg = NULL;
    return req->ret;
}
