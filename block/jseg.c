/*
 * Velo journal segments: copies of the write-back journal in the object
 * store (objstore.h: a local directory or S3), so that a write exists on
 * the local host only for a bounded time (option rpo-local, 30 s), and the
 * disk can be recovered on another host from the object store plus the
 * origin.
 *
 * Upload.  Every second the tick looks at the live records not yet in the
 * store; when the oldest is older than a third of rpo-local, or they add up
 * to VELO_JSEG_EAGER bytes, one coroutine reads them back from the journal
 * node and puts them, as they are in the ring (headers and CRCs), as one
 * object
 *
 *     <prefix>seg/<first seq>-<last seq>-<epoch>      (20 digits each)
 *
 * in a worker thread.  A failed put is retried at the next tick; the stats
 * say why.  Segments whose records the origin has made durable are deleted.
 *
 * At open, the disk's segments are listed, so that those of earlier
 * sessions are deleted too once the origin has their records.
 *
 * Recovery.  A new (empty) journal starts at the origin's durable seq D.
 * With an object store, the segments of the disk are listed and the
 * records D+1, D+2, ... are taken from them in order, preferring the newest
 * epoch where two writers' segments overlap, until the first missing or
 * damaged record: a crash-consistent prefix of the lost host's writes.
 * They are appended to the new journal (same seqs, the new epoch) and then
 * replayed into the cache and drained like any other record.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/memalign.h"
#include "block/block_int.h"
#include "block/thread-pool.h"
#include "velo-int.h"
#include "objstore.h"
#include "bytes.h"
#include "trace.h"

#define VELO_JSEG_EAGER         (16u << 20)     /* upload at once past this */
#define VELO_JSEG_MAX           (64u << 20)     /* bytes per segment */
/* Segments a listing may hold: uploads are deleted once drained, so even
 * hosts that were lost with a backlog leave far fewer. */
#define VELO_JSEG_LIST_MAX      1000000

/* --- worker-thread jobs ---------------------------------------------- */

typedef struct VeloObjJob {
    VeloObjStore *st;
    int op;                     /* 0 put, 1 get, 2 delete, 3 list */
    char *key;
    uint8_t *buf;
    size_t len;
    VeloObjList *list;
    GError *err;
    ssize_t ret;
} VeloObjJob;

static int velo_obj_worker(void *opaque)
{
    VeloObjJob *job = opaque;

    switch (job->op) {
    case 0:
        job->ret = velo_obj_put(job->st, job->key, job->buf, job->len,
                                &job->err);
        break;
    case 1:
        job->ret = velo_obj_get(job->st, job->key, 0, job->len, job->buf,
                                &job->err);
        break;
    case 2:
        job->ret = velo_obj_delete(job->st, job->key, &job->err);
        break;
    default:
        job->ret = velo_obj_list_all(job->st, job->key, VELO_JSEG_LIST_MAX,
                                     &job->list, &job->err);
        break;
    }
    return 0;
}

static ssize_t coroutine_fn velo_co_obj(BDRVVeloState *s, VeloObjJob *job)
{
    job->st = s->jseg.store;
    thread_pool_submit_co(aio_get_thread_pool(s->ctx), velo_obj_worker, job);
    return job->ret;
}

static char *velo_jseg_key(BDRVVeloState *s, uint64_t first, uint64_t last,
                           uint64_t epoch)
{
    return g_strdup_printf("%sseg/%020" PRIu64 "-%020" PRIu64 "-%020" PRIu64,
                           s->jseg.prefix, first, last, epoch);
}

static void velo_jseg_set_error(BDRVVeloState *s, GError *err)
{
    g_free(s->jseg.last_error);
    s->jseg.last_error = g_strdup(err ? err->message : "?");
    trace_velo_jseg_error(s, s->jseg.last_error);
    g_clear_error(&err);
}

/* --- upload ----------------------------------------------------------- */

/* Delete the segments whose records are all durable on the origin. */
static void coroutine_fn velo_co_jseg_gc(BDRVVeloState *s)
{
    VeloJournal *j = s->jrn;
    uint64_t durable = j->sb.head_seq - 1;

    while (s->jseg.segs && s->jseg.segs->len) {
        VeloJSeg *g = &g_array_index(s->jseg.segs, VeloJSeg, 0);
        VeloObjJob job = { .op = 2 };

        if (g->last > durable) {
            break;
        }
        job.key = velo_jseg_key(s, g->first, g->last, g->epoch);
        if (velo_co_obj(s, &job) < 0) {
            velo_jseg_set_error(s, job.err);
            g_free(job.key);
            break;
        }
        g_free(job.key);
        g_array_remove_index(s->jseg.segs, 0);
    }
}

static void coroutine_fn velo_jseg_upload_co(void *opaque)
{
    BDRVVeloState *s = opaque;
    VeloJournal *j = s->jrn;
    uint64_t first = 0, last = 0, size = 0, pos = 0;
    VeloObjJob job = { .op = 0 };
    g_autoptr(GArray) recs = g_array_new(false, false, sizeof(VeloJEnt));
    GList *l;
    unsigned i;
    int ret = 0;

    velo_co_jseg_gc(s);
    /*
     * Copies, taken without a yield: the drain may free the entries while
     * the reads below yield (a freed record's room may then hold another
     * record, which its check refuses: the upload fails and is retried).
     */
    for (l = j->ents.head; l; l = l->next) {
        VeloJEnt *e = l->data;
        if (e->seq <= s->jseg.uploaded_seq) {
            continue;
        }
        if (size && size + e->size > VELO_JSEG_MAX) {
            break;
        }
        if (!first) {
            first = e->seq;
        }
        last = e->seq;
        size += e->size;
        g_array_append_val(recs, *e);
    }
    if (!size) {
        goto out;
    }
    job.buf = qemu_try_blockalign(j->child->bs, size);
    if (!job.buf) {
        goto out;
    }
    for (i = 0; i < recs->len && ret == 0; i++) {
        VeloJEnt *e = &g_array_index(recs, VeloJEnt, i);
        ret = velo_co_journal_read(s, e, job.buf + pos);
        pos += e->size;
    }
    if (ret < 0 || pos != size) {
        g_free(s->jseg.last_error);
        s->jseg.last_error = g_strdup_printf("cannot read back journal "
                                             "records %" PRIu64 "..%" PRIu64,
                                             first, last);
        goto out;
    }
    job.len = size;
    job.key = velo_jseg_key(s, first, last, j->sb.epoch);
    if (velo_co_obj(s, &job) < 0) {
        velo_jseg_set_error(s, job.err);
        goto out;
    }
    trace_velo_jseg_put(s, first, last, size);
    s->jseg.uploaded_seq = last;
    s->jseg.segments++;
    s->jseg.bytes += size;
    g_free(s->jseg.last_error);
    s->jseg.last_error = NULL;
    g_array_append_val(s->jseg.segs, ((VeloJSeg) {
        .first = first, .last = last, .epoch = j->sb.epoch,
    }));

out:
    g_free(job.key);
    qemu_vfree(job.buf);
    s->jseg.running = false;
    bdrv_dec_in_flight(s->bs);
}

/* The oldest live record not yet in the object store, or NULL. */
static VeloJEnt *velo_jseg_oldest(BDRVVeloState *s, uint64_t *pending)
{
    VeloJEnt *oldest = NULL;
    GList *l;

    *pending = 0;
    for (l = s->jrn->ents.tail; l; l = l->prev) {
        VeloJEnt *e = l->data;
        if (e->seq <= s->jseg.uploaded_seq) {
            break;
        }
        oldest = e;
        *pending += e->size;
    }
    return oldest;
}

void velo_jseg_tick(BDRVVeloState *s)
{
    int64_t now = velo_jrec_now_ns();
    uint64_t pending;
    VeloJEnt *oldest;

    if (!s->jseg.store || !s->jrn || s->jseg.running || s->drained ||
        s->closing || s->jrn->fenced) {
        return;                 /* fenced: its records are no one's now */
    }
    oldest = velo_jseg_oldest(s, &pending);
    if (!oldest && (!s->jseg.segs->len ||
        g_array_index(s->jseg.segs, VeloJSeg, 0).last >=
        s->jrn->sb.head_seq)) {
        return;                 /* nothing to upload or delete */
    }
    if (oldest && pending < VELO_JSEG_EAGER &&
        now - (int64_t)oldest->time_ns <
        (int64_t)s->jseg.rpo_local * NANOSECONDS_PER_SECOND / 3) {
        return;
    }
    s->jseg.running = true;
    bdrv_inc_in_flight(s->bs);
    aio_co_enter(s->ctx, qemu_coroutine_create(velo_jseg_upload_co, s));
}

uint64_t velo_jseg_local_only_ms(BDRVVeloState *s)
{
    int64_t now = velo_jrec_now_ns();
    uint64_t pending;
    VeloJEnt *oldest;

    if (!s->jrn) {
        return 0;
    }
    oldest = s->jseg.store ? velo_jseg_oldest(s, &pending)
                           : g_queue_peek_head(&s->jrn->ents);
    return oldest && now > (int64_t)oldest->time_ns ?
           (now - oldest->time_ns) / SCALE_MS : 0;
}

/* --- recovery --------------------------------------------------------- */

typedef struct VeloSegKey {
    uint64_t first, last, epoch;
    uint64_t size;
    char *key;
} VeloSegKey;

static gint velo_seg_last_cmp(gconstpointer a, gconstpointer b)
{
    const VeloJSeg *x = a, *y = b;

    return x->last < y->last ? -1 : x->last > y->last;
}

static gint velo_segkey_cmp(gconstpointer a, gconstpointer b)
{
    const VeloSegKey *x = a, *y = b;

    if (x->first != y->first) {
        return x->first < y->first ? -1 : 1;
    }
    return x->epoch > y->epoch ? -1 : x->epoch < y->epoch;
}

/*
 * Append the records of segment @buf (@len bytes) from seq *@next on, and
 * before @limit, in order, to the journal.  Epochs must not go down from
 * *@epoch (the last applied record's): an older writer's records after a
 * newer one's are not the disk's history.  Returns 0 when the segment
 * ended cleanly or reached @limit, 1 at a damaged record, a hole or an
 * older epoch (stop recovering), or -errno.
 */
static int coroutine_fn velo_co_jseg_apply(BDRVVeloState *s, uint8_t *buf,
                                           size_t len, uint64_t limit,
                                           uint64_t *next, uint64_t *epoch,
                                           uint64_t *n)
{
    size_t pos = 0;

    while (pos + VELO_JREC_HDR_SIZE <= len) {
        const char *why;
        QEMUIOVector qiov;
        uint64_t size;
        VeloJRec r;
        int ret;

        if (!velo_jrec_decode(buf + pos, s->disk_size, &r, &why) ||
            r.type == VELO_JREC_WRAP) {
            return 1;
        }
        size = velo_jrec_size(velo_jrec_data_len(&r));
        if (pos + size > len ||
            !velo_jrec_check_data(&r, buf + pos + VELO_JREC_HDR_SIZE)) {
            return 1;
        }
        if (r.seq < *next) {
            pos += size;
            continue;           /* the origin has it already */
        }
        if (r.seq >= limit) {
            return 0;           /* a newer writer's segment takes over */
        }
        if (r.seq > *next || r.epoch < *epoch) {
            return 1;           /* a hole, or an older writer's record */
        }
        *epoch = r.epoch;
        qemu_iovec_init_buf(&qiov, buf + pos + VELO_JREC_HDR_SIZE, r.length);
        ret = velo_co_journal_append(s, r.type, r.offset, r.length,
                                     r.type == VELO_JREC_WRITE ? &qiov : NULL,
                                     0, false, NULL);
        if (ret < 0) {
            return ret;
        }
        (*next)++;
        (*n)++;
        pos += size;
    }
    return pos == len ? 0 : 1;
}

int coroutine_fn velo_co_jseg_recover(BDRVVeloState *s, bool apply,
                                      Error **errp)
{
    VeloJournal *j = s->jrn;
    g_autoptr(GArray) keys = g_array_new(false, true, sizeof(VeloSegKey));
    VeloObjJob job = { .op = 3 };
    uint64_t next = j->next_seq, n = 0, epoch = 0;
    size_t prefix_len = strlen(s->jseg.prefix) + 4;
    unsigned i;
    int ret = 0;

    job.key = g_strdup_printf("%sseg/", s->jseg.prefix);
    if (velo_co_obj(s, &job) < 0) {
        error_setg(errp, "velo: cannot list the journal segments in the "
                   "object store: %s", job.err ? job.err->message : "?");
        g_clear_error(&job.err);
        g_free(job.key);
        return -EIO;
    }
    g_free(job.key);
    for (i = 0; i < job.list->items->len; i++) {
        VeloObjInfo *o = &g_array_index(job.list->items, VeloObjInfo, i);
        VeloSegKey k = { .size = o->size };
        if (sscanf(o->key + prefix_len, "%20" SCNu64 "-%20" SCNu64 "-%20"
                   SCNu64, &k.first, &k.last, &k.epoch) != 3 ||
            k.first > k.last) {
            continue;
        }
        /* Every segment is deleted once the origin has its records. */
        g_array_append_val(s->jseg.segs, ((VeloJSeg) {
            .first = k.first, .last = k.last, .epoch = k.epoch,
        }));
        if (apply && k.last >= next && o->size &&
            o->size <= VELO_JSEG_MAX + VELO_JREC_ALIGN) {
            k.key = g_strdup(o->key);
            g_array_append_val(keys, k);
        }
    }
    velo_obj_list_free(job.list);
    g_array_sort(keys, velo_segkey_cmp);
    g_array_sort(s->jseg.segs, velo_seg_last_cmp);

    /*
     * Seq by seq from @next, the records of the newest epoch's segment that
     * holds it, up to where a segment of a newer epoch starts: writers that
     * overlap (a host whose disk was taken over kept uploading) never get
     * their records mixed.
     */
    while (ret == 0) {
        VeloSegKey *k = NULL;
        VeloObjJob get = { .op = 1 };
        uint64_t limit = UINT64_MAX, before = next;

        for (i = 0; i < keys->len; i++) {
            VeloSegKey *c = &g_array_index(keys, VeloSegKey, i);
            if (c->first <= next && c->last >= next &&
                (!k || c->epoch > k->epoch)) {
                k = c;
            }
        }
        if (!k) {
            break;              /* a hole: the rest is not consistent */
        }
        for (i = 0; i < keys->len; i++) {
            VeloSegKey *c = &g_array_index(keys, VeloSegKey, i);
            if (c->epoch > k->epoch && c->first > next &&
                c->first <= k->last) {
                limit = MIN(limit, c->first);
            }
        }
        get.key = k->key;
        get.len = k->size;
        get.buf = qemu_try_blockalign(j->child->bs, k->size);
        if (!get.buf) {
            ret = -ENOMEM;
            break;
        }
        if (velo_co_obj(s, &get) != (ssize_t)k->size) {
            warn_report("velo: journal segment '%s' unreadable (%s); "
                        "recovery stops before seq %" PRIu64, k->key,
                        get.err ? get.err->message : "short", next);
            g_clear_error(&get.err);
            qemu_vfree(get.buf);
            break;
        }
        ret = velo_co_jseg_apply(s, get.buf, k->size, limit, &next, &epoch,
                                 &n);
        qemu_vfree(get.buf);
        if (ret == 1 || (ret == 0 && next == before)) {
            ret = 0;            /* damaged, or short of what its name says */
            break;
        }
    }
    for (i = 0; i < keys->len; i++) {
        g_free(g_array_index(keys, VeloSegKey, i).key);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "velo: recovering journal records "
                         "from the object store failed");
        return ret;
    }
    s->jseg.recovered = n;
    s->jseg.uploaded_seq = next - 1;    /* those are in the store already */
    trace_velo_jseg_recover(s, n, next - 1);
    return 0;
}

/* --- life cycle ------------------------------------------------------- */

int velo_jseg_open(BDRVVeloState *s, const struct VeloObjConfig *cfg,
                   uint32_t rpo_local, Error **errp)
{
    GError *err = NULL;
    g_autofree char *hex = NULL;

    s->jseg.store = velo_obj_open(cfg, &err);
    if (!s->jseg.store) {
        error_setg(errp, "velo: objstore: %s", err->message);
        g_error_free(err);
        return -EIO;
    }
    hex = g_malloc(2 * sizeof(s->disk_id) + 1);
    velo_hex(hex, s->disk_id, sizeof(s->disk_id));
    s->jseg.prefix = g_strdup_printf("velo/%s/", hex);
    s->jseg.rpo_local = rpo_local;
    s->jseg.segs = g_array_new(false, false, sizeof(VeloJSeg));
    return 0;
}

void velo_jseg_close(BDRVVeloState *s)
{
    velo_obj_close(s->jseg.store);
    s->jseg.store = NULL;
    g_free(s->jseg.prefix);
    s->jseg.prefix = NULL;
    g_free(s->jseg.last_error);
    s->jseg.last_error = NULL;
    if (s->jseg.segs) {
        g_array_free(s->jseg.segs, true);
        s->jseg.segs = NULL;
    }
}
