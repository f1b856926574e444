/*
 * Velo learned prefetch: record a disk's boot profile (the order in which
 * its extents are first read) and replay a stored one as background
 * prefetch at the next start of that disk or of a sibling clone.
 *
 * Files (format: profile.[ch], docs/profile.md):
 *
 *   <cache.file>.profile                    the disk's own profile
 *   <profile-dir>/<template>.template.profile   the template's, if template=
 *
 * At open, the own profile is replayed if it is usable (same disk id, size
 * and extent size), else the template's (same size and extent size).  A
 * disk without a usable own profile records one: every guest read appends
 * the extents it touches for the first time, until profile-record-time
 * seconds after open; the profile is then written atomically (and, if the
 * template had no usable profile, as the template's too).  A node closed
 * earlier writes what it has.  An existing profile is never refreshed: drop
 * it (QMP velo-profile-drop, velo-profile drop) to record again.
 *
 * Replay walks the profile in order:
 *
 *   cursor --> [run][run][run] ... [run]  --> end of pass 0: rewind for
 *                  |                          pass 1 (runs skipped by a
 *        velo_start_fetches(PROFILE)          catch-up), then done
 *
 * - It keeps at most profile-inflight bytes of READs (<= 256 KiB each) in
 *   flight, and issues nothing while a demand fetch is in flight, so a
 *   guest miss only ever queues behind what replay already sent.
 * - Extents cached, zero, busy or being written are skipped; a guest read
 *   of an extent being replayed joins that fetch (busy table).
 * - A guest miss on an extent further down the profile means the guest got
 *   ahead: the cursor jumps there (catch-up); what it skipped comes in
 *   pass 1 if still missing.
 * - It is driven by a bottom half in the node's AioContext, kicked when a
 *   replay fetch or the last demand fetch completes, at drain end, and by
 *   a guest read while it has nothing in flight.  It issues nothing while
 *   the node is drained, closing or disconnected.
 *
 * Sequential readahead and the neighbour prefetch run as before.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qmp/qdict.h"
#include "qemu/bitmap.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/option.h"
#include "qemu/units.h"
#include "block/thread-pool.h"
#include "velo-int.h"
#include "profile.h"
#include "profile-int.h"
#include "trace.h"

#define VELO_PROFILE_RECORD_TIME    120             /* seconds */
#define VELO_PROFILE_INFLIGHT       (1 * MiB)

static QemuOptsList velo_profile_opts = {
    .name = "velo-profile",
    .head = QTAILQ_HEAD_INITIALIZER(velo_profile_opts.head),
    .desc = {
        { .name = "profile", .type = QEMU_OPT_BOOL,
          .help = "Record and replay boot profiles" },
        { .name = "profile-record-time", .type = QEMU_OPT_NUMBER,
          .help = "Seconds after open during which reads are recorded" },
        { .name = "profile-inflight", .type = QEMU_OPT_SIZE,
          .help = "Most profile replay bytes in flight" },
        { .name = "template", .type = QEMU_OPT_STRING,
          .help = "Template this disk was cloned from" },
        { .name = "profile-dir", .type = QEMU_OPT_STRING,
          .help = "Directory of template profiles" },
        { /* end of list */ }
    },
};

/* A replayed profile's runs sorted by first extent, for catch-up lookups. */
typedef struct VeloRunPos {
    uint64_t first;
    uint32_t count;
    uint32_t run;               /* index in the profile's order */
} VeloRunPos;

int velo_profile_parse_opts(BDRVVeloState *s, QDict *options, Error **errp)
{
    QemuOpts *opts = qemu_opts_create(&velo_profile_opts, NULL, 0,
                                      &error_abort);
    VeloProfileState *p = g_new0(VeloProfileState, 1);
    const char *str;
    uint64_t n;
    int ret = -EINVAL;

    s->prof = p;
    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        goto out;
    }
    p->enabled = qemu_opt_get_bool(opts, "profile", true);
    n = qemu_opt_get_number(opts, "profile-record-time",
                            VELO_PROFILE_RECORD_TIME);
    if (n > 86400) {
        error_setg(errp, "velo: profile-record-time must be at most 86400 s");
        goto out;
    }
    p->record_ns = n * NANOSECONDS_PER_SECOND;
    p->window = qemu_opt_get_size(opts, "profile-inflight",
                                  VELO_PROFILE_INFLIGHT);
    if (p->window < 64 * KiB || p->window > 64 * MiB) {
        error_setg(errp, "velo: profile-inflight must be from 64 KiB to "
                   "64 MiB");
        goto out;
    }
    str = qemu_opt_get(opts, "template");
    if (str) {
        if (!velo_profile_name_valid(str)) {
            error_setg(errp, "velo: bad template name '%s': use 1 to %d of "
                       "[A-Za-z0-9._-], not starting with a dot", str,
                       VELO_PROFILE_NAME_MAX);
            goto out;
        }
        p->template_name = g_strdup(str);
    }
    str = qemu_opt_get(opts, "profile-dir");
    if (str && !*str) {
        error_setg(errp, "velo: profile-dir must not be empty");
        goto out;
    }
    p->dir = g_strdup(str);
    ret = 0;
out:
    qemu_opts_del(opts);
    return ret;
}

char *velo_profile_disk_path(const char *cache_path)
{
    return g_strconcat(cache_path, VELO_PROFILE_SUFFIX, NULL);
}

char *velo_profile_template_path(const char *dir, const char *cache_path,
                                 const char *template_name)
{
    g_autofree char *def = g_path_get_dirname(cache_path);
    g_autofree char *base = g_strconcat(template_name, ".template",
                                        VELO_PROFILE_SUFFIX, NULL);

    return g_build_filename(dir ? dir : def, base, NULL);
}

/*
 * Load @path for this disk.  Returns the profile, or NULL with *@reusable
 * telling whether recording may replace the file (absent, torn, or for
 * another disk; never a foreign file or one we cannot read).
 */
static VeloProfile *load_for_disk(BDRVVeloState *s, const char *path,
                                  bool check_id, bool *reusable)
{
    g_autofree char *err = NULL;
    VeloProfile *pr = NULL;
    int ret = velo_profile_load(path, &pr, &err);

    *reusable = ret == -ENOENT || ret == -EINVAL;
    if (ret == -ENOENT) {
        return NULL;
    }
    if (ret < 0) {
        warn_report("velo: ignoring boot profile: %s", err);
        trace_velo_profile_rejected(s, path, err);
        return NULL;
    }
    if (pr->disk_size != s->disk_size || pr->extent_size != s->extent_size ||
        (check_id && memcmp(pr->disk_id, s->disk_id, sizeof(s->disk_id)))) {
        /*
         * Left over from a deleted cache file that was reused for another
         * disk: expected, so only traced; recording replaces it.
         */
        trace_velo_profile_rejected(s, path, "recorded on another disk");
        velo_profile_free(pr);
        *reusable = true;
        return NULL;
    }
    return pr;
}

static int velo_run_pos_cmp(const void *a, const void *b)
{
    const VeloRunPos *x = a, *y = b;

    return x->first < y->first ? -1 : x->first > y->first;
}

static void velo_profile_bh(void *opaque);

static void start_replay(BDRVVeloState *s, VeloProfile *pr, const char *path)
{
    VeloProfileState *p = s->prof;
    uint32_t i;

    p->play = pr;
    p->replaying = true;
    p->pos = g_new(VeloRunPos, MAX(pr->n_runs, 1));
    for (i = 0; i < pr->n_runs; i++) {
        p->pos[i] = (VeloRunPos) {
            .first = pr->runs[i].first, .count = pr->runs[i].count, .run = i,
        };
    }
    qsort(p->pos, pr->n_runs, sizeof(*p->pos), velo_run_pos_cmp);
    p->replayed = bitmap_new(s->map->n_extents);
    trace_velo_profile_replay_start(s, path, pr->n_extents, pr->n_runs);
}

void velo_profile_start(BDRVVeloState *s)
{
    VeloProfileState *p = s->prof;
    VeloProfile *own, *tmpl = NULL;
    bool own_reusable, tmpl_reusable = false;

    if (!p->enabled) {
        return;
    }
    if (!s->cache_path) {
        /* cache-node: no file name to keep a profile beside. */
        p->enabled = false;
        trace_velo_profile_record_start(s, "(none: cache-node)");
        return;
    }
    p->disk_path = velo_profile_disk_path(s->cache_path);
    own = load_for_disk(s, p->disk_path, true, &own_reusable);
    if (p->template_name) {
        p->tmpl_path = velo_profile_template_path(p->dir, s->cache_path,
                                                  p->template_name);
        tmpl = load_for_disk(s, p->tmpl_path, false, &tmpl_reusable);
    }
    if (own) {
        start_replay(s, own, p->disk_path);
        velo_profile_free(tmpl);
    } else if (tmpl) {
        start_replay(s, tmpl, p->tmpl_path);
    }
    if (!own && own_reusable) {
        p->recording = true;
        p->save_template = p->template_name && tmpl_reusable && !tmpl;
        p->rec = velo_profile_new(s->disk_size, s->extent_size, s->disk_id,
                                  p->template_name, 0);
        p->seen = bitmap_new(s->map->n_extents);
        trace_velo_profile_record_start(s, p->disk_path);
    }
    p->open_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    p->bh = aio_bh_new(s->ctx, velo_profile_bh, s);
    if (p->replaying) {
        qemu_bh_schedule(p->bh);
    }
}

/* --- recording ---------------------------------------------------------- */

typedef struct VeloProfileSave {
    BDRVVeloState *s;
    VeloProfile *rec;
    char *disk_path;
    char *tmpl_path;            /* also save a template copy here, or NULL */
    char *err;
    int ret;
} VeloProfileSave;

/* Write the files of @job; may block (a worker thread, or at close). */
static int velo_profile_save_files(void *opaque)
{
    VeloProfileSave *job = opaque;

    job->rec->recorded = g_get_real_time() / G_USEC_PER_SEC;
    job->ret = velo_profile_save(job->disk_path, job->rec, &job->err);
    if (job->ret == 0 && job->tmpl_path) {
        g_autoptr(VeloProfile) t = velo_profile_copy(job->rec,
                                                     VELO_PROFILE_F_TEMPLATE);
        g_autofree char *dir = g_path_get_dirname(job->tmpl_path);

        if (g_mkdir_with_parents(dir, 0755) < 0) {
            job->ret = -errno;
            job->err = g_strdup_printf("cannot create profile directory "
                                       "'%s': %s", dir, g_strerror(errno));
            return job->ret;
        }
        job->ret = velo_profile_save(job->tmpl_path, t, &job->err);
    }
    return job->ret;
}

static void velo_profile_save_done(BDRVVeloState *s, VeloProfileSave *job)
{
    if (job->ret < 0) {
        warn_report("velo: %s", job->err);
    } else {
        trace_velo_profile_saved(s, job->disk_path, job->rec->n_extents,
                                 job->rec->n_runs, job->tmpl_path ?
                                 job->tmpl_path : "");
    }
    velo_profile_free(job->rec);
    g_free(job->disk_path);
    g_free(job->tmpl_path);
    g_free(job->err);
    g_free(job);
}

/* End recording; hands back the files to write, or NULL if nothing to. */
static VeloProfileSave *velo_profile_stop_recording(BDRVVeloState *s)
{
    VeloProfileState *p = s->prof;
    VeloProfileSave *job;

    if (!p->recording) {
        return NULL;
    }
    p->recording = false;
    g_clear_pointer(&p->seen, g_free);
    if (!p->rec->n_extents) {
        g_clear_pointer(&p->rec, velo_profile_free);
        return NULL;
    }
    job = g_new0(VeloProfileSave, 1);
    job->s = s;
    job->rec = g_steal_pointer(&p->rec);
    job->disk_path = g_strdup(p->disk_path);
    job->tmpl_path = p->save_template ? g_strdup(p->tmpl_path) : NULL;
    p->recorded = job->rec->n_extents;
    return job;
}

static void coroutine_fn velo_profile_save_entry(void *opaque)
{
    VeloProfileSave *job = opaque;
    BDRVVeloState *s = job->s;

    thread_pool_submit_co(aio_get_thread_pool(s->ctx),
                          velo_profile_save_files, job);
    velo_profile_save_done(s, job);
    bdrv_dec_in_flight(s->bs);
}

/* --- replay ------------------------------------------------------------- */

/* The window counts bytes on the wire (velo_wire_window). */
static uint64_t velo_profile_window(BDRVVeloState *s)
{
    return velo_wire_window(s, s->prof->window);
}

/* Issue replay fetches until the window is full or the profile is done. */
static void velo_profile_pump(BDRVVeloState *s)
{
    VeloProfileState *p = s->prof;

    while (p->replaying && s->connected && !s->drained && !s->closing &&
           !s->demand_fetches && p->inflight < velo_profile_window(s)) {
        VeloProfileRun *r;
        uint64_t idx, n, done;

        if (p->cursor >= p->play->n_runs) {
            if (p->pass == 0) {
                p->pass = 1;
                p->cursor = 0;
                p->cursor_off = 0;
                continue;
            }
            if (p->inflight) {
                return;         /* done once the last fetches complete */
            }
            p->replaying = false;
            trace_velo_profile_replay_done(s, p->replayed_extents,
                                           p->useful);
            return;
        }
        r = &p->play->runs[p->cursor];
        idx = r->first + p->cursor_off;
        n = MIN(r->count - p->cursor_off,
                DIV_ROUND_UP(velo_profile_window(s) - p->inflight,
                             s->extent_size));
        done = velo_start_fetches(s, idx, n, VELO_FETCH_PROFILE);
        p->cursor_off += MAX(done, idx + 1) - idx;
        if (p->cursor_off >= r->count) {
            p->cursor++;
            p->cursor_off = 0;
        }
    }
}

static void velo_profile_bh(void *opaque)
{
    velo_profile_pump(opaque);
}

bool velo_profile_replaying(BDRVVeloState *s)
{
    return s->prof && s->prof->replaying;
}

void velo_profile_kick(BDRVVeloState *s)
{
    VeloProfileState *p = s->prof;

    if (p && p->bh && p->replaying && s->connected) {
        qemu_bh_schedule(p->bh);
    }
}

void velo_profile_fetch_started(BDRVVeloState *s, uint64_t first, uint64_t n)
{
    VeloProfileState *p = s->prof;

    p->inflight += n * s->extent_size;
    bitmap_set(p->replayed, first, n);
}

void velo_profile_fetch_done(BDRVVeloState *s, uint64_t first, uint64_t n,
                             uint64_t bytes, int ret)
{
    VeloProfileState *p = s->prof;

    p->inflight -= n * s->extent_size;
    if (ret < 0) {
        bitmap_clear(p->replayed, first, n);
    } else {
        p->replayed_extents += n;
        p->replayed_bytes += bytes;
    }
    velo_profile_kick(s);
}

/* The guest missed @idx: jump the cursor there if replay is behind it. */
static void velo_profile_catch_up(BDRVVeloState *s, uint64_t idx)
{
    VeloProfileState *p = s->prof;
    size_t lo = 0, hi = p->play->n_runs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->pos[mid].first <= idx) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return;
    }
    lo--;
    if (idx < p->pos[lo].first + p->pos[lo].count &&
        p->pass == 0 && p->pos[lo].run > p->cursor) {
        trace_velo_profile_catch_up(s, p->cursor, p->pos[lo].run);
        p->cursor = p->pos[lo].run;
        p->cursor_off = idx - p->pos[lo].first;
    }
}

/* --- the read hook ------------------------------------------------------ */

void coroutine_fn velo_profile_read(BDRVVeloState *s, uint64_t first,
                                    uint64_t last, bool missed)
{
    VeloProfileState *p = s->prof;
    uint64_t idx;

    if (!p || !p->enabled) {
        return;
    }
    if (p->replayed) {
        for (idx = first; idx <= last; idx++) {
            if (test_and_clear_bit(idx, p->replayed)) {
                p->useful++;
            }
        }
        if (missed && p->replaying) {
            velo_profile_catch_up(s, first);
        }
        if (p->replaying && !p->inflight) {
            /* Idle: it may have stopped for a lost connection, now back. */
            velo_profile_kick(s);
        }
    }
    if (p->recording) {
        int64_t ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - p->open_ns;
        VeloProfileSave *job;

        if (ns < p->record_ns) {
            for (idx = first; idx <= last; idx++) {
                if (!test_and_set_bit(idx, p->seen)) {
                    velo_profile_append(p->rec, idx, ns / SCALE_MS);
                }
            }
            return;
        }
        job = velo_profile_stop_recording(s);
        if (job) {
            /* Written by a worker thread; a drain waits for it. */
            bdrv_inc_in_flight(s->bs);
            aio_co_enter(s->ctx,
                         qemu_coroutine_create(velo_profile_save_entry, job));
        }
    }
}

/* --- node life cycle ---------------------------------------------------- */

void velo_profile_attach(BDRVVeloState *s, AioContext *ctx)
{
    VeloProfileState *p = s->prof;

    if (p && p->enabled && !p->bh && p->disk_path) {
        p->bh = aio_bh_new(ctx, velo_profile_bh, s);
        velo_profile_kick(s);
    }
}

void velo_profile_detach(BDRVVeloState *s)
{
    VeloProfileState *p = s->prof;

    if (p && p->bh) {
        qemu_bh_delete(p->bh);
        p->bh = NULL;
    }
}

void velo_profile_close(BDRVVeloState *s)
{
    VeloProfileState *p = s->prof;
    VeloProfileSave *job;

    if (!p) {
        return;
    }
    velo_profile_detach(s);
    p->replaying = false;
    job = velo_profile_stop_recording(s);
    if (job) {
        velo_profile_save_files(job);
        velo_profile_save_done(s, job);
    }
    velo_profile_free(p->play);
    velo_profile_free(p->rec);
    g_free(p->pos);
    g_free(p->replayed);
    g_free(p->seen);
    g_free(p->disk_path);
    g_free(p->tmpl_path);
    g_free(p->template_name);
    g_free(p->dir);
    g_free(p);
    s->prof = NULL;
}

void velo_profile_stats(BDRVVeloState *s, BlockStatsSpecificVelo *v)
{
    VeloProfileState *p = s->prof;

    if (!p) {
        return;
    }
    v->profile_recording = p->recording;
    v->profile_recorded = p->rec ? p->rec->n_extents : p->recorded;
    v->profile_replaying = p->replaying;
    v->profile_replayed = p->replayed_extents;
    v->profile_replay_bytes = p->replayed_bytes;
    v->profile_useful = p->useful;
}
