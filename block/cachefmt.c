/*
 * Velo cache file format: header and index entry codecs.  See cachefmt.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "bytes.h"
#include "cachefmt.h"
#include "extmap.h"


void velo_cache_hdr_init(VeloCacheHdr *h, uint64_t disk_size,
                         uint32_t extent_size, const uint8_t *disk_id,
                         const char *export_name)
{
    uint64_t index_end;

    memset(h, 0, sizeof(*h));
    h->version = VELO_CACHE_VERSION;
    h->disk_size = disk_size;
    h->extent_size = extent_size;
    h->n_extents = (disk_size + extent_size - 1) / extent_size;
    h->index_offset = VELO_CACHE_HDR_SIZE;
    index_end = h->index_offset + h->n_extents * VELO_CACHE_ENTRY_SIZE;
    h->data_offset = (index_end + VELO_CACHE_DATA_ALIGN - 1) &
                     ~(uint64_t)(VELO_CACHE_DATA_ALIGN - 1);
    memcpy(h->disk_id, disk_id, sizeof(h->disk_id));
    g_strlcpy(h->export_name, export_name, sizeof(h->export_name));
}

/*
 * Header layout: magic 0, version 8, header size 12, disk size 16, extent
 * size 24, flags 28, extents 32, index offset 40, data offset 48, disk id
 * 56, name length 72, name 74..1098, salt 1104, key id 1136, epoch 1144,
 * CRC-32 of bytes 0..4091 at 4092.  Files written before flags existed
 * have zeros there: plain slots.
 */
void velo_cache_hdr_encode(uint8_t *buf, const VeloCacheHdr *h)
{
    size_t n = strlen(h->export_name);

    memset(buf, 0, VELO_CACHE_HDR_SIZE);
    memcpy(buf, VELO_CACHE_MAGIC, 8);
    velo_put32(buf + 8, h->version);
    velo_put32(buf + 12, VELO_CACHE_HDR_SIZE);
    velo_put64(buf + 16, h->disk_size);
    velo_put32(buf + 24, h->extent_size);
    velo_put64(buf + 32, h->n_extents);
    velo_put64(buf + 40, h->index_offset);
    velo_put64(buf + 48, h->data_offset);
    memcpy(buf + 56, h->disk_id, 16);
    velo_put16(buf + 72, n);
    memcpy(buf + 74, h->export_name, n);
    velo_put32(buf + 28, h->flags);
    memcpy(buf + 1104, h->salt, 32);
    memcpy(buf + 1136, h->key_id, 8);
    velo_put32(buf + 1144, h->epoch);
    memcpy(buf + VELO_CACHE_HDR_MACED, h->mac, 16);
    velo_put32(buf + VELO_CACHE_HDR_SIZE - 4,
          velo_cache_crc(buf, VELO_CACHE_HDR_SIZE - 4));
}

bool velo_cache_hdr_decode(const uint8_t *buf, VeloCacheHdr *h,
                           const char **why)
{
    size_t n;
    uint64_t index_end;

    memset(h, 0, sizeof(*h));
    if (memcmp(buf, VELO_CACHE_MAGIC, 8)) {
        *why = "not a velo cache file (bad magic)";
        return false;
    }
    h->version = velo_get32(buf + 8);
    if (h->version != VELO_CACHE_VERSION) {
        *why = "unsupported velo cache file version";
        return false;
    }
    if (velo_get32(buf + VELO_CACHE_HDR_SIZE - 4) !=
        velo_cache_crc(buf, VELO_CACHE_HDR_SIZE - 4)) {
        *why = "velo cache file header is corrupt (CRC mismatch)";
        return false;
    }
    h->disk_size = velo_get64(buf + 16);
    h->extent_size = velo_get32(buf + 24);
    h->n_extents = velo_get64(buf + 32);
    h->index_offset = velo_get64(buf + 40);
    h->data_offset = velo_get64(buf + 48);
    memcpy(h->disk_id, buf + 56, 16);
    h->flags = velo_get32(buf + 28);
    memcpy(h->salt, buf + 1104, 32);
    memcpy(h->key_id, buf + 1136, 8);
    h->epoch = velo_get32(buf + 1144);
    memcpy(h->mac, buf + VELO_CACHE_HDR_MACED, 16);
    if (h->flags & ~VELO_CACHE_F_KNOWN ||
        ((h->flags & (VELO_CACHE_F_GCM | VELO_CACHE_F_ZSTD)) &&
         !(h->flags & VELO_CACHE_F_RECORDS))) {
        *why = "velo cache file header has unknown or inconsistent flags";
        return false;
    }
    n = velo_get16(buf + 72);
    if (velo_get32(buf + 12) != VELO_CACHE_HDR_SIZE || n > VELO_CACHE_NAME_MAX ||
        h->extent_size < 4096 || h->extent_size > (4u << 20) ||
        (h->extent_size & (h->extent_size - 1)) ||
        h->disk_size > (UINT64_C(1) << 62) ||
        h->n_extents > (UINT64_C(1) << 28) ||
        h->n_extents != (h->disk_size + h->extent_size - 1) / h->extent_size ||
        h->index_offset != VELO_CACHE_HDR_SIZE) {
        *why = "velo cache file header has an inconsistent layout";
        return false;
    }
    index_end = h->index_offset + h->n_extents * VELO_CACHE_ENTRY_SIZE;
    if (h->data_offset < index_end || h->data_offset % 4096) {
        *why = "velo cache file header has an inconsistent layout";
        return false;
    }
    memcpy(h->export_name, buf + 74, n);
    h->export_name[n] = 0;
    return true;
}

uint64_t velo_cache_slot_size(const VeloCacheHdr *h)
{
    return h->extent_size + (h->flags & VELO_CACHE_F_RECORDS ? 4096 : 0);
}

uint64_t velo_cache_file_size(const VeloCacheHdr *h)
{
    return h->data_offset + h->n_extents * velo_cache_slot_size(h);
}

uint64_t velo_cache_entry_offset(const VeloCacheHdr *h, uint64_t idx)
{
    return h->index_offset + idx * VELO_CACHE_ENTRY_SIZE;
}

uint64_t velo_cache_data_offset(const VeloCacheHdr *h, uint64_t idx)
{
    return h->data_offset + idx * velo_cache_slot_size(h);
}

void velo_cache_rec_encode(uint8_t *buf, const VeloCacheRec *r)
{
    memset(buf, 0, VELO_REC_HDR_SIZE);
    memcpy(buf, "VREC", 4);
    velo_put16(buf + 4, r->flags);
    velo_put32(buf + 8, r->stored_len);
    velo_put32(buf + 12, r->plain_len);
    memcpy(buf + 16, r->nonce, 12);
    memcpy(buf + 32, r->tag, 16);
}

bool velo_cache_rec_decode(const uint8_t *buf, const VeloCacheHdr *h,
                           uint32_t plain_len, VeloCacheRec *r,
                           const char **why)
{
    unsigned allowed = (h->flags & VELO_CACHE_F_ZSTD ? VELO_REC_ZSTD : 0) |
                       (h->flags & VELO_CACHE_F_GCM ? VELO_REC_GCM : 0);

    if (memcmp(buf, "VREC", 4)) {
        *why = "bad record magic";
        return false;
    }
    r->flags = velo_get16(buf + 4);
    r->stored_len = velo_get32(buf + 8);
    r->plain_len = velo_get32(buf + 12);
    memcpy(r->nonce, buf + 16, 12);
    memcpy(r->tag, buf + 32, 16);
    if ((r->flags & ~allowed) ||
        ((h->flags & VELO_CACHE_F_GCM) && !(r->flags & VELO_REC_GCM))) {
        *why = "record flags not allowed in this file";
        return false;
    }
    if (r->plain_len != plain_len || r->stored_len == 0 ||
        r->stored_len > plain_len ||
        (!(r->flags & VELO_REC_ZSTD) && r->stored_len != plain_len)) {
        *why = "record lengths out of range";
        return false;
    }
    return true;
}

void velo_cache_rec_aad(uint8_t aad[VELO_REC_AAD_SIZE], const VeloCacheHdr *h,
                        uint64_t idx, const VeloCacheRec *r)
{
    memcpy(aad, h->disk_id, 16);
    velo_put64(aad + 16, idx);
    velo_put16(aad + 24, r->flags);
    velo_put32(aad + 26, r->stored_len);
    velo_put32(aad + 30, r->plain_len);
    memcpy(aad + 34, h->key_id, 8);
}

static uint16_t entry_check(uint64_t idx, unsigned state, uint32_t data_crc)
{
    uint8_t b[13];

    velo_put64(b, idx);
    b[8] = (uint8_t)state;
    velo_put32(b + 9, data_crc);
    return (uint16_t)velo_cache_crc(b, sizeof(b));
}

void velo_cache_entry_encode(uint8_t *buf, uint64_t idx, unsigned state,
                             uint32_t data_crc)
{
    if (state == VELO_EXT_UNKNOWN) {
        memset(buf, 0, VELO_CACHE_ENTRY_SIZE);
        return;
    }
    buf[0] = (uint8_t)state;
    buf[1] = 0;
    velo_put16(buf + 2, entry_check(idx, state, data_crc));
    velo_put32(buf + 4, data_crc);
}

bool velo_cache_entry_decode(const uint8_t *buf, uint64_t idx,
                             unsigned *state, uint32_t *data_crc)
{
    static const uint8_t zero[VELO_CACHE_ENTRY_SIZE];
    unsigned st = buf[0];
    uint32_t crc = velo_get32(buf + 4);

    if (!memcmp(buf, zero, sizeof(zero))) {
        *state = VELO_EXT_UNKNOWN;
        *data_crc = 0;
        return true;
    }
    if (st == VELO_EXT_UNKNOWN || st >= VELO_EXT__MAX || buf[1] != 0 ||
        velo_get16(buf + 2) != entry_check(idx, st, crc)) {
        return false;
    }
    *state = st;
    *data_crc = crc;
    return true;
}
