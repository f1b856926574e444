/*
 * Velo cache file, record mode: extents stored compressed (zstd) and/or
 * encrypted (AES-GCM) at rest.  cache.c calls in here when the file's
 * header has VELO_CACHE_F_RECORDS; the record layout is in cachefmt.h.
 *
 * Nonces: 4 bytes of the open epoch (bumped in the header, and flushed,
 * every time the file is opened, before anything is encrypted) and an
 * 8-byte counter that starts at 0 each open.  So no nonce repeats under a
 * key, across kill -9 and power loss: a new open never reuses an epoch.
 *
 * Reads of plaintext records verify the entry's CRC over the whole record
 * (crash and tear detection, as in plain mode); encrypted records are
 * checked by GCM instead, which catches tears and tampering alike, and the
 * entry holds the first 4 bytes of the record's tag, so an older record of
 * the same extent put back in its slot does not pass either (and its entry
 * put back too fails the index MAC after a clean close: cache-atrest.c).  A
 * record that fails is reported as -EILSEQ, and cache.c turns that into a
 * refetch (clean) or an error (dirty).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "sysemu/block-backend.h"
#include <zstd.h>
#include "velo-int.h"
#include "trace.h"

#define VELO_REC_ZLEVEL     1       /* fast: this is on the read path */

uint8_t *velo_cache_rec_build(BDRVVeloState *s, uint64_t idx,
                              const uint8_t *buf, uint32_t *crc,
                              uint32_t *size)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    uint8_t *rec = velo_workbuf_try_alloc(s, VELO_REC_HDR_SIZE + len);
    uint8_t *payload;
    uint8_t aad[VELO_REC_AAD_SIZE];
    VeloCacheRec r = { .plain_len = len, .stored_len = len };

    if (!rec) {
        return NULL;
    }
    payload = rec + VELO_REC_HDR_SIZE;
    if (s->cache_zcctx) {
        size_t n = ZSTD_compressCCtx(s->cache_zcctx, payload, len - len / 16,
                                     buf, len, VELO_REC_ZLEVEL);
        if (!ZSTD_isError(n)) {
            r.flags |= VELO_REC_ZSTD;
            r.stored_len = n;
        }
    }
    if (!(r.flags & VELO_REC_ZSTD)) {
        memcpy(payload, buf, len);
    }
    if (s->chdr.flags & VELO_CACHE_F_GCM) {
        r.flags |= VELO_REC_GCM;
        stl_be_p(r.nonce, s->chdr.epoch);
        stq_be_p(r.nonce + 4, s->nonce_ctr);
        trace_velo_cache_seal(s, idx, s->chdr.epoch, s->nonce_ctr);
        s->nonce_ctr++;
        velo_cache_rec_aad(aad, &s->chdr, idx, &r);
        if (!velo_atrest_seal(&s->atrest, r.nonce, aad, sizeof(aad), payload,
                              r.stored_len, payload, r.tag)) {
            velo_cache_rec_free(s, idx, rec);
            return NULL;
        }
    }
    velo_cache_rec_encode(rec, &r);
    *size = VELO_REC_HDR_SIZE + r.stored_len;
    /* Encrypted: the entry names the record by its tag (see the top). */
    *crc = (r.flags & VELO_REC_GCM) ? ldl_be_p(r.tag) :
           velo_cache_crc(rec, *size);
    return rec;
}

void velo_cache_rec_free(BDRVVeloState *s, uint64_t idx, uint8_t *rec)
{
    velo_workbuf_free(s, rec, VELO_REC_HDR_SIZE +
                      velo_extmap_extent_len(s->map, idx));
}

int coroutine_fn velo_cache_rec_read(BDRVVeloState *s, uint64_t idx,
                                     uint8_t *buf, uint32_t crc)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    uint8_t *rec = velo_workbuf_alloc(s, VELO_REC_HDR_SIZE + len);
    uint8_t *payload = rec + VELO_REC_HDR_SIZE;
    uint8_t aad[VELO_REC_AAD_SIZE];
    VeloCacheRec r;
    bool named;
    const char *why = NULL;
    int ret;

    ret = bdrv_co_pread(s->cache_child, velo_cache_data_offset(&s->chdr, idx),
                       VELO_REC_HDR_SIZE + len, rec, 0);
    if (ret < 0) {
        goto out;
    }
    ret = -EILSEQ;
    if (!velo_cache_rec_decode(rec, &s->chdr, len, &r, &why)) {
        goto out;
    }
    /*
     * GCM authenticates the payload; the entry must name this very record
     * (its tag), or an older record of the extent put back in its slot
     * would pass.  Plaintext records, and entries written before the tag
     * was used: the record's CRC.
     */
    named = (r.flags & VELO_REC_GCM) && ldl_be_p(r.tag) == crc;
    if (!named &&
        velo_cache_crc(rec, VELO_REC_HDR_SIZE + r.stored_len) != crc) {
        why = (r.flags & VELO_REC_GCM) ? "not the record its index entry "
              "names (an older one?)" : "CRC mismatch";
        goto out;
    }
    if (r.flags & VELO_REC_GCM) {
        /* Uncompressed: decrypt straight into @buf. */
        uint8_t *dst = r.flags & VELO_REC_ZSTD ? payload : buf;

        velo_cache_rec_aad(aad, &s->chdr, idx, &r);
        if (!velo_atrest_open(&s->atrest, r.nonce, aad, sizeof(aad), payload,
                              r.stored_len, dst, r.tag)) {
            why = "authentication failed";
            goto out;
        }
        if (dst == buf) {
            ret = 0;
            goto out;
        }
    }
    if (r.flags & VELO_REC_ZSTD) {
        size_t n = s->zdctx ? ZSTD_decompressDCtx(s->zdctx, buf, len, payload,
                                                  r.stored_len) : 0;
        if (ZSTD_isError(n) || n != len) {
            why = "does not decompress to the extent";
            goto out;
        }
    } else {
        memcpy(buf, payload, len);
    }
    ret = 0;
out:
    if (why) {
        trace_velo_cache_bad_record(s, idx, why);
    }
    velo_cache_rec_free(s, idx, rec);
    return ret;
}
