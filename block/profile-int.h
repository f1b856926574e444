/*
 * Velo learned prefetch: the per-node profile state and the hooks that
 * velo.c and fetch.c call (implemented in profile-rec.c), plus the file
 * naming shared with profile-qmp.c.
 *
 * Threading: like the rest of the node state, every field is only touched
 * from the node's AioContext (coroutines, the bottom half, callbacks), or
 * from the main loop while the node is drained or being opened or closed.
 * No lock.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_PROFILE_INT_H
#define VELO_PROFILE_INT_H

#include "velo-int.h"
#include "profile.h"

typedef struct VeloRunPos VeloRunPos;

struct VeloProfileState {
    /* Options (fixed after open). */
    bool enabled;
    int64_t record_ns;          /* recording window after open */
    uint64_t window;            /* replay bytes in flight, at most */
    char *template_name;        /* or NULL */
    char *dir;                  /* template profile directory, or NULL */
    char *disk_path;            /* <cache.file>.profile */
    char *tmpl_path;            /* the template's profile, or NULL */
    int64_t open_ns;
    QEMUBH *bh;                 /* runs the replay pump */

    /* Recording. */
    bool recording;
    bool save_template;         /* also write the template's profile */
    VeloProfile *rec;
    unsigned long *seen;        /* 1 bit per extent: already recorded */
    uint64_t recorded;          /* extents in the written profile */

    /* Replay. */
    bool replaying;
    VeloProfile *play;
    VeloRunPos *pos;            /* play's runs sorted by first extent */
    uint32_t cursor;            /* next run to replay */
    uint32_t cursor_off;        /* extents of that run already dealt with */
    unsigned pass;              /* 0: in order; 1: what catch-up skipped */
    uint64_t inflight;          /* replay bytes being fetched */
    unsigned long *replayed;    /* 1 bit per extent: replayed, not read yet */
    uint64_t replayed_extents, replayed_bytes, useful;
};

/* --- profile-rec.c: called by velo.c ------------------------------------ */

/* Take the profile options out of @options (allocates s->prof). */
int velo_profile_parse_opts(BDRVVeloState *s, QDict *options, Error **errp);

/* With geometry and the map known: load profiles, start recording/replay. */
void velo_profile_start(BDRVVeloState *s);

/* Stop replay, write a recording in progress, free s->prof.  Main loop. */
void velo_profile_close(BDRVVeloState *s);

/* The node moves between AioContexts (the replay bottom half follows). */
void velo_profile_attach(BDRVVeloState *s, AioContext *ctx);
void velo_profile_detach(BDRVVeloState *s);

/* Fill the profile members of the node's statistics. */
void velo_profile_stats(BDRVVeloState *s, BlockStatsSpecificVelo *v);

/* --- profile-rec.c: called by fetch.c ----------------------------------- */

/*
 * A guest read of extents [@first, @last]; @missed: it had to fetch.
 * Records first reads, counts useful replays, catches replay up.
 */
void coroutine_fn velo_profile_read(BDRVVeloState *s, uint64_t first,
                                    uint64_t last, bool missed);

/* Whether a boot profile is being replayed (fetch.c skips guesses). */
bool velo_profile_replaying(BDRVVeloState *s);

/*
 * Replay may run again (a fetch completed, a drain ended, a guest read
 * while replay is idle).  A no-op while disconnected.  Never blocks.
 */
void velo_profile_kick(BDRVVeloState *s);

/* A replay fetch of @n extents from @first was started / completed. */
void velo_profile_fetch_started(BDRVVeloState *s, uint64_t first, uint64_t n);
void velo_profile_fetch_done(BDRVVeloState *s, uint64_t first, uint64_t n,
                             uint64_t bytes, int ret);

/* --- file names (profile-rec.c; profile-qmp.c uses them) ---------------- */

char *velo_profile_disk_path(const char *cache_path);
char *velo_profile_template_path(const char *dir, const char *cache_path,
                                 const char *template_name);

#endif
