/*
 * Velo write-state file format: what a writable velo export (the origin)
 * keeps across restarts to fence writers and to answer resends, see
 * docs/protocol.rst "Writes".
 *
 * Pure code: GLib only, no QEMU and no I/O, so that unit tests and fuzzers
 * reach it.  Decoders treat their input as hostile.
 *
 * The file holds two slots of VELO_WST_SLOT bytes, written alternately:
 * magic 0, generation 8, epoch 16, durable seq 24, disk id 32..47, zeros,
 * CRC-32C of the rest at 508.  A torn write spoils at most the slot being
 * written; the valid slot with the higher generation counts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_WSTATE_H
#define VELO_WSTATE_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto.h"

#define VELO_WST_MAGIC      UINT64_C(0x56454c4f57535431)     /* VELOWST1 */
#define VELO_WST_SLOT       512

typedef struct VeloWState {
    uint64_t gen;               /* bumped by every save */
    uint64_t epoch;             /* newest writer epoch seen */
    uint64_t seq;               /* writes up to here are durable */
    uint8_t disk_id[VELO_DISK_ID_SIZE];
} VeloWState;

/* Encode @st into one slot (@buf, VELO_WST_SLOT bytes). */
void velo_wst_encode(uint8_t *buf, const VeloWState *st);

/*
 * Decode one slot; false if its magic or CRC does not check out, or its
 * seq is 2^64-1 (no next seq).
 */
bool velo_wst_decode(const uint8_t *buf, VeloWState *st);

/*
 * Pick the state from the first @len bytes of a write-state file: the
 * valid slot with the higher generation.  Returns 1 with *@st set, 0 for
 * a new file (empty, or only zeros: no save ever completed), -1 when no
 * slot is valid (*@why says so).
 */
int velo_wst_pick(const uint8_t *buf, size_t len, VeloWState *st,
                  const char **why);

#endif
