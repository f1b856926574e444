/*
 * Velo driver: connecting to the server in a thread, TLS handshake
 * included, so that a blocking connect() or a silent peer never stalls the
 * node's event loop.  conn.c's manager coroutine waits for the attempt and
 * may abandon it (node closing or drained); the thread then cleans up.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/thread.h"
#include "qapi/clone-visitor.h"
#include "qapi/qapi-visit-sockets.h"
#include "velo-int.h"
#include "tls.h"

/*
 * A blocking connect() can hang for minutes on an unreachable host, so it
 * runs in a detached thread.  The attempt is shared by the thread and the
 * manager coroutine; the last one to drop its reference frees it.
 */
struct VeloConnectAttempt {
    SocketAddress *addr;
    QCryptoTLSCreds *tlscreds;      /* a reference, or NULL for plaintext */
    char *tlshostname;
    QemuMutex lock;                 /* Protects co, done and abandoned. */
    Coroutine *co;                  /* woken when done, unless abandoned */
    bool done;
    bool abandoned;                 /* the node stopped waiting for us */
    QIOChannel *ioc;                /* result on success */
    Error *err;                     /* result on failure */
    int refcnt;                     /* atomic */
};

static void connect_attempt_unref(VeloConnectAttempt *a)
{
    if (qatomic_fetch_dec(&a->refcnt) == 1) {
        qapi_free_SocketAddress(a->addr);
        if (a->tlscreds) {
            object_unref(OBJECT(a->tlscreds));
        }
        g_free(a->tlshostname);
        if (a->ioc) {
            object_unref(OBJECT(a->ioc));
        }
        error_free(a->err);
        qemu_mutex_destroy(&a->lock);
        g_free(a);
    }
}

static void set_sock_timeout(QIOChannelSocket *sioc, int secs)
{
    struct timeval tv = { .tv_sec = secs };

    setsockopt(sioc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(sioc->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * TLS from the first byte: handshake on the still-blocking socket, bounded
 * by socket timeouts.  Consumes @sioc; returns the TLS channel or NULL.
 */
static QIOChannel *connect_tls(VeloConnectAttempt *a, QIOChannelSocket *sioc,
                               Error **errp)
{
    QIOChannelTLS *tioc;

    set_sock_timeout(sioc, VELO_TLS_HANDSHAKE_S);
    tioc = qio_channel_tls_new_client(QIO_CHANNEL(sioc), a->tlscreds,
                                      a->tlshostname, errp);
    object_unref(OBJECT(sioc));         /* tioc holds its own reference */
    if (!tioc) {
        return NULL;
    }
    qio_channel_set_name(QIO_CHANNEL(tioc), "velo-tls");
    if (velo_tls_handshake(tioc, NULL, NULL, errp) < 0) {
        error_prepend(errp, "TLS handshake with the velo server failed (does "
                      "the export use tls-creds, and do the CA, host name "
                      "and credentials match?): ");
        object_unref(OBJECT(tioc));
        return NULL;
    }
    set_sock_timeout(sioc, 0);
    return QIO_CHANNEL(tioc);
}

static void *connect_thread(void *opaque)
{
    VeloConnectAttempt *a = opaque;
    QIOChannelSocket *sioc = qio_channel_socket_new();

    if (qio_channel_socket_connect_sync(sioc, a->addr, &a->err) < 0) {
        object_unref(OBJECT(sioc));
    } else if (a->tlscreds) {
        a->ioc = connect_tls(a, sioc, &a->err);
    } else {
        a->ioc = QIO_CHANNEL(sioc);
    }
    qemu_mutex_lock(&a->lock);
    a->done = true;
    if (!a->abandoned) {
        aio_co_wake(a->co);
    }
    qemu_mutex_unlock(&a->lock);
    connect_attempt_unref(a);
    return NULL;
}

QIOChannel *coroutine_fn velo_co_connect_socket(BDRVVeloState *s,
                                                 Error **errp)
{
    VeloConnectAttempt *a = g_new0(VeloConnectAttempt, 1);
    QemuThread thread;
    QIOChannel *ioc;

    a->addr = QAPI_CLONE(SocketAddress, s->saddr);
    if (s->tlscreds) {
        a->tlscreds = s->tlscreds;
        object_ref(OBJECT(a->tlscreds));
        a->tlshostname = g_strdup(s->tlshostname);
    }
    a->co = qemu_coroutine_self();
    a->refcnt = 2;
    qemu_mutex_init(&a->lock);
    s->connecting = a;
    qemu_thread_create(&thread, "velo-connect", connect_thread, a,
                       QEMU_THREAD_DETACHED);
    qemu_coroutine_yield();
    s->connecting = NULL;
    if (a->abandoned) {
        /* velo_conn_stop() woke us; the thread frees its result later. */
        connect_attempt_unref(a);
        error_setg(errp, "connection attempt abandoned: the node is closing");
        return NULL;
    }
    ioc = a->ioc;
    a->ioc = NULL;
    if (!ioc) {
        error_propagate(errp, a->err);
        a->err = NULL;
    }
    connect_attempt_unref(a);
    return ioc;
}

void velo_connect_abandon(BDRVVeloState *s)
{
    VeloConnectAttempt *a = s->connecting;
    bool wake;

    if (!a) {
        return;
    }
    qemu_mutex_lock(&a->lock);
    wake = !a->done;
    a->abandoned = wake;
    qemu_mutex_unlock(&a->lock);
    if (wake) {
        aio_co_wake(s->conn_co);
    }
}
