/*
 * Velo cache file: the persistent local (SSD) tier.  Layout and entry codecs
 * are in cachefmt.h; this file does the I/O, through a BlockBackend on the
 * file driver so it gets QEMU's AIO, locking and flush semantics.
 *
 * Crash safety (kill -9 at any moment, and power loss up to the last flush):
 *   - a clean extent's data is written before the CACHED entry vouching for
 *     it, so an entry never points at data it does not match, except after a
 *     torn write, which its CRC catches (a miss, refetched);
 *   - a guest write to an extent already in the file first re-marks it DIRTY
 *     with the new CRC, then writes the data; to an extent not in the file it
 *     writes the data first, then the DIRTY entry.  Either way a crash leaves
 *     the old or the new (or, for an unacknowledged write, a torn) content,
 *     pinned; never origin data that would later change under the guest;
 *   - guest flushes flush the file.
 *
 * We never overwrite a file that is not an (empty or) velo cache file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qstring.h"
#include "sysemu/block-backend.h"
#include "qemu/memalign.h"
#include "qemu/cutils.h"
#include "velo-int.h"
#include "trace.h"

static int velo_cache_create(BDRVVeloState *s, Error **errp)
{
    uint8_t *hdr = qemu_blockalign(NULL, VELO_CACHE_HDR_SIZE);
    int ret;

    velo_cache_hdr_init(&s->chdr, s->disk_size, s->extent_size, s->disk_id,
                        s->export_name);
    velo_cache_hdr_encode(hdr, &s->chdr);
    /* Header first: a crash then leaves a short file that opens fine. */
    ret = blk_truncate(s->cache_blk, VELO_CACHE_HDR_SIZE, false,
                       PREALLOC_MODE_OFF, 0, NULL);
    if (ret == 0) {
        ret = blk_pwrite(s->cache_blk, 0, VELO_CACHE_HDR_SIZE, hdr, 0);
    }
    if (ret == 0) {
        ret = blk_flush(s->cache_blk);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot initialise cache file '%s'",
                         s->cache_path);
    } else {
        ret = blk_truncate(s->cache_blk, velo_cache_file_size(&s->chdr), false,
                           PREALLOC_MODE_OFF, 0, errp);
    }
    qemu_vfree(hdr);
    trace_velo_cache_create(s, s->cache_path, s->chdr.n_extents);
    return ret;
}

static int velo_cache_load_index(BDRVVeloState *s, Error **errp)
{
    uint64_t n = s->chdr.n_extents, i, bad = 0;
    size_t len = n * VELO_CACHE_ENTRY_SIZE;
    g_autofree uint8_t *buf = g_try_malloc(len ? len : 1);
    int ret;

    if (!buf) {
        error_setg(errp, "out of memory loading the cache index");
        return -ENOMEM;
    }
    ret = blk_pread(s->cache_blk, s->chdr.index_offset, len, buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot read the index of cache file '%s'",
                         s->cache_path);
        return ret;
    }
    for (i = 0; i < n; i++) {
        unsigned st;
        uint32_t crc;
        if (!velo_cache_entry_decode(buf + i * VELO_CACHE_ENTRY_SIZE, i, &st,
                                     &crc)) {
            bad++;
            continue;       /* treated as UNKNOWN: a miss */
        }
        s->crc[i] = crc;
        if (st != VELO_EXT_UNKNOWN) {
            velo_extmap_set(s->map, i, st);
        }
    }
    s->stats.corrupt_entries += bad;
    trace_velo_cache_loaded(s, n, s->map->count[VELO_EXT_CACHED],
                            s->map->count[VELO_EXT_DIRTY], bad);
    return 0;
}

int velo_cache_open(BDRVVeloState *s, Error **errp)
{
    QDict *opts = qdict_new();
    uint8_t *hdr = NULL;
    VeloCacheHdr h;
    const char *why;
    int64_t size;
    int ret, fd;

    /* Create the file if absent; never truncate one that exists. */
    fd = qemu_create(s->cache_path, O_RDWR, 0600, errp);
    if (fd < 0) {
        error_prepend(errp, "cannot open cache file: ");
        qobject_unref(opts);
        return -EIO;
    }
    qemu_close(fd);

    qdict_put_str(opts, "driver", "file");
    qdict_put_str(opts, "filename", s->cache_path);
    s->cache_blk = blk_new_open(NULL, NULL, opts,
                                BDRV_O_RDWR | BDRV_O_RESIZE | BDRV_O_NO_SHARE,
                                errp);
    if (!s->cache_blk) {
        error_prepend(errp, "cannot open cache file '%s': ", s->cache_path);
        return -EIO;
    }
    /*
     * Our own I/O to the cache file must go on while the node is drained:
     * drain waits for our fetches, and they finish by writing the cache.
     */
    blk_set_disable_request_queuing(s->cache_blk, true);
    size = blk_getlength(s->cache_blk);
    if (size < 0) {
        error_setg_errno(errp, -size, "cannot size cache file '%s'",
                         s->cache_path);
        return size;
    }

    if (size == 0) {
        if (!s->have_geometry) {
            error_setg(errp, "velo server unreachable and cache file '%s' is "
                       "empty: nothing to serve (%s)", s->cache_path,
                       s->last_error ? s->last_error : "not connected");
            return -EIO;
        }
        ret = velo_cache_create(s, errp);
        if (ret < 0) {
            return ret;
        }
        s->map = velo_extmap_new(s->disk_size, s->extent_size);
        s->crc = g_new0(uint32_t, s->map->n_extents ? s->map->n_extents : 1);
        return 0;
    }

    if (size < VELO_CACHE_HDR_SIZE) {
        error_setg(errp, "cache file '%s' is not a velo cache file (too "
                   "short); remove it or name another cache.file",
                   s->cache_path);
        return -EINVAL;
    }
    hdr = qemu_blockalign(NULL, VELO_CACHE_HDR_SIZE);
    ret = blk_pread(s->cache_blk, 0, VELO_CACHE_HDR_SIZE, hdr, 0);
    if (ret < 0) {
        qemu_vfree(hdr);
        error_setg_errno(errp, -ret, "cannot read cache file '%s'",
                         s->cache_path);
        return ret;
    }
    if (!velo_cache_hdr_decode(hdr, &h, &why)) {
        qemu_vfree(hdr);
        error_setg(errp, "cache file '%s': %s; remove it or name another "
                   "cache.file", s->cache_path, why);
        return -EINVAL;
    }
    qemu_vfree(hdr);
    if (strncmp(h.export_name, s->export_name, VELO_CACHE_NAME_MAX) ||
        (s->have_geometry &&
         (h.disk_size != s->disk_size || h.extent_size != s->extent_size ||
          memcmp(h.disk_id, s->disk_id, sizeof(h.disk_id))))) {
        error_setg(errp, "cache file '%s' belongs to another disk (export "
                   "'%s', %" PRIu64 " bytes); name another cache.file or "
                   "delete it", s->cache_path, h.export_name, h.disk_size);
        return -EINVAL;
    }
    if ((uint64_t)size < velo_cache_file_size(&h)) {
        /*
         * Short (a crash during creation, or someone truncated it): what is
         * missing reads as zeros, i.e. UNKNOWN index entries.  Grow it back.
         */
        ret = blk_truncate(s->cache_blk, velo_cache_file_size(&h), false,
                           PREALLOC_MODE_OFF, 0, errp);
        if (ret < 0) {
            error_prepend(errp, "cache file '%s' is short and can't be "
                          "extended: ", s->cache_path);
            return ret;
        }
    }
    s->chdr = h;
    if (!s->have_geometry) {
        s->disk_size = h.disk_size;
        s->extent_size = h.extent_size;
        memcpy(s->disk_id, h.disk_id, sizeof(s->disk_id));
        s->have_geometry = true;
    }
    s->map = velo_extmap_new(s->disk_size, s->extent_size);
    s->crc = g_new0(uint32_t, s->map->n_extents ? s->map->n_extents : 1);
    return velo_cache_load_index(s, errp);
}

void velo_cache_close(BDRVVeloState *s)
{
    if (s->cache_blk) {
        blk_flush(s->cache_blk);
        blk_unref(s->cache_blk);
        s->cache_blk = NULL;
    }
    g_free(s->crc);
    s->crc = NULL;
}

static int coroutine_fn velo_cache_put_entry(BDRVVeloState *s, uint64_t idx,
                                             unsigned state, uint32_t crc)
{
    uint8_t e[VELO_CACHE_ENTRY_SIZE];

    velo_cache_entry_encode(e, idx, state, crc);
    return blk_co_pwrite(s->cache_blk, velo_cache_entry_offset(&s->chdr, idx),
                         sizeof(e), e, 0);
}

int coroutine_fn velo_cache_write_index(BDRVVeloState *s)
{
    const uint64_t per_chunk = (1 << 20) / VELO_CACHE_ENTRY_SIZE;
    uint64_t n = s->chdr.n_extents, first, i;
    g_autofree uint8_t *buf = g_malloc(per_chunk * VELO_CACHE_ENTRY_SIZE);
    int ret;

    for (first = 0; first < n; first += per_chunk) {
        uint64_t cnt = MIN(per_chunk, n - first);
        for (i = 0; i < cnt; i++) {
            velo_cache_entry_encode(buf + i * VELO_CACHE_ENTRY_SIZE, first + i,
                                    velo_extmap_get(s->map, first + i),
                                    s->crc[first + i]);
        }
        ret = blk_co_pwrite(s->cache_blk,
                            velo_cache_entry_offset(&s->chdr, first),
                            cnt * VELO_CACHE_ENTRY_SIZE, buf, 0);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static uint32_t qiov_crc(QEMUIOVector *qiov)
{
    uint32_t crc = 0;
    int i;

    for (i = 0; i < qiov->niov; i++) {
        crc = velo_cache_crc_update(crc, qiov->iov[i].iov_base,
                                    qiov->iov[i].iov_len);
    }
    return crc;
}

int coroutine_fn velo_cache_readv(BDRVVeloState *s, uint64_t idx,
                                  QEMUIOVector *qiov, size_t qoff, bool *raced)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    VeloExtState st = velo_extmap_get(s->map, idx);
    uint64_t gen = s->write_gen;
    QEMUIOVector slice;
    bool zero = false;
    int ret;

    qemu_iovec_init_slice(&slice, qiov, qoff, len);
    ret = blk_co_preadv(s->cache_blk, velo_cache_data_offset(&s->chdr, idx),
                        len, &slice, 0);
    *raced = s->write_gen != gen || velo_extmap_get(s->map, idx) != st;
    if (ret == 0 && qiov_crc(&slice) != s->crc[idx]) {
        zero = qemu_iovec_is_zero(&slice, 0, len);
        ret = -EILSEQ;
    }
    qemu_iovec_destroy(&slice);
    if (ret != -EILSEQ) {
        return ret;
    }
    {
        if (*raced) {
            /* A guest write changed the extent under us: read it again. */
            return -EAGAIN;
        }
        trace_velo_cache_bad_crc(s, idx, st);
        if (st == VELO_EXT_CACHED) {
            /* A clean copy that doesn't check out is a miss: refetch it. */
            s->stats.corrupt_entries++;
            velo_extmap_set(s->map, idx, VELO_EXT_DATA);
            velo_cache_put_entry(s, idx, VELO_EXT_DATA, 0);
            return -EAGAIN;
        }
        if (zero) {
            /*
             * DIRTY, yet its data never reached the disk (a power cut let
             * the entry through without the data): no write to this extent
             * was ever durable, so the origin's data is the right content.
             */
            s->stats.corrupt_entries++;
            velo_extmap_set(s->map, idx, VELO_EXT_DATA);
            velo_cache_put_entry(s, idx, VELO_EXT_DATA, 0);
            return -EAGAIN;
        }
        /* DIRTY: an unflushed write torn by a crash; old or new data stays. */
    }
    return 0;
}

int coroutine_fn velo_cache_read(BDRVVeloState *s, uint64_t idx, uint8_t *buf,
                                 bool *raced)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, velo_extmap_extent_len(s->map, idx));
    return velo_cache_readv(s, idx, &qiov, 0, raced);
}

int coroutine_fn velo_cache_store_clean(BDRVVeloState *s, uint64_t idx,
                                        const uint8_t *buf)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    uint32_t crc = velo_cache_crc(buf, len);
    int ret;

    ret = blk_co_pwrite(s->cache_blk, velo_cache_data_offset(&s->chdr, idx),
                        len, buf, 0);
    if (ret == 0) {
        ret = velo_cache_put_entry(s, idx, VELO_EXT_CACHED, crc);
    }
    if (ret == 0) {
        s->crc[idx] = crc;
    }
    return ret;
}

int coroutine_fn velo_cache_store_dirty(BDRVVeloState *s, uint64_t idx,
                                        const uint8_t *buf)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    uint32_t crc = velo_cache_crc(buf, len);
    VeloExtState st = velo_extmap_get(s->map, idx);
    int64_t off = velo_cache_data_offset(&s->chdr, idx);
    int ret;

    s->write_gen++;         /* before any yield: readers must notice */
    if (st == VELO_EXT_CACHED || st == VELO_EXT_DIRTY) {
        ret = velo_cache_put_entry(s, idx, VELO_EXT_DIRTY, crc);
        if (ret == 0) {
            ret = blk_co_pwrite(s->cache_blk, off, len, buf, 0);
        }
    } else {
        ret = blk_co_pwrite(s->cache_blk, off, len, buf, 0);
        if (ret == 0) {
            ret = velo_cache_put_entry(s, idx, VELO_EXT_DIRTY, crc);
        }
    }
    if (ret == 0) {
        s->crc[idx] = crc;
    }
    s->write_gen++;
    return ret;
}

int coroutine_fn velo_cache_flush(BDRVVeloState *s)
{
    return blk_co_flush(s->cache_blk);
}
