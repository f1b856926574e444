/*
 * Velo write journal format: the superblock and record codecs and the ring
 * arithmetic of the write-back journal (docs/journal.md).
 *
 * Pure code: GLib only, no QEMU and no I/O, so that unit tests and fuzzers
 * reach it.  Every decoder treats its input as hostile and says why it
 * refused it through @why (a static string).
 *
 * Layout of a journal device (any block node):
 *
 *   0      superblock copy A (512 bytes used of 4 KiB)
 *   4096   superblock copy B
 *   8192   the ring: records back to back, each 512-byte aligned, up to
 *          the ring end given in the superblock
 *
 * The two superblock copies are written alternately, so a torn write can
 * only ever spoil the older one; the valid copy with the higher generation
 * wins.  Records carry a strictly increasing sequence number (1, 2, ...)
 * and the epoch of the writer that appended them; a scan from the head
 * stops at the first record that does not check out or does not continue
 * the sequence, which is the end of the journal.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_JOURNAL_H
#define VELO_JOURNAL_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define VELO_JSB_MAGIC          UINT64_C(0x56454c4f4a524e31)  /* "VELOJRN1" */
#define VELO_JSB_VERSION        1
#define VELO_JSB_SIZE           512
#define VELO_JSB_SLOT           4096
#define VELO_JRING_START        8192
#define VELO_JREC_MAGIC         0x564a5243u                   /* "VJRC" */
#define VELO_JREC_HDR_SIZE      64
#define VELO_JREC_ALIGN         512
#define VELO_JREC_MAX_DATA      (1u << 20)      /* guest bytes per record */
#define VELO_JOURNAL_MIN_SIZE   (VELO_JRING_START + 4 * (VELO_JREC_MAX_DATA + \
                                                         VELO_JREC_ALIGN))

typedef enum VeloJRecType {
    VELO_JREC_WRITE = 1,        /* @length guest bytes follow */
    VELO_JREC_ZERO = 2,         /* the range reads as zeros; no data */
    VELO_JREC_WRAP = 3,         /* nothing more before the ring end */
} VeloJRecType;

/* Superblock flags. */
#define VELO_JSB_F_RESYNC       1u      /* resync_next is a pending resync */

typedef struct VeloJournalSb {
    uint64_t gen;               /* bumped by every superblock write */
    uint32_t flags;             /* VELO_JSB_F_* */
    uint8_t disk_id[16];        /* the disk this journal belongs to */
    uint64_t disk_size;
    uint64_t ring_end;          /* device bytes used by the ring */
    uint64_t epoch;             /* the current writer's epoch */
    uint64_t head_off;          /* ring offset of the oldest undrained record */
    uint64_t head_seq;          /* its sequence number (next to drain) */
    uint64_t resync_next;       /* with F_RESYNC: next extent to resync */
    uint64_t cache_seq;         /* records up to here are in the cache file */
} VeloJournalSb;

typedef struct VeloJRec {
    uint16_t type;              /* VeloJRecType */
    uint64_t epoch;
    uint64_t seq;
    uint64_t offset;            /* guest offset */
    uint32_t length;            /* guest bytes */
    uint32_t data_crc;          /* CRC-32C of the data (WRITE) */
    uint64_t time_ns;           /* wall clock when written (for the RPO) */
} VeloJRec;

/* Encode @sb into @buf (VELO_JSB_SIZE bytes). */
void velo_jsb_encode(uint8_t *buf, const VeloJournalSb *sb);

/*
 * Decode one superblock copy and check its magic, version, CRC and
 * geometry (head inside the ring).  Returns false with @why otherwise.
 */
bool velo_jsb_decode(const uint8_t *buf, VeloJournalSb *sb, const char **why);

/*
 * Pick the superblock from the two copies @a and @b (VELO_JSB_SIZE bytes
 * each): the valid one with the higher generation.  Returns 0 (A), 1 (B),
 * or -1 when neither is valid (@why says why A failed).
 */
int velo_jsb_pick(const uint8_t *a, const uint8_t *b, VeloJournalSb *sb,
                  const char **why);

/* Bytes a record with @data_len bytes of data takes in the ring. */
uint64_t velo_jrec_size(uint32_t data_len);

/* Bytes of data that follow a record of this header. */
uint32_t velo_jrec_data_len(const VeloJRec *r);

/* Encode a record header into @buf (VELO_JREC_HDR_SIZE bytes). */
void velo_jrec_encode(uint8_t *buf, const VeloJRec *r);

/*
 * Decode a record header and check its magic, CRC, type and that its range
 * lies inside a disk of @disk_size bytes.  The data CRC is checked
 * separately with velo_jrec_check_data().
 */
bool velo_jrec_decode(const uint8_t *buf, uint64_t disk_size, VeloJRec *r,
                      const char **why);

/* Whether @data (velo_jrec_data_len(r) bytes) matches @r's CRC. */
bool velo_jrec_check_data(const VeloJRec *r, const uint8_t *data);

/*
 * The ring: records live in [VELO_JRING_START, end).  @head is where the
 * oldest live record starts, @tail where the next one goes; head == tail
 * means empty, so the ring never fills up completely.
 */
typedef struct VeloJRing {
    uint64_t end;
    uint64_t head;
    uint64_t tail;
} VeloJRing;

/* Bytes in use between head and tail. */
uint64_t velo_jring_used(const VeloJRing *r);

/* Bytes a record of @size would take at the tail now, wrap waste included. */
uint64_t velo_jring_cost(const VeloJRing *r, uint64_t size);

/*
 * Where a record of @size bytes goes: its ring offset, and in *@wrap
 * whether a WRAP record must first be written at the tail.  Returns 0 (and
 * changes nothing) when it does not fit now.  On success the tail moves
 * past it.
 */
uint64_t velo_jring_reserve(VeloJRing *r, uint64_t size, bool *wrap);

/* Where the record after the one at @off of @size bytes starts. */
uint64_t velo_jring_next(const VeloJRing *r, uint64_t off, uint64_t size);

#endif
