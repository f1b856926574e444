/*
 * Velo extent map: what the client knows about each extent of a disk.
 *
 * Pure code (GLib only).  The map is one byte per extent, so a 1 TiB disk
 * with 64 KiB extents costs 16 MiB; counts per state are kept up to date so
 * statistics are O(1).
 *
 *   UNKNOWN --map--> DATA --fetch--> CACHED --guest write--> DIRTY
 *      |              \_____________________guest write______^   ^
 *      +--map--> ZERO ____________________guest write____________|
 *
 * DIRTY is final: pinned data is never evicted nor refetched.  CACHED may go
 * back to DATA (eviction, or a cache entry that fails its check).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_EXTMAP_H
#define VELO_EXTMAP_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum VeloExtState {
    VELO_EXT_UNKNOWN = 0,   /* no map information yet: fetch to find out */
    VELO_EXT_DATA = 1,      /* origin holds data; not cached locally */
    VELO_EXT_ZERO = 2,      /* origin reads as zeros (hole or zero extent) */
    VELO_EXT_CACHED = 3,    /* clean copy in the cache file */
    VELO_EXT_DIRTY = 4,     /* guest-written, pinned in the cache file */
    VELO_EXT__MAX,
} VeloExtState;

typedef struct VeloExtMap {
    uint64_t disk_size;
    uint32_t extent_size;
    uint32_t extent_shift;
    uint64_t n_extents;
    uint8_t *state;                  /* n_extents entries of VeloExtState */
    uint64_t count[VELO_EXT__MAX];   /* invariant: sums to n_extents */
} VeloExtMap;

/* Create a map of all-UNKNOWN extents; @extent_size must be a power of two. */
VeloExtMap *velo_extmap_new(uint64_t disk_size, uint32_t extent_size);
void velo_extmap_free(VeloExtMap *m);

/* Index of the extent holding byte @offset. */
static inline uint64_t velo_extmap_index(const VeloExtMap *m, uint64_t offset)
{
    return offset >> m->extent_shift;
}

/* Bytes in extent @idx (the last one may be short). */
uint32_t velo_extmap_extent_len(const VeloExtMap *m, uint64_t idx);

static inline VeloExtState velo_extmap_get(const VeloExtMap *m, uint64_t idx)
{
    return (VeloExtState)(m->state[idx] & 0x7f);  /* see PARTIAL_ZERO */
}

/* Set extent @idx to @st, keeping the counts right. */
void velo_extmap_set(VeloExtMap *m, uint64_t idx, VeloExtState st);

/*
 * Apply one allocation-map entry [offset, offset+length) of kind zero
 * (@is_zero) or data.  Only UNKNOWN extents change: an extent becomes ZERO
 * only if the entry covers all of it; an extent partly covered by data
 * becomes DATA; a partly covered zero extent stays UNKNOWN until the rest is
 * known, and is DATA if any of it is data.  Entries must arrive in offset
 * order.  Returns the number of extents that changed.
 */
uint64_t velo_extmap_apply(VeloExtMap *m, uint64_t offset, uint64_t length,
                           bool is_zero);

/*
 * Length of the run of extents starting at @idx whose state equals that of
 * @idx, capped at @max extents.
 */
uint64_t velo_extmap_run(const VeloExtMap *m, uint64_t idx, uint64_t max);

/* True if every invariant holds (for assert() and the unit tests). */
bool velo_extmap_check(const VeloExtMap *m);

#endif
