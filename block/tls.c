/*
 * Velo TLS: find tls-creds objects and drive a TLS handshake to its end,
 * for both the driver (a blocking socket in its connect thread) and the
 * export (a non-blocking socket in a coroutine).
 *
 * QIOChannelTLS's own handshake helper waits through GSource watches on a
 * GMainContext, which qemu-img and qemu-io never run while a node opens;
 * stepping the session ourselves works in every event loop.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qom/object_interfaces.h"
#include "tls.h"

QCryptoTLSCreds *velo_tls_creds_get(const char *id,
                                    QCryptoTLSCredsEndpoint endpoint,
                                    const char *what, Error **errp)
{
    Object *obj = object_resolve_path_component(object_get_objects_root(),
                                                id);
    QCryptoTLSCreds *creds;

    if (!obj) {
        error_setg(errp, "%s: no object with id '%s'; create it first with "
                   "--object tls-creds-x509,id=%s,... or tls-creds-psk",
                   what, id, id);
        return NULL;
    }
    creds = (QCryptoTLSCreds *)object_dynamic_cast(obj, TYPE_QCRYPTO_TLS_CREDS);
    if (!creds) {
        error_setg(errp, "%s: object '%s' is not a tls-creds-x509 or "
                   "tls-creds-psk object", what, id);
        return NULL;
    }
    if (!qcrypto_tls_creds_check_endpoint(creds, endpoint, NULL)) {
        error_setg(errp, "%s: object '%s' must have endpoint=%s", what, id,
                   endpoint == QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT ? "client"
                                                                 : "server");
        return NULL;
    }
    object_ref(obj);
    return creds;
}

int velo_tls_handshake(QIOChannelTLS *tioc, VeloTLSWaitFn *wait,
                       void *opaque, Error **errp)
{
    QCryptoTLSSession *sess = qio_channel_tls_get_session(tioc);

    for (;;) {
        QCryptoTLSSessionHandshakeStatus st;

        if (qcrypto_tls_session_handshake(sess, errp) < 0) {
            return -1;
        }
        st = qcrypto_tls_session_get_handshake_status(sess);
        if (st == QCRYPTO_TLS_HANDSHAKE_COMPLETE) {
            break;
        }
        if (!wait || !wait(tioc->master, st == QCRYPTO_TLS_HANDSHAKE_SENDING ?
                                         G_IO_OUT : G_IO_IN, opaque)) {
            error_setg(errp, "TLS handshake did not finish within %d s",
                       VELO_TLS_HANDSHAKE_S);
            return -1;
        }
    }
    return qcrypto_tls_session_check_credentials(sess, errp);
}
