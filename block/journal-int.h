/*
 * Velo block driver internals, the write-back side: the journal child and
 * its records (journal-io.c), write-back glue and resync (writeback.c),
 * the drain to the origin (drain.c, drain-qmp.c) and journal segments in
 * the object store (jseg.c, jseg-opts.c).  Included by velo-int.h, whose
 * threading rules apply: every field belongs to the node's AioContext
 * unless a lock says otherwise.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_JOURNAL_INT_H
#define VELO_JOURNAL_INT_H

typedef struct BDRVVeloState BDRVVeloState;     /* velo-int.h */

/* A live journal record (journal-io.c): appended, not yet drained. */
typedef struct VeloJEnt {
    uint64_t seq;
    uint64_t off;               /* ring offset */
    uint64_t size;              /* ring bytes */
    uint64_t time_ns;           /* when it was appended (wall clock) */
    uint16_t type;              /* VELO_JREC_WRITE or _ZERO */
    uint64_t offset;            /* guest range */
    uint32_t length;
    bool written;               /* in j->pending: its write finished */
    uint32_t jres;              /* extents whose newest content is here and
                                   not in the cache file (s->jres) */
} VeloJEnt;

/* The write journal and its drain (journal-io.c, drain.c). */
typedef struct VeloJournal {
    BdrvChild *child;
    VeloJournalSb sb;           /* as last written (head, epoch, cache_seq) */
    CoMutex sb_lock;            /* Protects writing the superblock and
                                   sb_durable_slot. */
    unsigned sb_durable_slot;   /* the slot of the newest copy known to be
                                   durable (or found at open): no save
                                   overwrites it */
    VeloJRing ring;
    GQueue ents;                /* VeloJEnt *, oldest first: journaled */
    GQueue pending;             /* VeloJEnt *, appends in flight, by seq */
    uint64_t next_seq;          /* after the last record in ents */
    uint64_t reserved_seq;      /* of the next record appended */
    CoQueue append_wait;        /* flushes waiting for appends in flight */
    uint64_t cache_done_seq;    /* records up to here are in the cache file */
    GHashTable *cache_ahead;    /* uint64_t * seqs in the cache file past
                                   cache_done_seq (done out of order) */
    uint64_t live_bytes;        /* guest bytes in live records */
    CoQueue space_wait;         /* appenders waiting for room (throttled) */
    bool failed;                /* an append failed: no more writes */
    bool formatted;             /* the node was empty: a new journal */
    bool claimed;               /* this session bumped the epoch (the node
                                   was writable at open, or has appended or
                                   drained since a read-only open) */
    CoMutex claim_lock;         /* Protects claiming (bump once). */
    GQueue rec_pool;            /* VeloJRecBuf *, freed record buffers,
                                   oldest first (the node's AioContext) */
    uint64_t rec_pool_bytes;    /* their sizes, at most VELO_JREC_POOL_BYTES */

    /* Drain. */
    QEMUBH *bh;                 /* starts a drain pass when there is work */
    QEMUTimer *lag_timer;       /* kicks bh when a held-back pass is due */
    int64_t last_write_ns;      /* when a guest write last started or
                                   ended (QEMU_CLOCK_REALTIME) */
    bool urgent;                /* velo-drain asked: hold nothing back */
    uint64_t urgent_seq;        /* ... until the head passes this record */
    bool holding;               /* the last check held a pass back */
    unsigned passes;            /* drain passes running (at most 2) */
    uint64_t pass_tickets;      /* handed out to passes, in start order */
    uint64_t send_turn;         /* the pass whose turn it is to send */
    uint64_t done_turn;         /* ... to move the head */
    CoQueue turn_wait;          /* passes waiting for their turn */
    uint64_t send_from;         /* the next pass takes records from here */
    bool fenced;                /* the origin saw a newer epoch: stopped */
    bool session_sent;          /* a WRITE with this session's epoch went
                                   out: the origin may show it since */
    bool origin_known;          /* origin's durable seq checked this session */
    uint64_t origin_durable;    /* what its last FLUSH_REPLY said */
    uint64_t flushed_seq;       /* records up to here were flushed in the
                                   journal before the drain sent them */
    char *last_error;           /* why the last pass failed */
    int64_t retry_ns;           /* no pass before this (after a failure) */

    /* Resync after cloud-persist (writeback.c). */
    unsigned long *unsynced;    /* extents written while isolated, or NULL:
                                   then every pinned extent is resynced */
    bool resync_running;

    /* Statistics. */
    uint64_t bytes_appended, bytes_drained, records_drained;
    uint64_t wire_drained;      /* WRITE payload bytes sent */
    uint64_t throttled;         /* appends that had to wait for room */
    uint64_t throttle_ns;
    uint64_t rate;              /* drain rate, bytes/s (moving average) */
    int64_t rate_ns;            /* when rate was last updated */
} VeloJournal;

/* An uploaded journal segment (jseg.c). */
typedef struct VeloJSeg {
    uint64_t first, last, epoch;
} VeloJSeg;

/* The objstore.* options, kept until the store can be opened. */
typedef struct VeloJSegConfig {
    char *backend, *path, *endpoint, *bucket, *region, *access_key;
    char *secret_key, *ca_file;
    bool insecure;
    unsigned timeout_ms;        /* per request, 0: the library's default */
    unsigned retries;           /* as VeloObjConfig.retries (0: default) */
} VeloJSegConfig;

/* Journal segments in the object store (jseg.c, jseg-opts.c). */
typedef struct VeloJSegState {
    VeloJSegConfig cfg;
    struct VeloObjStore *store; /* thread-safe; NULL without objstore */
    char *prefix;               /* "velo/<disk id>/" */
    uint32_t rpo_local;         /* seconds */
    bool running;               /* an upload coroutine is under way */
    uint64_t uploaded_seq;      /* records up to here are in the store */
    GArray *segs;               /* VeloJSeg uploaded this session, in order */
    uint64_t segments, bytes, recovered;
    char *last_error;
} VeloJSegState;

/* --- journal-io.c: the journal child ------------------------------------ */

/*
 * Load the journal of s->jrn->child (formatting an empty node; @writable:
 * bump the epoch), and find its live records.  @origin_seq is the origin's
 * durable seq, where a new journal starts (UINT64_MAX: unknown, then an
 * empty node is refused), @origin_epoch its newest writer epoch.
 */
int coroutine_fn velo_co_journal_load(BDRVVeloState *s, bool writable,
                                      uint64_t origin_seq, uint64_t origin_epoch,
                                      Error **errp);

/*
 * Replay records after sb.cache_seq (all, into a new cache file) into the
 * cache file; with @writable, note the new cache_seq in the journal.
 */
int coroutine_fn velo_co_journal_replay(BDRVVeloState *s, bool writable,
                                        Error **errp);

/*
 * Append a record of a guest write (@qiov from @qoff, or NULL for ZERO) of
 * at most VELO_JREC_MAX_DATA bytes; its entry goes to *@entp (when not
 * NULL: it lives until the drain frees the record).  Waits for room while
 * the journal is full (throttling), or with @nowait returns -EAGAIN.
 * Appends may run concurrently; the caller orders overlapping ones (a
 * record's seq is taken when its room is).
 */
int coroutine_fn velo_co_journal_append(BDRVVeloState *s, uint16_t type,
                                        uint64_t offset, uint32_t length,
                                        QEMUIOVector *qiov, size_t qoff,
                                        bool nowait, VeloJEnt **entp);

/*
 * A buffer for a WRITE record of @length data bytes, laid out as in the
 * ring: the data goes at VELO_JREC_HDR_SIZE.  NULL if out of memory.
 * Give it back with velo_journal_rec_free.
 */
uint8_t *velo_journal_rec_new(BDRVVeloState *s, uint32_t length);

/*
 * Give back @rec, from velo_journal_rec_new(@s, @length).  It is kept for
 * reuse, oldest first: see VELO_JREC_POOL_BYTES.
 */
void velo_journal_rec_free(BDRVVeloState *s, uint8_t *rec, uint32_t length);

/*
 * As velo_co_journal_append, for a WRITE record whose data the caller put
 * in @rec (from velo_journal_rec_new), with CRC-32C @data_crc: the header
 * and padding are filled in and the buffer is written as it is, in one
 * piece, so an O_DIRECT journal needs no bounce buffer.  The caller frees
 * @rec.
 */
int coroutine_fn velo_co_journal_append_rec(BDRVVeloState *s,
                                            uint64_t offset, uint32_t length,
                                            uint8_t *rec, uint32_t data_crc,
                                            bool nowait, VeloJEnt **entp);

/*
 * Wait (throttled) until a record of @type and @length would fit in the
 * journal.  Guest writes append with @nowait, since they hold extents busy
 * that the drain may need to free room: on -EAGAIN they let go, wait here,
 * and start again.
 */
int coroutine_fn velo_co_journal_wait_room(BDRVVeloState *s, uint16_t type,
                                           uint32_t length);

/*
 * Wait until record @seq counts as journaled: it and every record before
 * it are written (-EIO: an append failed, it never will be).
 */
int coroutine_fn velo_co_journal_wait_journaled(BDRVVeloState *s,
                                                uint64_t seq);

/* Wait until every append started so far is journaled (-EIO: one failed). */
int coroutine_fn velo_co_journal_wait_appends(BDRVVeloState *s);

/*
 * Record @seq is in the cache file now; cache_done_seq moves over every
 * record done without a gap.
 */
void velo_journal_cache_done(VeloJournal *j, uint64_t seq);

/* Whether record @seq is in the cache file (or overwritten there). */
bool velo_journal_in_cache(VeloJournal *j, uint64_t seq);

/*
 * Now, in the clock of journal record timestamps (VeloJEnt.time_ns): the
 * wall clock, since records outlive the process and may be recovered on
 * another host.  Ages may come out negative (clock steps, skew).
 */
int64_t velo_jrec_now_ns(void);

/* Check record @e as read into @buf (header and data, e->size bytes). */
bool velo_journal_rec_ok(BDRVVeloState *s, const VeloJEnt *e,
                         const uint8_t *buf);

/* Read record @e (header and data, e->size bytes) into @buf and check it. */
int coroutine_fn velo_co_journal_read(BDRVVeloState *s, const VeloJEnt *e,
                                      uint8_t *buf);

/* Drop records up to @upto (drained) and note the new head. */
int coroutine_fn velo_co_journal_advance(BDRVVeloState *s, uint64_t upto);

/* Write the superblock (j->sb) as it is now, without a flush. */
int coroutine_fn velo_co_journal_save_sb(BDRVVeloState *s);

/*
 * Make this session the disk's writer, once: bump the epoch and write the
 * superblock durably, before the session's first append or WRITE.  Done
 * at a writable open; a node opened read-only and reopened read-write
 * does it at its first write-back write or drain pass.  Without it, that
 * session's records would carry the epoch of the one before, and a stale
 * record of that one left past a hole in the ring would be taken for the
 * next of this one.
 */
int coroutine_fn velo_co_journal_claim(BDRVVeloState *s);

/* Guest flush in write-back: journal, then cache file, then cache_seq. */
int coroutine_fn velo_co_journal_flush(BDRVVeloState *s);

uint64_t velo_journal_used(VeloJournal *j);
void velo_journal_free(BDRVVeloState *s);

/* --- writeback.c: journal glue ------------------------------------------ */

/* Open the optional 'journal' child (write-back needs it). */
int velo_journal_open_child(BlockDriverState *bs, QDict *options,
                            Error **errp);

/* At open: ask the origin, load the journal, replay it after a crash. */
int coroutine_fn velo_co_journal_start(BDRVVeloState *s, Error **errp);

void velo_journal_stats(BDRVVeloState *s, BlockStatsSpecificVelo *v);

/*
 * Note a write in cloud-persist (isolated) to [@offset, +@bytes): those
 * extents go to the journal when write-back resumes.  Persists the resync
 * flag before the first such write.  The caller holds write_lock
 * exclusively.
 */
int coroutine_fn velo_co_resync_mark(BDRVVeloState *s, int64_t offset,
                                     int64_t bytes);

/* Start the resync coroutine if one is due (write-back, flag set). */
void velo_resync_kick(BDRVVeloState *s);
VeloJournalInfo *velo_journal_info(BDRVVeloState *s);

/* --- jseg.c, jseg-opts.c: journal segments in the object store ---------- */

struct VeloObjConfig;

/* Parse objstore.* and rpo-local. */
int velo_jseg_parse_opts(BDRVVeloState *s, QDict *options, Error **errp);
void velo_jseg_free_config(BDRVVeloState *s);

/* Open the configured store (needs s->disk_id and the journal). */
int velo_jseg_start(BDRVVeloState *s, Error **errp);
int velo_jseg_open(BDRVVeloState *s, const struct VeloObjConfig *cfg,
                   uint32_t rpo_local, Error **errp);
void velo_jseg_close(BDRVVeloState *s);

/* From the 1 s tick: upload what is due, delete what is drained. */
void velo_jseg_tick(BDRVVeloState *s);

/* Age of the oldest write that exists on this host only, in ms. */
uint64_t velo_jseg_local_only_ms(BDRVVeloState *s);

/*
 * List the disk's segments (to delete them once drained); with @apply (a
 * new journal), append the records after the origin's from them.
 */
int coroutine_fn velo_co_jseg_recover(BDRVVeloState *s, bool apply,
                                      Error **errp);

/* --- drain.c: draining the journal to the origin ------------------------- */

/* Whether the drain should run in the current write mode. */
bool velo_drain_enabled(BDRVVeloState *s);

/* Schedule a drain pass if there is work and none is running. */
void velo_drain_kick(BDRVVeloState *s);

void velo_drain_attach(BDRVVeloState *s, AioContext *ctx);
void velo_drain_detach(BDRVVeloState *s);

/* Ask the origin for its durable seq and epoch (a FLUSH that changes nothing). */
int coroutine_fn velo_co_origin_state(BDRVVeloState *s, uint64_t *seq,
                                      uint64_t *epoch, Error **errp);

#endif
