/*
 * Velo block export internals, shared by export.c (export type, listeners,
 * drain and AioContext hooks) and export-conn.c (one client connection).
 *
 * Three objects, all created and destroyed in the main thread:
 *
 *   VeloListener  one listening socket per distinct address (keyed by
 *                 socket_uri()).  Exports that give the same address share
 *                 it; a client picks one by name in HELLO.  It counts the
 *                 connections against max-connections and closes its socket
 *                 when its last export goes.
 *   VeloExport    a BlockExport: name, geometry and the attached clients.
 *   VeloClient    one connection, driven by one coroutine (see export-conn.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_EXPORT_INT_H
#define VELO_EXPORT_INT_H

#include "qemu/coroutine.h"
#include "qemu/queue.h"
#include "qemu/units.h"
#include "block/export.h"
#include "io/channel-socket.h"
#include "crypto/tlscreds.h"
#include "io/net-listener.h"
#include "proto.h"

/* What a client gets in HELLO_REPLY. */
#define VELO_EXP_MAX_PAYLOAD    ((4u << 20) + 4096)
#define VELO_EXP_MAX_INFLIGHT   2048
#define VELO_EXP_FEATURES       (VELO_F_ZSTD | VELO_F_HASH | VELO_F_WRITE | \
                                 VELO_F_PRIO)
#define VELO_EXP_DEFAULT_ZLEVEL 3

/* Server-side limits. */
#define VELO_EXP_HELLO_TIMEOUT_S    10
#define VELO_EXP_BUF_BUDGET         (64 * MiB)  /* reply buffers per client */
#define VELO_EXP_UNSENT_MAX         (128 * KiB) /* unsent in TCP, per client */
#define VELO_EXP_BG_SHARE           8   /* 1 frame in 8 for waiting BACKGROUND
                                           replies, so they can't starve */
#define VELO_EXP_BUSY_SLACK         16  /* extra connections told BUSY */
#define VELO_EXP_MAP_MAX_CALLS      65536       /* block-status calls per MAP */
/*
 * Request coroutines of all clients of the process together.  Each has a
 * stack of two mappings, and the kernel allows 65530 by default
 * (vm.max_map_count): beyond it QEMU aborts.  Readers wait for a slot.
 */
#define VELO_EXP_MAX_REQS_ALL       8192

typedef struct VeloClient VeloClient;
typedef struct VeloListener VeloListener;

typedef struct VeloExport {
    BlockExport common;
    char *name;
    uint32_t extent_size;
    uint32_t max_conns;                 /* clients of this export at once */
    int compress_level;                 /* zstd level; 0: never compress */
    bool dedup;                         /* send REFs to clients with a store */
    bool writable;
    uint64_t disk_size;                 /* fixed: resizing is not shared */
    uint8_t disk_id[VELO_DISK_ID_SIZE];

    /* Main thread only.  NULL once request_shutdown has run. */
    VeloListener *listener;
    uint32_t nclients;                  /* clients past the handshake */
    QLIST_ENTRY(VeloExport) next;       /* in listener->exports */

    /* Changed only in the main thread with common.ctx held. */
    QLIST_HEAD(, VeloClient) clients;

    /*
     * The node is drained: start no request.  Set and cleared with the
     * slots lock of export-conn.c held too, so that no reader of ours joins
     * the process's slot queue while it is set.
     */
    bool quiescing;
    unsigned slot_wakes;                /* readers of ours the slot queue let
                                           go of that have not run yet; under
                                           the slots lock (export-conn.c) */

    /*
     * Journal writes (export-write.c), in the export's AioContext.  Only
     * with writable=on, which needs a write-state file.
     */
    char *wst_path;                     /* the write-state file */
    int wst_fd;
    uint64_t wst_gen;                   /* generation of the newest slot */
    uint64_t wst_epoch;                 /* epoch recorded in the file */
    bool wst_saving;                    /* a state write is under way */
    uint64_t epoch;                     /* newest writer epoch seen */
    uint64_t next_seq;                  /* next WRITE seq accepted */
    uint64_t applied_seq;               /* writes up to here are applied */
    uint64_t durable_seq;               /* ... and up to here flushed */
    uint64_t bytes_written;
    CoQueue apply_wait;                 /* FLUSHes and state saves waiting
                                           for writes to be applied */
    GHashTable *turns;                  /* seq -> VeloWriteReq * waiting for
                                           its turn (export-write.c) */
    uint64_t fail_gen;                  /* bumped when a write fails */
} VeloExport;

/* All fields are main-thread only. */
struct VeloListener {
    char *key;                          /* socket_uri() of the address */
    QIONetListener *qnl;                /* NULL once closed */
    QCryptoTLSCreds *tlscreds;          /* TLS from the first byte, or NULL */
    char *tlsauthz;                     /* authz object id, or NULL */
    QLIST_HEAD(, VeloExport) exports;
    QLIST_HEAD(, VeloClient) pending;   /* clients still in the handshake */
    uint32_t nconns;                    /* all open connections */
    QLIST_ENTRY(VeloListener) next;
};

/* Why the reader coroutine is parked; whoever clears it must wake it. */
typedef enum VeloPark {
    VELO_PARK_NONE,
    VELO_PARK_SLOT,                     /* waits for a request to finish */
    VELO_PARK_QUIESCE,                  /* waits for drained_end */
    VELO_PARK_EXIT,                     /* waits for nb_requests == 0 */
    VELO_PARK_GLOBAL,                   /* waits for a slot of the process
                                           (VELO_EXP_MAX_REQS_ALL) */
} VeloPark;

/*
 * Fields not marked otherwise are only touched with the client's current
 * AioContext held: by its coroutines, which run there (in the main loop
 * during the handshake), or by the main thread after aio_context_acquire.
 */
struct VeloClient {
    VeloListener *listener;             /* main thread only */
    VeloExport *exp;                    /* NULL during the handshake */
    QIOChannelSocket *sioc;             /* the socket; we own a reference */
    QIOChannel *ioc;                    /* sioc, or the TLS channel (owned) */
    Coroutine *reader;
    QEMUTimer *hello_timer;             /* main thread only */
    bool busy;                          /* over the listener's limit */
    bool closing;                       /* socket shut down */
    uint64_t features;                  /* negotiated in HELLO */
    uint8_t store_id[VELO_STORE_ID_SIZE]; /* the client's, with VELO_F_HASH */
    bool read_yielding;                 /* reader in qio_channel_yield() */
    Coroutine *write_yielding;          /* writer in qio_channel_yield() */
    VeloPark parked;
    unsigned nb_requests;               /* request coroutines alive */
    unsigned nb_io;                     /* ... that may still touch the
                                           node (a drain waits for these,
                                           not for replies being sent) */
    uint64_t inflight_bytes;            /* their reply buffer charge */
    bool slot_wait;                     /* in the process's queue of readers
                                           waiting for a slot; protected by
                                           its lock (export-conn.c) */
    bool slot_granted;                  /* let go of by that queue, reader
                                           not run yet; under the same lock */
    struct ZSTD_DCtx_s *dctx;           /* for WRITE chunks, or NULL */
    /*
     * Sending frames on ioc, one whole frame at a time: the sender owns
     * send_busy; the others wait, replies to BACKGROUND READs in send_bg,
     * the rest in send_fg, which goes first, except that after
     * VELO_EXP_BG_SHARE - 1 frames of send_fg while send_bg waited, one of
     * send_bg has its turn (bg_turn, until a waiter of send_bg takes it).
     */
    bool send_busy;
    bool bg_turn;
    unsigned fg_run;                    /* frames of send_fg since the last
                                           of send_bg, while it waited */
    CoQueue send_fg, send_bg;
    /*
     * Encoding READ replies (compression and hashes, in the thread pool)
     * costs CPU that a demand READ should not share with guesses: at most
     * one BACKGROUND READ encodes at a time (bg_encoding), and they take
     * their turns in the order the client sent them (bg_order, VeloReq *
     * not yet encoded), whatever order their reads complete in.  One
     * worker encodes far faster than a WAN link drains.  (export-conn.c)
     */
    bool bg_encoding;
    GQueue bg_order;
    GHashTable *bg_reqs;                /* handle -> BACKGROUND READ not
                                           promoted yet (export-conn.c) */
    QLIST_ENTRY(VeloClient) next;       /* listener->pending, exp->clients */
};

/* --- export.c: listeners (main thread only) ---------------------------- */

/* The export of @l named @name, or NULL. */
VeloExport *velo_listener_find(VeloListener *l, const char *name);

/* The connection limit of @l: the sum of its exports' max-connections. */
uint64_t velo_listener_max_conns(VeloListener *l);

/*
 * Bring @l in line with its exports and connections after either changed.
 * With no export left it closes the socket and the pending handshakes, and
 * frees @l once its last connection is gone: don't use @l afterwards.
 */
void velo_listener_update(VeloListener *l);

/* --- export-conn.c: connections --------------------------------------- */

/* Serve a connection accepted on @l (main thread). */
void velo_client_new(VeloListener *l, QIOChannelSocket *sioc);

/*
 * Shut the connection down; its coroutines then fail out and the client
 * frees itself.  Idempotent.  Call with the client's AioContext held.
 */
void velo_client_close(VeloClient *c);

/*
 * Send one frame: @iov[0] is its encoded header.  Frames never interleave;
 * while *@background (the reply to a BACKGROUND READ, until a PROMOTE) it
 * waits until no other frame does, or until its share (VELO_EXP_BG_SHARE)
 * comes.  If @t_start, it gets get_clock() when the frame's turn came.
 * On failure the connection is closed.  @iov is consumed.
 */
int coroutine_fn velo_co_sendv(VeloClient *c, struct iovec *iov,
                               unsigned niov, const bool *background,
                               int64_t *t_start);

/* Send one frame / an ERROR frame (the connection closes on failure). */
int coroutine_fn velo_co_send(VeloClient *c, uint16_t type, uint64_t handle,
                              uint32_t status, void *payload, size_t len);
int coroutine_fn G_GNUC_PRINTF(4, 5)
velo_co_error(VeloClient *c, uint64_t handle, VeloStatus status,
              const char *fmt, ...);

/* --- export-read.c: MAP and READ ------------------------------------- */

/*
 * Decode a MAP or READ (header @h, its 16-byte payload @p), answer a bad
 * one with ERROR, else start a coroutine that serves it.
 */
void coroutine_fn velo_co_start_request(VeloClient *c, VeloHdr *h,
                                        const uint8_t *p);

/*
 * PROMOTE (header only, the handle of a READ).  Returns why the connection
 * must close, or NULL.
 */
const char *coroutine_fn velo_co_promote_req(VeloClient *c, VeloHdr *h);

/* Re-enter in @ctx the guesses of @c that wait for their turn to encode
 * (the export moved to @ctx). */
void velo_client_gate_move(VeloClient *c, AioContext *ctx);

/*
 * Count a request coroutine of @c that holds @charge bytes of buffers
 * (sets *@io: it may touch the node), the end of its I/O on the node
 * (velo_client_req_io_end, at most once does anything), and its end
 * (ends its I/O too; wakes the reader, a drain that waits, and a reader
 * that waits for a slot of the process).
 */
void velo_client_req_start(VeloClient *c, uint64_t charge, bool *io);

/* Take @c's reader out of the process's slot queue; true if it was there. */
bool velo_client_slot_unqueue(VeloClient *c);
void velo_client_req_io_end(VeloClient *c, bool *io);
void velo_client_req_done(VeloClient *c, uint64_t charge, bool *io);

/*
 * A drained section of @exp begins (@quiescing) or ends: set
 * exp->quiescing.  At the beginning, take its clients' readers out of the
 * process's slot queue (parked for drained_end instead); none joins it
 * until the end.  With velo_exp_slot_wakes(), which drained_poll waits on,
 * no reader of @exp is then woken through the queue in its old AioContext
 * while the export moves to another.
 */
void velo_exp_slots_quiesce(VeloExport *exp, bool quiescing);

/* Readers of @exp the slot queue let go of that have not run yet. */
unsigned velo_exp_slot_wakes(VeloExport *exp);

/* --- export-write.c: journal writes (feature WRITE) -------------------- */

/* Load (or start) the write-state file at @path. */
int velo_exp_write_open(VeloExport *exp, const char *path, Error **errp);
void velo_exp_write_close(VeloExport *exp);

/*
 * Check a WRITE (payload @payload of h->length bytes, handed over) against
 * the epoch and sequence, and start applying it in a request coroutine.
 * Runs in the reader, in frame order.
 */
void coroutine_fn velo_co_write_start(VeloClient *c, VeloHdr *h,
                                      uint8_t *payload);

/* Start a FLUSH (8-byte payload @payload). */
void coroutine_fn velo_co_flush_start(VeloClient *c, VeloHdr *h,
                                      const uint8_t *payload);

/* --- export-encode.c: encoding of READ replies -------------------------- */

/* How one extent goes out. */
typedef struct VeloEncExtent {
    uint16_t enc;                       /* VELO_ENC_* */
    uint32_t clen;                      /* ZSTD: compressed size */
    uint8_t hash[VELO_HASH_SIZE];       /* with a store id: its SHA-256 */
} VeloEncExtent;

typedef struct VeloEncodeJob {
    const uint8_t *data;                /* the extents read */
    uint64_t len;                       /* extents of esz, the last shorter */
    uint32_t esz;
    int level;                          /* zstd level, 0: no compression */
    const uint8_t *store_id;            /* feature HASH: the client's store */
    bool no_ref;                        /* READ flag NO_REF */
    uint8_t *zbuf;                      /* level: n * velo_zstd_bound(esz) */
    size_t bound;                       /* set by velo_co_encode_extents() */
    VeloEncExtent *ext;                 /* out: one per extent */
} VeloEncodeJob;

/* Room for one compressed extent of @extent_size bytes. */
size_t velo_zstd_bound(uint32_t extent_size);

/*
 * Decide how each extent of @j goes out (see export-encode.c), compressing
 * extent i into @j->zbuf + i * @j->bound, in a worker thread.  Returns 0 or
 * -ENOMEM.
 */
int coroutine_fn velo_co_encode_extents(VeloEncodeJob *j);

#endif
