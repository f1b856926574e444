/*
 * Velo TLS: the helpers the driver and the export share to put a velo
 * connection under TLS from its first byte (docs/protocol.rst, "TLS").
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_TLS_H
#define VELO_TLS_H

#include "crypto/tlscreds.h"
#include "io/channel-tls.h"

/* Seconds a TLS handshake may take, on either side. */
#define VELO_TLS_HANDSHAKE_S    10

/*
 * Find the tls-creds object @id (a tls-creds-x509 or tls-creds-psk) for
 * @endpoint and return a new reference to it.  @what names the option in
 * errors ("velo: tls-creds" or "velo export: tls-creds").
 */
QCryptoTLSCreds *velo_tls_creds_get(const char *id,
                                    QCryptoTLSCredsEndpoint endpoint,
                                    const char *what, Error **errp);

/*
 * Wait callback of velo_tls_handshake(): the session needs @cond on
 * @master before it can go on.  Return false to give up (timeout).
 */
typedef bool VeloTLSWaitFn(QIOChannel *master, GIOCondition cond,
                           void *opaque);

/*
 * Run the TLS handshake of @tioc to its end, then check the peer's
 * credentials (CA, hostname, authz).  With a blocking master, pass a NULL
 * @wait: a socket receive timeout then ends the handshake with an error.
 * In a coroutine, @wait may yield on @master.  Returns 0 or -1 with @errp
 * set to why the handshake failed.
 */
int velo_tls_handshake(QIOChannelTLS *tioc, VeloTLSWaitFn *wait,
                       void *opaque, Error **errp);

#endif
