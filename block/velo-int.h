/*
 * Velo block driver internals: the node state shared by velo.c (glue),
 * conn.c (connection and requests), fetch.c (read/write paths and tiers)
 * and cache.c (the cache file).  The write-back side's state and contracts
 * are in journal-int.h.
 *
 * Threading: every field is only touched from coroutines or callbacks that
 * run in the node's AioContext, so no field needs a lock except where noted.
 * Check-and-set sequences must not yield in between.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_INT_H
#define VELO_INT_H

#include "block/block_int.h"
#include "io/channel-socket.h"
#include "crypto/tlscreds.h"
#include "qemu/coroutine.h"
#include "qemu/queue.h"
#include "qapi/qapi-types-block-core.h"
#include "proto.h"
#include "extmap.h"
#include "cachefmt.h"
#include "cas.h"
#include "atrest.h"
#include "journal.h"
#include "databuf.h"

/*
 * What ram-size keeps for the node's own working state, beside the data it
 * counts (RAM tier, fetch and work buffers, replies): its zstd contexts
 * (about 100 KiB each), the RAM tier's bookkeeping, the pages of velo's,
 * zstd's and OpenSSL's code that a plain block read never touches, and the
 * malloc heap's slack.  Measured at 1.1-1.5 MiB (docs/performance.md); at
 * most an eighth of ram-size is kept, so a small RAM tier still works.
 */
#define VELO_RAM_STATE      (1536 * 1024)

/* Freed work buffers kept for reuse (velo_workbuf_*, counted). */
#define VELO_WORKBUF_SPARES 4
#include "linkest.h"

/* Silence on a busy connection: send PING at the first, drop at the second. */
#define VELO_STALL_PING_NS      (5 * NANOSECONDS_PER_SECOND)
#define VELO_STALL_DEAD_NS      (10 * NANOSECONDS_PER_SECOND)
#define VELO_HANDSHAKE_NS       (10 * NANOSECONDS_PER_SECOND)
#define VELO_FETCH_BATCH        (1u << 20)      /* bytes per READ, at most */
#define VELO_RA_BATCH           (256u << 10)    /* bytes per readahead READ */

/* A frame payload from the server (velo_payload_try_alloc): free with
 * velo_payload_free, or hold it in a g_autoptr(VeloPayload). */
typedef uint8_t VeloPayload;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VeloPayload, velo_payload_free)

typedef struct VeloConnectAttempt VeloConnectAttempt;
typedef struct VeloProfileState VeloProfileState;   /* profile-int.h */

/* Why an extent is fetched (fetch.c). */
typedef enum VeloFetchKind {
    VELO_FETCH_DEMAND,          /* a guest read waits for it */
    VELO_FETCH_READAHEAD,       /* readahead or neighbour prefetch */
    VELO_FETCH_PROFILE,         /* boot profile replay (profile-rec.c) */
} VeloFetchKind;

/* A request awaiting its reply (conn.c). */
typedef struct VeloReq {
    uint64_t handle;
    uint16_t type;
    Coroutine *co;              /* the coroutine waiting for the reply */
    bool waiting;               /* co is parked waiting for done: wake it */
    bool done;
    int ret;                    /* 0, -errno, or -ECONNRESET: resend */
    VeloHdr hdr;                /* reply header */
    uint8_t *payload;           /* reply payload, owned by the request
                                   (velo_payload_free) */
    char *errmsg;               /* the server's ERROR text, if any */
    uint32_t max_reply;         /* largest reply payload it allows (0:
                                   max-payload); checked before the payload
                                   is read (velo_reply_max) */
} VeloReq;

/*
 * A READ's priority (velo_co_request_handle): whether it is a guess
 * (readahead, profile replay), its handle while in flight (0 otherwise),
 * and whether the client has since asked for it first (PROMOTE).  Each
 * send of the READ, resends after a reconnect included, carries flag
 * BACKGROUND exactly when it is a guess, not yet promoted, and the server
 * accepted feature PRIO (velo_read_background, conn.c, decides that and
 * nothing else does).  A READ resent before its PROMOTE has the new handle
 * here, so a PROMOTE still finds it.
 */
typedef struct VeloReadPrio {
    uint64_t handle;
    bool background;
    bool promoted;
} VeloReadPrio;

/*
 * An extent range that is busy (fetch.c): being fetched (buf != NULL) or
 * being written by the guest (buf == NULL).  Others wanting these extents
 * wait on @waiters until @done.
 */
typedef struct VeloBusy {
    uint64_t first;             /* first extent index */
    uint64_t n;                 /* number of extents */
    bool readahead;
    bool profile;               /* fetched by profile replay */
    VeloReadPrio prio;          /* its READ; promoted once a reader waits
                                   for a guess (readahead or profile) */
    bool tier;                  /* from the object store tier first */
    bool done;
    int ret;
    uint8_t *buf;               /* n * extent_size bytes when fetching */
    struct BDRVVeloState *s;    /* set with buf: counted in s->buf_bytes */
    unsigned refcnt;
    CoQueue waiters;
} VeloBusy;

/* A RAM tier entry (fetch.c). */
typedef struct VeloRamEnt {
    uint64_t idx;
    uint8_t *data;
    QTAILQ_ENTRY(VeloRamEnt) lru;   /* head = most recently used */
} VeloRamEnt;

#include "journal-int.h"

/* The object store tier of cold clean extents (tier.c). */
typedef struct VeloTierState {
    uint64_t limit;             /* cache-size: most clean bytes cached; 0 */
    unsigned long *ref;         /* clock reference bits, with a limit */
    unsigned long *in_store;    /* extents in the object store, with one */
    uint64_t hand;              /* the clock hand */
    bool running;               /* the eviction coroutine runs */
    VeloAtRestKey key;          /* with key-secret: the tier's own key */
    bool has_key;
    QemuMutex key_lock;         /* Protects key (used by worker threads). */
    bool lock_init;
    uint64_t hits, misses, evictions, bytes_put, put_errors;
} VeloTierState;

typedef struct VeloStats {
    uint64_t bytes_fetched, bytes_fetched_raw, bytes_wire;
    uint64_t dedup_refs, dedup_bytes, ref_misses;
    uint64_t ram_hits, cache_hits, misses, zero_reads;
    uint64_t fetches, readahead_fetches;
    uint64_t fetch_ns_total, fetch_ns_max, fetch_count;
    uint64_t reconnects;
    uint64_t corrupt_entries;
} VeloStats;

typedef struct BDRVVeloState {
    BlockDriverState *bs;
    AioContext *ctx;

    /* Options (fixed after open). */
    SocketAddress *saddr;
    char *export_name;
    char *cache_path;
    uint64_t ram_size;
    uint64_t readahead_max;
    uint32_t max_inflight_opt;
    uint32_t reconnect_delay;
    uint32_t reply_timeout;     /* seconds without any request answered
                                   before the connection is cut (0: never) */
    uint32_t open_timeout;
    VeloWriteMode write_mode;
    QCryptoTLSCreds *tlscreds;  /* tls-creds (a reference), or NULL */
    char *tlshostname;          /* checked against the server's cert */
    uint64_t want_features;     /* VELO_F_* offered in HELLO */
    VeloCas *cas;               /* the host's content store (thread-safe) */

    /* Geometry: from the server, or the cache header when offline. */
    uint64_t disk_size;
    uint32_t extent_size;
    uint8_t disk_id[VELO_DISK_ID_SIZE];
    bool have_geometry;

    /* Connection (conn.c). */
    QIOChannel *ioc;            /* socket or TLS channel; we own a reference */
    bool connected;
    bool handshaking;
    bool closing;
    Coroutine *conn_co;         /* connection manager and reply reader */
    VeloConnectAttempt *connecting; /* conn_co waits for this connect thread */
    bool conn_co_sleeping;      /* conn_co is in its back-off sleep */
    bool conn_in_read;          /* conn_co is parked waiting for input */
    bool conn_parked;           /* conn_co is parked while drained */
    unsigned link_waiters;      /* requests waiting for a (re)connection */
    unsigned drained;           /* drained sections we are in (they nest) */
    QemuCoSleep conn_sleep;
    CoMutex send_mutex;         /* Protects sending frames on ioc. */
    GHashTable *reqs;           /* handle -> VeloReq *, awaiting replies */
    uint64_t next_handle;
    uint32_t max_payload;
    uint64_t features;          /* VELO_F_* the server accepted */
    struct ZSTD_DCtx_s *zdctx;  /* decompresses ZSTD chunks (never yields) */
    uint32_t max_inflight;      /* min(option, server limit) */
    uint32_t srv_max_inflight;  /* the server's limit (pipelined writes) */
    uint32_t inflight;          /* requests sent and not yet answered */
    CoQueue slot_wait;          /* waiting for inflight < max_inflight */
    CoQueue conn_wait;          /* waiting for a connection */
    int64_t last_rx_ns;
    int64_t last_reply_ns;      /* a request last ended, or the link became
                                   busy or connected */
    int64_t conn_start_ns;      /* when the current handshake began */
    int64_t down_since_ns;      /* when the connection was lost, or 0 */
    bool ping_sent;
    unsigned attempts;          /* connection attempts since the last success */
    uint64_t conn_tries;        /* connection attempts ever */
    char *last_error;           /* why the last attempt or connection failed */
    const char *timeout_reason; /* set when the tick shut the channel down */
    QEMUTimer *tick;            /* 1 s: stalls, handshake timeout, deadlines */

    /* Extents (fetch.c). */
    VeloExtMap *map;
    GHashTable *busy;           /* extent idx -> VeloBusy * */
    /*
     * Guest writes in write-back take write_lock shared and order
     * themselves per extent through s->busy; cloud-persist writes and the
     * resync walk take it exclusively.
     */
    CoRwlock write_lock;
    unsigned wb_jobs;           /* cache writes in the background (write.c) */
    GHashTable *jres;           /* extent idx -> VeloJEnt *: journal-resident
                                   extents (write.c) */
    uint64_t wb_bytes;          /* their buffers */
    CoQueue wb_wait;            /* writers waiting for wb_bytes to fall */
    int wb_error;               /* a background cache write failed */
    QTAILQ_HEAD(, VeloRamEnt) ram_lru;
    GHashTable *ram;            /* extent idx -> VeloRamEnt * */
    uint64_t ram_count, ram_max;
    uint64_t ram_state;         /* ram-size kept for the node's own state */
    size_t workbuf_max;         /* size of pooled work buffers (fetch.c) */
    uint8_t *wb_spare[VELO_WORKBUF_SPARES];     /* freed ones kept */
    unsigned wb_nspare;
    uint64_t buf_bytes;         /* fetch, work buffers, READ replies alive */
    uint64_t seq_next;          /* where a sequential stream would continue */
    uint64_t ra_window;         /* current readahead window, bytes */
    uint64_t ra_end;            /* readahead issued up to here */
    uint64_t seq_bytes;         /* bytes read in the current sequential run */
    uint64_t ra_inflight;       /* readahead bytes being fetched */
    VeloLinkEst link;           /* rate and round trip, from the replies */
    int64_t link_delivered_ns;  /* when the last READ reply arrived */
    uint64_t fetches_started;
    uint32_t demand_fetches;    /* demand fetches in flight */

    /* Boot profiles (profile-rec.c). */
    VeloProfileState *prof;

    /* Cache file (cache.c). */
    BdrvChild *cache_child;     /* the cache-file or cache-node child */
    bool cache_node;            /* cache-node given (else cache.file) */
    bool cache_created;         /* the cache was empty at this open */
    VeloCacheHdr chdr;
    uint32_t *crc;              /* per extent: CRC-32 of its cached data */
    uint64_t write_gen;         /* bumped by every guest write to the file */
    uint8_t *secret;            /* key-secret bytes (16 or 32), or NULL */
    size_t secret_len;
    bool cache_compress;        /* cache-compress option */
    VeloAtRestKey atrest;       /* this file's key, with VELO_CACHE_F_GCM */
    bool seal_armed;            /* this epoch's seal is written: seal the
                                   index at close (cache-atrest.c) */
    VeloAtRestKey seal_key;     /* MACs the seal file: derived from the
                                   secret and disk id, not the file's salt */
    uint8_t *index_raw;         /* at open, the index exactly as decoded,
                                   until the seal has checked it */
    uint64_t nonce_ctr;         /* next nonce counter in this open epoch */
    struct ZSTD_CCtx_s *cache_zcctx;    /* with VELO_CACHE_F_ZSTD */

    /* Write-back journal (journal-io.c, drain.c), or NULL. */
    VeloJournal *jrn;
    int64_t drain_lag_ns;       /* drain-lag-ms option */
    VeloJSegState jseg;         /* the object store and journal segments */
    VeloTierState tier;

    VeloStats stats;
} BDRVVeloState;

/* --- conn-thread.c: connecting in a thread ------------------------------ */

/*
 * Connect to s->saddr (and do the TLS handshake with s->tlscreds) in a
 * thread while the calling coroutine (conn_co) waits.  Returns the channel,
 * blocking, not yet attached to an AioContext; or NULL with @errp set,
 * also when velo_connect_abandon() gave up on the attempt.
 */
QIOChannel *coroutine_fn velo_co_connect_socket(BDRVVeloState *s,
                                                 Error **errp);

/* Stop waiting for the connect thread (it frees its result later). */
void velo_connect_abandon(BDRVVeloState *s);

/* --- conn.c ------------------------------------------------------------- */

/* Start the connection manager coroutine (first attempt begins at once). */
void velo_conn_start(BDRVVeloState *s);

/* Stop it: close the connection, fail waiters, and wait until it exits. */
void velo_conn_stop(BDRVVeloState *s);

/*
 * Wait until the node is connected, or the first @timeout_s seconds pass
 * (0: the first attempt only).  Must run in a coroutine.  Returns true if
 * connected.
 */
bool coroutine_fn velo_co_wait_connected(BDRVVeloState *s, uint32_t timeout_s);

/*
 * Send one request and wait for its reply, reconnecting and resending as
 * needed for up to reconnect-delay.  On success returns 0 and hands over the
 * reply payload in *@payload (velo_payload_free it) and its length in
 * *@len.  On
 * failure returns -errno and sets @errp.
 */
int coroutine_fn velo_co_request(BDRVVeloState *s, uint16_t type,
                                 const uint8_t *req, size_t req_len,
                                 uint8_t **payload, uint32_t *len,
                                 Error **errp);

/*
 * velo_co_request, keeping in @prio->handle the handle the request was last
 * sent with (for velo_co_promote).  A READ (@req encoded without flag
 * BACKGROUND) goes with it on each send while @prio says so (see
 * VeloReadPrio).  Once it returns the handle is stale: the caller clears
 * it.
 */
int coroutine_fn velo_co_request_handle(BDRVVeloState *s, uint16_t type,
                                        const uint8_t *req, size_t req_len,
                                        uint8_t **payload, uint32_t *len,
                                        VeloReadPrio *prio, Error **errp);

/*
 * A reply contradicted its request (@why): the server is not trusted with
 * more.  Cuts the connection (the reader then drops it and reconnects, and
 * requests in flight are resent), as a frame error would.
 */
void velo_conn_distrust(BDRVVeloState *s, const char *why);

/*
 * The BACKGROUND READ sent with @handle is waited for after all: ask the
 * server (feature PRIO) to send its reply with the others.  Fire and
 * forget: a lost connection resends the READ anyway.
 */
void coroutine_fn velo_co_promote(BDRVVeloState *s, uint64_t handle);

/*
 * Pipelined requests (the journal drain), up to the server's in-flight
 * limit rather than max-inflight: send @req now, in call order,
 * and collect its reply later with velo_co_req_wait().  Neither waits for
 * a reconnect nor resends: a lost connection fails the request.  After
 * velo_co_req_send() returns, velo_co_req_wait() must be called; the reply
 * payload is then in req->payload (velo_payload_free it), its length in
 * req->hdr.length.
 */
void coroutine_fn velo_co_req_send(BDRVVeloState *s, VeloReq *req,
                                   uint16_t type, const uint8_t *buf,
                                   size_t len);
int coroutine_fn velo_co_req_wait(BDRVVeloState *s, VeloReq *req,
                                  Error **errp);

/*
 * Whether I/O in flight waits for the connection: requests waiting for a
 * reconnect, or guest writes waiting for journal space (which the drain to
 * the origin frees).  Then a drained node still reconnects and drains.
 */
bool velo_conn_needed(BDRVVeloState *s);

/* Resume conn_co if it is parked (a drained node that needs the link). */
void velo_conn_unpark(BDRVVeloState *s);

/* Park the connection manager for a drain, and let it go again. */
void coroutine_fn velo_conn_drain_begin(BDRVVeloState *s);
void coroutine_fn velo_conn_drain_end(BDRVVeloState *s);

/* Move the connection to a new AioContext / away from the old one. */
void velo_conn_attach(BDRVVeloState *s, AioContext *ctx);
void velo_conn_detach(BDRVVeloState *s);

/* --- cache.c ------------------------------------------------------------ */

/*
 * Open the cache child (cache-node, or a file node on cache.file) and
 * initialise it if empty.  With geometry known, a new
 * file is initialised and an old one must match it; without it (server
 * unreachable) the header provides it.  Loads the index into s->map/s->crc.
 */
int velo_cache_open(BDRVVeloState *s, QDict *options, Error **errp);
void velo_cache_close(BDRVVeloState *s);

/* Write every index entry from s->map (after loading the allocation map). */
int coroutine_fn velo_cache_write_index(BDRVVeloState *s);

/*
 * Read extent @idx (CACHED or DIRTY) into @buf and check it.  Returns 0,
 * -EAGAIN to retry (a clean extent failed its check and is now DATA, or a
 * guest write raced with the read), or another -errno.  *@raced tells
 * whether a guest write ran meanwhile (then @buf must not be cached).
 */
int coroutine_fn velo_cache_read(BDRVVeloState *s, uint64_t idx, uint8_t *buf,
                                 bool *raced);

/* The same, reading the whole extent straight into @qiov at @qoff. */
int coroutine_fn velo_cache_readv(BDRVVeloState *s, uint64_t idx,
                                  QEMUIOVector *qiov, size_t qoff, bool *raced);

/* Store a fetched clean extent: data first, then its CACHED entry. */
int coroutine_fn velo_cache_store_clean(BDRVVeloState *s, uint64_t idx,
                                        const uint8_t *buf);

/*
 * Drop clean extent @idx from the cache file (entry first, then the slot).
 * @tier_crc: the CRC-32C of its content, put in the object store (0:
 * not), kept in its entry (state DATA): an object is trusted only if its
 * content has that CRC, so a stale one (the extent was written since) is
 * a miss.  The caller holds the extent busy.
 */
int coroutine_fn velo_cache_drop_clean(BDRVVeloState *s, uint64_t idx,
                                       uint32_t tier_crc);

/* Store a guest-written extent, pinned (DIRTY), in crash-safe order. */
int coroutine_fn velo_cache_store_dirty(BDRVVeloState *s, uint64_t idx,
                                        const uint8_t *buf);

/*
 * Store @n consecutive guest-written extents from @first, the content of
 * each at @bufs[i], pinned (DIRTY): one write of their index entries, then
 * one of their data.  Only for extents whose records are still in the
 * journal (a crash between the two is repaired by replay).  Record mode
 * stores them one by one.
 */
int coroutine_fn velo_cache_store_dirty_run(BDRVVeloState *s, uint64_t first,
                                            uint64_t n, uint8_t *const *bufs);

int coroutine_fn velo_cache_flush(BDRVVeloState *s);

/* CRC-32C of the bytes of @qiov (as in index entries and journal records). */
uint32_t velo_qiov_crc(QEMUIOVector *qiov);

/* Copy @n bytes of @qiov from @qoff to @dst; returns their CRC-32C. */
uint32_t velo_qiov_crc_copy(QEMUIOVector *qiov, size_t qoff, uint8_t *dst,
                            size_t n);

/* --- cache-atrest.c: encrypted or compressed files, and the seal file -- */

/*
 * Check a record-mode cache file against the options, its key and its seal
 * file (rollback, and index changes since a clean close), then start a new
 * nonce epoch: header written and flushed, then sealed.  @fresh: just
 * created.
 */
int velo_cache_atrest_open(BDRVVeloState *s, bool fresh, Error **errp);

/*
 * At a clean close, once the file's final flush returned @flushed: seal
 * its index (a warning if that or the flush failed: the next open then
 * checks entries one by one).
 */
void velo_cache_atrest_close(BDRVVeloState *s, int flushed);

/* --- cache-rec.c: record mode (compressed and/or encrypted at rest) ------ */

/*
 * Build the record of extent @idx holding @buf: compressed if the file
 * allows it and it shrinks, encrypted under a fresh nonce if the file is
 * encrypted.  Returns a work buffer (velo_workbuf_try_alloc) holding the
 * record's *@size bytes, and its CRC in *@crc, or NULL (out of memory or a
 * crypto failure).  Free it with velo_cache_rec_free().
 */
uint8_t *velo_cache_rec_build(BDRVVeloState *s, uint64_t idx,
                              const uint8_t *buf, uint32_t *crc,
                              uint32_t *size);
void velo_cache_rec_free(BDRVVeloState *s, uint64_t idx, uint8_t *rec);

/*
 * Read the record of extent @idx into @buf (plaintext), checking it against
 * @crc, its header, GCM and its length.  Returns 0, -EILSEQ if the record
 * does not check out, or another -errno.
 */
int coroutine_fn velo_cache_rec_read(BDRVVeloState *s, uint64_t idx,
                                     uint8_t *buf, uint32_t crc);

/* --- fetch.c ------------------------------------------------------------ */

void velo_fetch_init(BDRVVeloState *s);

/*
 * @raw_window, a budget of bytes in flight sized for the link, counted on
 * the wire instead: compressed extents (ZSTD chunks, or REFs) cost less of
 * the link than they hold, so it grows by the compression seen so far, up
 * to 4x.
 */
uint64_t velo_wire_window(BDRVVeloState *s, uint64_t raw_window);

/*
 * How many raw bytes of speculative fetches (readahead and neighbour
 * prefetch) may be in flight: four times the link's bandwidth-delay product
 * on the wire, as measured on the replies (VELO_SPEC_MIN..VELO_SPEC_MAX).
 */
uint64_t velo_spec_window(BDRVVeloState *s);

/*
 * Start background fetches (@kind READAHEAD or PROFILE) or demand fetches of
 * the missing extents among [@first, @first + @n).  Returns the extent
 * index up to which the range was dealt with (READAHEAD stops at its
 * budget).  Never yields.
 */
uint64_t velo_start_fetches(BDRVVeloState *s, uint64_t first, uint64_t n,
                            VeloFetchKind kind);
void velo_fetch_cleanup(BDRVVeloState *s);

/*
 * The busy table (s->busy): an extent is in it while a fetch or a write of
 * it is under way.  velo_busy_new() enters [@first, @first + @n) (with a
 * fetch buffer when @fetch); velo_busy_finish() takes them out, wakes the
 * waiters and drops the creator's reference; a waiter holds a reference
 * while it waits and drops it with velo_busy_unref().
 */
VeloBusy *velo_busy_new(BDRVVeloState *s, uint64_t first, uint64_t n,
                        bool fetch);
void coroutine_fn velo_busy_finish(BDRVVeloState *s, VeloBusy *b);
void velo_busy_unref(VeloBusy *b);

/*
 * The RAM tier (ram.c): look up (and touch), put a copy in, refresh a copy
 * if any, drop a copy if any.
 */
VeloRamEnt *velo_ram_lookup(BDRVVeloState *s, uint64_t idx);
void velo_ram_put(BDRVVeloState *s, uint64_t idx, const uint8_t *data);
void velo_ram_update(BDRVVeloState *s, uint64_t idx, const uint8_t *data);
void velo_ram_forget(BDRVVeloState *s, uint64_t idx);

/*
 * ram.c: set up and free the RAM tier (from velo_fetch_init/cleanup);
 * push RAM-tier extents out until the buffers counted in s->buf_bytes fit
 * in ram-size with it (call after adding to s->buf_bytes).
 */
void velo_ram_init(BDRVVeloState *s);
void velo_ram_cleanup(BDRVVeloState *s);
void velo_ram_shrink(BDRVVeloState *s);

/*
 * A work buffer: extent data the node holds for a while outside the RAM
 * tier and fetches (a cache record, a bounce buffer), mapped for itself
 * (databuf.h, page-aligned) and counted against ram-size like a fetch
 * buffer while it lives (a few freed ones are kept for the next, still
 * counted).  NULL when the system has no memory.  Free it with the size it
 * was asked for.  In the node's AioContext only.
 */
uint8_t *velo_workbuf_try_alloc(BDRVVeloState *s, size_t size);
uint8_t *velo_workbuf_alloc(BDRVVeloState *s, size_t size);
void velo_workbuf_free(BDRVVeloState *s, uint8_t *p, size_t size);

/*
 * Fetch [@off, @off + @len) from the server.  With @prio (may be NULL) its
 * READ's priority: a guess (@prio->background) goes with READ flag
 * BACKGROUND unless promoted, so its reply goes after the others, and its
 * handle is kept there while in flight, for velo_co_promote.
 */
int coroutine_fn velo_co_fetch_range(BDRVVeloState *s, uint64_t off,
                                     uint64_t len, uint8_t *buf,
                                     VeloReadPrio *prio, Error **errp);

/* map.c: load the allocation map from the server (all UNKNOWN extents). */
int coroutine_fn velo_co_load_map(BDRVVeloState *s, Error **errp);

int coroutine_fn velo_co_preadv(BlockDriverState *bs, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags);
int coroutine_fn velo_co_pwritev(BlockDriverState *bs, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 BdrvRequestFlags flags);
int coroutine_fn velo_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, BdrvRequestFlags flags);

/* --- write.c: guest writes ---------------------------------------------- */

/*
 * Journal-resident extents: a write-back write of whole extents goes to
 * the journal only; until the drain moves it to the cache file
 * (velo_co_jres_materialize), reads of those extents come from the journal
 * record.  velo_jres_lookup() says whether extent @idx is one;
 * velo_co_jres_read() reads [@in_off, +@len) of it into @qiov at @qoff
 * (-EAGAIN: it changed meanwhile, look again); velo_jres_drop() notes that
 * the cache file (or a newer write) has it now.
 */
VeloJEnt *velo_jres_lookup(BDRVVeloState *s, uint64_t idx);
int coroutine_fn velo_co_jres_read(BDRVVeloState *s, uint64_t idx,
                                   uint32_t in_off, uint32_t len,
                                   QEMUIOVector *qiov, size_t qoff);
void velo_jres_drop(BDRVVeloState *s, uint64_t idx);

/*
 * The drain read records @ents[0..@n) into @recs (header and data each):
 * store their extents that are still journal-resident into the cache file,
 * so that the records can leave the journal.  Consecutive extents go in
 * one write.
 */
int coroutine_fn velo_co_jres_materialize(BDRVVeloState *s, VeloJEnt **ents,
                                          uint8_t **recs, unsigned n);

/* Wait until extent @idx is in no fetch or write (s->busy). */
void coroutine_fn velo_co_extent_wait_idle(BDRVVeloState *s, uint64_t idx);

/*
 * Give @buf the current content of extent @idx (for read-modify-write).
 * The caller holds @idx busy, or has waited for it to be idle.
 */
int coroutine_fn velo_co_extent_content(BDRVVeloState *s, uint64_t idx,
                                        uint8_t *buf);

/*
 * Apply a guest write to the cache file and the RAM tier only (no journal):
 * @qiov holds @bytes bytes, or NULL for zeros.  The caller holds
 * write_lock exclusively.  Used by cloud-persist writes and journal replay.
 */
int coroutine_fn velo_co_write_cache(BDRVVeloState *s, int64_t offset,
                                     int64_t bytes, QEMUIOVector *qiov);

/* --- tier.c: cold extents in the object store --------------------------- */

/* After the cache is loaded: list the store's extents, derive the key. */
int velo_tier_open(BDRVVeloState *s, Error **errp);
void velo_tier_close(BDRVVeloState *s);

/* Whether extent @idx is in the object store (fetch it from there). */
bool velo_tier_has(BDRVVeloState *s, uint64_t idx);

/* Extent @idx is being written: its object in the store is old now. */
void velo_tier_forget(BDRVVeloState *s, uint64_t idx);

/* Read extents [@first, +@n) from the store into @buf; -errno: a miss. */
int coroutine_fn velo_co_tier_get(BDRVVeloState *s, uint64_t first,
                                  uint64_t n, uint8_t *buf);

/* A cache hit on @idx (clock reference bit). */
void velo_tier_touch(BDRVVeloState *s, uint64_t idx);

/* Start evicting if clean extents exceed cache-size. */
void velo_tier_kick(BDRVVeloState *s);

/* --- dedup.c: the content store side of a fetch ------------------------ */

/* What an extent of a READ reply was (fetch.c fills, dedup.c reads). */
enum {
    VELO_DD_NONE = 0,           /* zeros only */
    VELO_DD_DATA = 1,           /* came with a payload: goes to the store */
    VELO_DD_REF = 2,            /* a REF: resolve its hash */
};

/*
 * Put the payload extents of the reply now in @buf ([@off, @off + @len)) in
 * the content store and resolve its REFs (@hashes holds VELO_HASH_SIZE bytes
 * per extent), in a worker thread.  Returns the number of REFs that
 * resolved nowhere.
 */
int coroutine_fn velo_co_dedup_reply(BDRVVeloState *s, uint8_t *buf,
                                     uint64_t off, uint64_t len,
                                     const uint8_t *kinds,
                                     const uint8_t *hashes);

#endif
