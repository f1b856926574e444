/*
 * What the velo driver's connection (conn.c) lends to its requests
 * (conn-req.c).  Call with the node's AioContext held.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef BLOCK_VELO_CONN_INT_H
#define BLOCK_VELO_CONN_INT_H

#include "velo-int.h"

/*
 * The largest reply payload a request of @type with payload @req allows:
 * an ERROR in any case; a READ twice its length and 64 KiB more (chunk
 * headers; a server sends ZSTD only where it shrinks); a MAP max-payload.
 */
uint32_t velo_reply_max(uint16_t type, const uint8_t *req, size_t req_len);

/*
 * Send one frame.  The channel is pinned for the duration, since a drop may
 * replace s->ioc while we are parked in the write; *@used (if not NULL)
 * returns it with a reference, so the caller can shut it down on failure.
 */
int coroutine_fn velo_conn_co_send(BDRVVeloState *s, uint16_t type,
                                   uint64_t handle, const uint8_t *payload,
                                   size_t len, QIOChannel **used,
                                   Error **errp);

/*
 * Silence (last_rx_ns) and want of replies (last_reply_ns, reply-timeout)
 * are measured from when the link connected or became busy: restart both.
 */
void velo_conn_clocks_start(BDRVVeloState *s);

/* Wake every request in flight: @bad (if any) with -EPROTO, others to resend. */
void velo_conn_drop(BDRVVeloState *s, uint64_t bad_handle);

#endif
