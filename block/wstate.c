/*
 * Velo write-state file format (see wstate.h): slot codec and choice.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "wstate.h"
#include "bytes.h"
#include "cachefmt.h"

void velo_wst_encode(uint8_t *buf, const VeloWState *st)
{
    memset(buf, 0, VELO_WST_SLOT);
    velo_put64(buf, VELO_WST_MAGIC);
    velo_put64(buf + 8, st->gen);
    velo_put64(buf + 16, st->epoch);
    velo_put64(buf + 24, st->seq);
    memcpy(buf + 32, st->disk_id, VELO_DISK_ID_SIZE);
    velo_put32(buf + VELO_WST_SLOT - 4, velo_cache_crc(buf, VELO_WST_SLOT - 4));
}

bool velo_wst_decode(const uint8_t *buf, VeloWState *st)
{
    if (velo_get64(buf) != VELO_WST_MAGIC ||
        velo_get32(buf + VELO_WST_SLOT - 4) !=
        velo_cache_crc(buf, VELO_WST_SLOT - 4)) {
        return false;
    }
    st->gen = velo_get64(buf + 8);
    st->epoch = velo_get64(buf + 16);
    st->seq = velo_get64(buf + 24);
    memcpy(st->disk_id, buf + 32, VELO_DISK_ID_SIZE);
    /* The next seq must exist (and 2^64-1 means "unknown" to clients). */
    return st->seq != UINT64_MAX;
}

int velo_wst_pick(const uint8_t *buf, size_t len, VeloWState *st,
                  const char **why)
{
    bool found = false;
    size_t z;
    int i;

    /*
     * Empty, or only zeros: no save ever completed (a crash in the first
     * one can leave the file extended but unwritten): a new file.
     */
    for (z = 0; z < len && !buf[z]; z++) {
        /* all zeros so far */
    }
    if (z == len) {
        return 0;
    }
    for (i = 0; i < 2; i++) {
        VeloWState s;

        if ((size_t)(i + 1) * VELO_WST_SLOT <= len &&
            velo_wst_decode(buf + i * VELO_WST_SLOT, &s) &&
            (!found || s.gen > st->gen)) {
            *st = s;
            found = true;
        }
    }
    if (!found) {
        *why = "neither copy checks out";
        return -1;
    }
    return 1;
}
