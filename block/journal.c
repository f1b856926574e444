/*
 * Velo write journal format: superblock and record codecs, ring arithmetic.
 * See journal.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "bytes.h"
#include "cachefmt.h"           /* velo_cache_crc(): CRC-32C */
#include "journal.h"

/*
 * Superblock: magic 0, version 8, flags 12, generation 16, disk id 24,
 * disk size 40, ring end 48, epoch 56, head offset 64, head seq 72,
 * resync next 80, cache seq 88, CRC-32C of bytes 0..507 at 508.
 */
void velo_jsb_encode(uint8_t *buf, const VeloJournalSb *sb)
{
    memset(buf, 0, VELO_JSB_SIZE);
    velo_put64(buf, VELO_JSB_MAGIC);
    velo_put32(buf + 8, VELO_JSB_VERSION);
    velo_put32(buf + 12, sb->flags);
    velo_put64(buf + 16, sb->gen);
    memcpy(buf + 24, sb->disk_id, 16);
    velo_put64(buf + 40, sb->disk_size);
    velo_put64(buf + 48, sb->ring_end);
    velo_put64(buf + 56, sb->epoch);
    velo_put64(buf + 64, sb->head_off);
    velo_put64(buf + 72, sb->head_seq);
    velo_put64(buf + 80, sb->resync_next);
    velo_put64(buf + 88, sb->cache_seq);
    velo_put32(buf + VELO_JSB_SIZE - 4, velo_cache_crc(buf, VELO_JSB_SIZE - 4));
}

bool velo_jsb_decode(const uint8_t *buf, VeloJournalSb *sb, const char **why)
{
    memset(sb, 0, sizeof(*sb));
    if (velo_get64(buf) != VELO_JSB_MAGIC) {
        *why = "not a velo journal (bad magic)";
        return false;
    }
    if (velo_get32(buf + VELO_JSB_SIZE - 4) !=
        velo_cache_crc(buf, VELO_JSB_SIZE - 4)) {
        *why = "superblock checksum mismatch";
        return false;
    }
    if (velo_get32(buf + 8) != VELO_JSB_VERSION) {
        *why = "unsupported journal version";
        return false;
    }
    sb->flags = velo_get32(buf + 12);
    sb->gen = velo_get64(buf + 16);
    memcpy(sb->disk_id, buf + 24, 16);
    sb->disk_size = velo_get64(buf + 40);
    sb->ring_end = velo_get64(buf + 48);
    sb->epoch = velo_get64(buf + 56);
    sb->head_off = velo_get64(buf + 64);
    sb->head_seq = velo_get64(buf + 72);
    sb->resync_next = velo_get64(buf + 80);
    sb->cache_seq = velo_get64(buf + 88);
    if (sb->flags & ~VELO_JSB_F_RESYNC) {
        *why = "unknown superblock flags";
        return false;
    }
    if (sb->ring_end < VELO_JOURNAL_MIN_SIZE ||
        sb->ring_end % VELO_JREC_ALIGN) {
        *why = "ring size out of range";
        return false;
    }
    if (sb->head_off < VELO_JRING_START || sb->head_off >= sb->ring_end ||
        sb->head_off % VELO_JREC_ALIGN) {
        *why = "head offset outside the ring";
        return false;
    }
    if (sb->head_seq == 0 || sb->epoch == 0) {
        *why = "zero sequence number or epoch";
        return false;
    }
    return true;
}

int velo_jsb_pick(const uint8_t *a, const uint8_t *b, VeloJournalSb *sb,
                  const char **why)
{
    VeloJournalSb sa, sbb;
    const char *why_b;
    bool ok_a = velo_jsb_decode(a, &sa, why);
    bool ok_b = velo_jsb_decode(b, &sbb, &why_b);

    if (ok_a && (!ok_b || sa.gen >= sbb.gen)) {
        *sb = sa;
        return 0;
    }
    if (ok_b) {
        *sb = sbb;
        return 1;
    }
    return -1;
}

uint64_t velo_jrec_size(uint32_t data_len)
{
    uint64_t n = (uint64_t)VELO_JREC_HDR_SIZE + data_len;

    return (n + VELO_JREC_ALIGN - 1) & ~(uint64_t)(VELO_JREC_ALIGN - 1);
}

uint32_t velo_jrec_data_len(const VeloJRec *r)
{
    return r->type == VELO_JREC_WRITE ? r->length : 0;
}

/*
 * Record header: magic 0, type 4, reserved 6, epoch 8, seq 16, offset 24,
 * length 32, data CRC 36, time 40, reserved to 60, CRC-32C of 0..59 at 60.
 */
void velo_jrec_encode(uint8_t *buf, const VeloJRec *r)
{
    memset(buf, 0, VELO_JREC_HDR_SIZE);
    velo_put32(buf, VELO_JREC_MAGIC);
    velo_put16(buf + 4, r->type);
    velo_put64(buf + 8, r->epoch);
    velo_put64(buf + 16, r->seq);
    velo_put64(buf + 24, r->offset);
    velo_put32(buf + 32, r->length);
    velo_put32(buf + 36, r->data_crc);
    velo_put64(buf + 40, r->time_ns);
    velo_put32(buf + 60, velo_cache_crc(buf, 60));
}

bool velo_jrec_decode(const uint8_t *buf, uint64_t disk_size, VeloJRec *r,
                      const char **why)
{
    memset(r, 0, sizeof(*r));
    if (velo_get32(buf) != VELO_JREC_MAGIC) {
        *why = "bad record magic";
        return false;
    }
    if (velo_get32(buf + 60) != velo_cache_crc(buf, 60)) {
        *why = "record header checksum mismatch";
        return false;
    }
    r->type = velo_get16(buf + 4);
    r->epoch = velo_get64(buf + 8);
    r->seq = velo_get64(buf + 16);
    r->offset = velo_get64(buf + 24);
    r->length = velo_get32(buf + 32);
    r->data_crc = velo_get32(buf + 36);
    r->time_ns = velo_get64(buf + 40);
    switch (r->type) {
    case VELO_JREC_WRAP:
        return true;
    case VELO_JREC_WRITE:
    case VELO_JREC_ZERO:
        break;
    default:
        *why = "unknown record type";
        return false;
    }
    if (r->length == 0 || r->length > VELO_JREC_MAX_DATA ||
        r->offset > disk_size || r->length > disk_size - r->offset) {
        *why = "record range outside the disk";
        return false;
    }
    return true;
}

bool velo_jrec_check_data(const VeloJRec *r, const uint8_t *data)
{
    uint32_t n = velo_jrec_data_len(r);

    return n == 0 || velo_cache_crc(data, n) == r->data_crc;
}

uint64_t velo_jring_used(const VeloJRing *r)
{
    if (r->tail >= r->head) {
        return r->tail - r->head;
    }
    return (r->end - r->head) + (r->tail - VELO_JRING_START);
}

/* Ring offset of the next record after [off, off + size), wrapped. */
uint64_t velo_jring_next(const VeloJRing *r, uint64_t off, uint64_t size)
{
    uint64_t n = off + size;

    return n >= r->end ? VELO_JRING_START : n;
}

uint64_t velo_jring_cost(const VeloJRing *r, uint64_t size)
{
    if (r->tail >= r->head && r->tail + size > r->end) {
        return (r->end - r->tail) + size;
    }
    return size;
}

uint64_t velo_jring_reserve(VeloJRing *r, uint64_t size, bool *wrap)
{
    uint64_t at;

    *wrap = false;
    if (r->tail >= r->head) {
        if (r->tail + size <= r->end) {
            uint64_t nt = velo_jring_next(r, r->tail, size);
            if (nt == r->head) {
                return 0;           /* the ring would look empty */
            }
            at = r->tail;
            r->tail = nt;
            return at;
        }
        /* Wrap: the WRAP record at the tail must survive, so stay below. */
        if (VELO_JRING_START + size >= r->head) {
            return 0;
        }
        *wrap = true;
        r->tail = VELO_JRING_START + size;
        return VELO_JRING_START;
    }
    if (r->tail + size >= r->head) {
        return 0;
    }
    at = r->tail;
    r->tail += size;
    return at;
}
