/*
 * Velo boot profile format: the ordered list of extents a disk read first
 * during a boot, its encoder, its checking decoder and atomic file I/O.
 *
 * Pure code (GLib only), shared by the driver (profile-rec.c, profile-qmp.c)
 * and the velo-profile tool.  docs/profile.md specifies the layout; every
 * field is big-endian:
 *
 *   0      header (160 bytes, ends with its CRC-32C)
 *   160    n_runs entries of 16 bytes: first extent (8), count (4),
 *          milliseconds from open to the run's first read (4)
 *   end-4  CRC-32C of the entries
 *
 * The decoder trusts nothing: every length, count and extent range is
 * checked against the header and the file size, so a hostile or torn file
 * is refused with a reason and never read out of bounds.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_PROFILE_H
#define VELO_PROFILE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define VELO_PROFILE_MAGIC      "VELOPROF"
#define VELO_PROFILE_VERSION    1
#define VELO_PROFILE_HDR_SIZE   160
#define VELO_PROFILE_ENTRY_SIZE 16
#define VELO_PROFILE_MAX_RUNS   (1u << 22)      /* 64 MiB of entries */
#define VELO_PROFILE_NAME_MAX   64              /* template name, bytes */
#define VELO_PROFILE_SUFFIX     ".profile"

/* Header flags. */
#define VELO_PROFILE_F_TEMPLATE 1u              /* a template's profile */
#define VELO_PROFILE_F_ALL      VELO_PROFILE_F_TEMPLATE

typedef struct VeloProfileRun {
    uint64_t first;             /* first extent index */
    uint32_t count;             /* consecutive extents, >= 1 */
    uint32_t time_ms;           /* from open to the first read of @first */
} VeloProfileRun;

typedef struct VeloProfile {
    uint32_t flags;
    uint32_t extent_size;
    uint64_t disk_size;
    uint64_t n_extents;         /* sum of the runs' counts */
    uint64_t recorded;          /* end of recording, Unix seconds */
    uint32_t duration_ms;       /* open to the last recorded extent */
    uint8_t disk_id[16];
    char template_name[VELO_PROFILE_NAME_MAX + 1];     /* "" if none */
    VeloProfileRun *runs;
    uint32_t n_runs;
    uint32_t alloc_runs;
} VeloProfile;

/* A new empty profile for a disk; @template_name may be NULL. */
VeloProfile *velo_profile_new(uint64_t disk_size, uint32_t extent_size,
                              const uint8_t *disk_id,
                              const char *template_name, uint32_t flags);
void velo_profile_free(VeloProfile *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VeloProfile, velo_profile_free)

/* A deep copy of @p (with other @flags). */
VeloProfile *velo_profile_copy(const VeloProfile *p, uint32_t flags);

/* Number of extents of the disk @p was recorded on. */
uint64_t velo_profile_disk_extents(const VeloProfile *p);

/* Bytes of disk that @p's runs cover (the last extent may be partial). */
uint64_t velo_profile_bytes(const VeloProfile *p);

/*
 * Append extent @idx, first read @time_ms after open: it extends the last
 * run when it follows it.  Returns false (and changes nothing) when @idx is
 * beyond the disk or the profile is full.  The caller appends each extent
 * once.
 */
bool velo_profile_append(VeloProfile *p, uint64_t idx, uint32_t time_ms);

/* Encode @p; returns a g_malloc'ed buffer of *@len bytes. */
uint8_t *velo_profile_encode(const VeloProfile *p, size_t *len);

/* Decode and check a whole file's bytes; NULL with @why on any problem. */
VeloProfile *velo_profile_decode(const uint8_t *buf, size_t len,
                                 const char **why);

/* Whether @name may be a template name: [A-Za-z0-9._-], no leading dot. */
bool velo_profile_name_valid(const char *name);

/*
 * Read and decode the profile file @path.  Returns 0, or -errno with a
 * message in *@err (g_free it): -ENOENT when there is no such file, -EINVAL
 * when it is not a valid profile, -ENOTSUP when it does not even start with
 * the profile magic (not a velo profile at all).
 */
int velo_profile_load(const char *path, VeloProfile **out, char **err);

/*
 * Write @p to @path atomically: a temporary file beside it, fsync, rename,
 * fsync of the directory.  Returns 0 or -errno with a message in *@err.
 */
int velo_profile_save(const char *path, const VeloProfile *p, char **err);

/*
 * Delete the profile file @path, refusing (-ENOTSUP) a file that does not
 * start with the profile magic.  Returns 0 or -errno with *@err.
 */
int velo_profile_unlink(const char *path, char **err);

#endif
