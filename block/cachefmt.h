/*
 * Velo cache file format: the on-disk layout of the persistent local (SSD)
 * cache tier, and its encoders and checkers.
 *
 * Pure code (GLib only).  The layout, with every field big-endian:
 *
 *   0        header (4096 bytes, CRC-protected)
 *   4096     index: one 8-byte entry per extent
 *   data_off extent i lives at data_off + i * slot (sparse file); the slot
 *            is extent_size, or extent_size + 4096 in record mode
 *
 * Record mode (header flag RECORDS: compression and/or encryption at rest):
 * a slot holds a 64-byte record header, then the stored payload:
 *
 *   0 "VREC"  4 flags (ZSTD, GCM)  8 stored length  12 plain length
 *   16 nonce (12)  32 tag (16)  64 payload
 *
 * and the index entry's CRC covers record header plus payload.  With GCM
 * the payload is AES-GCM ciphertext whose AAD (velo_cache_rec_aad()) binds
 * the disk id, the extent index, both lengths, the flags and the key id, so
 * a record moved to another slot or shortened fails; the entry's CRC field
 * then holds the first 4 bytes of the record's tag instead, which names
 * that very record (an older one of the same extent fails).
 *
 * Index entry: state (1 byte), reserved (1), check (2), data CRC-32C (4).
 * check = low 16 bits of CRC-32C over (extent index, state, data CRC), so a
 * torn or stray entry, or one copied from another extent, is rejected.  An
 * all-zero entry is a valid UNKNOWN.  A DATA entry's CRC, when not 0, is
 * that of the extent's content as put in the object store when the cache
 * evicted it (tier.c trusts the object only if it matches).
 *
 * Crash rules kept by cache.c: extent data is written before the index entry
 * that vouches for it; a CACHED extent is first re-marked DIRTY before guest
 * data overwrites it.  So after a kill -9 every CACHED entry matches its data
 * or fails its CRC (and is refetched).  After a power cut a DIRTY entry may
 * have reached the disk without its data: a DIRTY extent that fails its CRC
 * and reads as all zeros never held durable data and goes back to the
 * origin's; one that fails its CRC otherwise holds a torn unflushed write.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_CACHEFMT_H
#define VELO_CACHEFMT_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define VELO_CACHE_MAGIC        "VELOCACH"
#define VELO_CACHE_VERSION      1
#define VELO_CACHE_HDR_SIZE     4096
#define VELO_CACHE_ENTRY_SIZE   8
#define VELO_CACHE_NAME_MAX     1024
#define VELO_CACHE_DATA_ALIGN   (1u << 20)

/* Header flags. */
#define VELO_CACHE_F_RECORDS    1u      /* slots hold records (see above) */
#define VELO_CACHE_F_GCM        2u      /* records are AES-GCM encrypted */
#define VELO_CACHE_F_ZSTD       4u      /* records may be zstd-compressed */
#define VELO_CACHE_F_KNOWN      7u

/* Record header. */
#define VELO_REC_HDR_SIZE       64
#define VELO_REC_ZSTD           1u
#define VELO_REC_GCM            2u
#define VELO_REC_AAD_SIZE       42

typedef struct VeloCacheRec {
    uint16_t flags;                     /* VELO_REC_* */
    uint32_t stored_len;
    uint32_t plain_len;
    uint8_t nonce[12];
    uint8_t tag[16];
} VeloCacheRec;

typedef struct VeloCacheHdr {
    uint32_t version;
    uint32_t flags;                     /* VELO_CACHE_F_* */
    uint8_t salt[32];                   /* GCM: HKDF salt of this file */
    uint8_t key_id[8];                  /* GCM: which key encrypted it */
    uint32_t epoch;                     /* bumped at each open (nonces) */
    uint8_t mac[16];                    /* GCM: HMAC of bytes 0..1148 under
                                           the file's key (cache.c), so its
                                           epoch can't be forged; zero
                                           before the first open */
    uint64_t disk_size;
    uint32_t extent_size;
    uint64_t n_extents;
    uint64_t index_offset;
    uint64_t data_offset;
    uint8_t disk_id[16];
    char export_name[VELO_CACHE_NAME_MAX + 1];  /* may be truncated */
} VeloCacheHdr;

/* Fill @h for a new cache of this disk (layout computed here). */
void velo_cache_hdr_init(VeloCacheHdr *h, uint64_t disk_size,
                         uint32_t extent_size, const uint8_t *disk_id,
                         const char *export_name);

/*
 * Encode @h into @buf (VELO_CACHE_HDR_SIZE bytes), CRC included.  The MAC
 * covers the first VELO_CACHE_HDR_MACED bytes; it is stored right after.
 */
#define VELO_CACHE_HDR_MACED    1148
void velo_cache_hdr_encode(uint8_t *buf, const VeloCacheHdr *h);

/*
 * Decode and check a header: magic, version, CRC, and a self-consistent
 * layout.  Returns false with @why on any problem.
 */
bool velo_cache_hdr_decode(const uint8_t *buf, VeloCacheHdr *h,
                           const char **why);

/* Size of the whole cache file for @h (data region included). */
uint64_t velo_cache_file_size(const VeloCacheHdr *h);

/* Offset of extent @idx's index entry and of its data. */
uint64_t velo_cache_entry_offset(const VeloCacheHdr *h, uint64_t idx);
uint64_t velo_cache_data_offset(const VeloCacheHdr *h, uint64_t idx);

/* Bytes between the starts of two slots. */
uint64_t velo_cache_slot_size(const VeloCacheHdr *h);

/* Encode a record header into @buf (VELO_REC_HDR_SIZE bytes). */
void velo_cache_rec_encode(uint8_t *buf, const VeloCacheRec *r);

/*
 * Decode a record header for an extent of @plain_len bytes in a file with
 * header @h: magic, known flags allowed by the file, lengths in range.
 */
bool velo_cache_rec_decode(const uint8_t *buf, const VeloCacheHdr *h,
                           uint32_t plain_len, VeloCacheRec *r,
                           const char **why);

/*
 * The GCM additional data of record @r of extent @idx: disk id, extent
 * index, flags, lengths and key id (the nonce carries the open epoch).
 */
void velo_cache_rec_aad(uint8_t aad[VELO_REC_AAD_SIZE], const VeloCacheHdr *h,
                        uint64_t idx, const VeloCacheRec *r);

/* Encode the index entry of extent @idx. */
void velo_cache_entry_encode(uint8_t *buf, uint64_t idx, unsigned state,
                             uint32_t data_crc);

/*
 * Decode extent @idx's index entry.  Returns false (and leaves the outputs
 * alone) when its check fails or its state is unknown.
 */
bool velo_cache_entry_decode(const uint8_t *buf, uint64_t idx,
                             unsigned *state, uint32_t *data_crc);

/*
 * CRC-32C (crc32c.c).  Each reads its source once, so a copy and its CRC
 * agree even while the source changes under them.
 */

/* CRC-32C of extent data, as stored in index entries. */
uint32_t velo_cache_crc(const void *data, size_t len);

/* Continue a CRC-32C over more data (start with 0); for scattered buffers. */
uint32_t velo_cache_crc_update(uint32_t crc, const void *data, size_t len);

/*
 * velo_cache_crc_update over @src while copying it to @dst (which must not
 * overlap it), in one pass over the data.
 */
uint32_t velo_cache_crc_copy(uint32_t crc, void *dst, const void *src,
                             size_t len);

/*
 * The ways to compute it, fastest first; all give the same values.  By
 * default the fastest the CPU has is used.  velo_cache_crc_use() picks
 * another one (for tests and benchmarks; not thread safe against CRCs
 * running meanwhile) and returns false if this CPU can't run it.
 */
typedef enum VeloCrcImpl {
    VELO_CRC_VPCLMUL,           /* AVX-512 carry-less multiply folding */
    VELO_CRC_SSE42,             /* the SSE4.2 instruction, three chains */
    VELO_CRC_TABLE,             /* a byte table, any CPU */
} VeloCrcImpl;

VeloCrcImpl velo_cache_crc_impl(void);
bool velo_cache_crc_use(VeloCrcImpl impl);

#endif
