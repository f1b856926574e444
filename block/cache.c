/*
 * Velo cache file: the persistent local (SSD) tier.  Layout and entry codecs
 * are in cachefmt.h; this file does the I/O, through the node's cache child:
 * a file node on cache.file (QEMU's AIO, locking and flush semantics), or
 * any block node named by cache-node.
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
#include "qemu/guest-random.h"
#include "qemu/error-report.h"
#include <zstd.h>
#include "velo-int.h"
#include "trace.h"

/*
 * Initialise the cache in an empty child: a 0-byte file, or (cache-node)
 * a node of @cur_size bytes whose header area reads as zeros.
 */
static int velo_cache_create(BDRVVeloState *s, int64_t cur_size,
                             Error **errp)
{
    uint8_t *hdr = qemu_blockalign(NULL, VELO_CACHE_HDR_SIZE);
    int ret;

    velo_cache_hdr_init(&s->chdr, s->disk_size, s->extent_size, s->disk_id,
                        s->export_name);
    if (s->secret) {
        s->chdr.flags |= VELO_CACHE_F_RECORDS | VELO_CACHE_F_GCM;
        qemu_guest_getrandom_nofail(s->chdr.salt, sizeof(s->chdr.salt));
    }
    if (s->cache_compress) {
        s->chdr.flags |= VELO_CACHE_F_RECORDS | VELO_CACHE_F_ZSTD;
    }
    /* A new file's first open is epoch 1 (velo_cache_atrest_open). */
    velo_cache_hdr_encode(hdr, &s->chdr);
    /* Header first: a crash then leaves a short file that opens fine. */
    ret = cur_size ? 0 : bdrv_truncate(s->cache_child, VELO_CACHE_HDR_SIZE,
                                       false, PREALLOC_MODE_OFF, 0, NULL);
    if (ret == 0) {
        ret = bdrv_pwrite(s->cache_child, 0, VELO_CACHE_HDR_SIZE, hdr, 0);
    }
    if (ret == 0) {
        ret = bdrv_flush(s->cache_child->bs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot initialise cache file '%s'",
                         s->cache_path);
    } else if (cur_size < (int64_t)velo_cache_file_size(&s->chdr)) {
        ret = bdrv_truncate(s->cache_child, velo_cache_file_size(&s->chdr),
                            false, PREALLOC_MODE_OFF, 0, errp);
    }
    qemu_vfree(hdr);
    trace_velo_cache_create(s, s->cache_path, s->chdr.n_extents);
    return ret;
}

static int velo_cache_load_index(BDRVVeloState *s, Error **errp)
{
    bool keyed = s->chdr.flags & VELO_CACHE_F_GCM;
    uint64_t n = s->chdr.n_extents, i, bad = 0, asked = 0;
    size_t len = n * VELO_CACHE_ENTRY_SIZE;
    g_autofree uint8_t *buf = g_try_malloc(len ? len : 1);
    int ret;

    if (!buf) {
        error_setg(errp, "out of memory loading the cache index");
        return -ENOMEM;
    }
    ret = bdrv_pread(s->cache_child, s->chdr.index_offset, len, buf, 0);
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
        /*
         * With key-secret a ZERO entry is not trusted: it names no record
         * whose tag could vouch for it, and its check is no MAC, so whoever
         * can write the file could make any extent read as zeros.  ZERO
         * only ever comes from the origin (its map, or a fetch that found
         * zeros), so the extent is asked again: the open's MAP, or a fetch
         * that costs a zero chunk and no payload.
         */
        if (keyed && st == VELO_EXT_ZERO) {
            asked++;
            continue;
        }
        s->crc[i] = crc;
        if (st != VELO_EXT_UNKNOWN) {
            velo_extmap_set(s->map, i, st);
        }
    }
    s->stats.corrupt_entries += bad;
    if (keyed) {
        /* The seal check MACs these very bytes (cache-atrest.c). */
        g_free(s->index_raw);
        s->index_raw = g_steal_pointer(&buf);
    }
    trace_velo_cache_loaded(s, n, s->map->count[VELO_EXT_CACHED],
                            s->map->count[VELO_EXT_DIRTY], bad, asked);
    return 0;
}

/*
 * Open the cache's child node: the node named by cache-node, or a file
 * node on cache.file (created if absent, never truncated).  Either way our
 * I/O to it goes on while the velo node is drained (drain waits for our
 * fetches, and they finish by writing the cache).
 */
static int velo_cache_open_child(BDRVVeloState *s, QDict *options,
                                 Error **errp)
{
    BlockDriverState *bs = s->bs, *cbs;
    QDict *o;
    int fd;

    if (s->cache_node) {
        s->cache_child = bdrv_open_child(NULL, options, "cache-node", bs,
                                         &child_of_bds, BDRV_CHILD_METADATA,
                                         false, errp);
        if (!s->cache_child) {
            error_prepend(errp, "velo: cache-node: ");
            return -EINVAL;
        }
        /* Profiles and the seal file live beside it: it needs a path. */
        if (s->cache_child->bs->filename[0] != '/') {
            error_setg(errp, "velo: cache-node '%s' has no local file name "
                       "('%s'); boot profiles and the seal file go beside "
                       "the cache, so use a node on a local file",
                       bdrv_get_node_name(s->cache_child->bs),
                       s->cache_child->bs->filename);
            return -EINVAL;
        }
        s->cache_path = g_strdup(s->cache_child->bs->filename);
        return 0;
    }
    fd = qemu_create(s->cache_path, O_RDWR, 0600, errp);
    if (fd < 0) {
        error_prepend(errp, "cannot open cache file: ");
        return -EIO;
    }
    qemu_close(fd);
    /*
     * Opened on its own and then attached, so it does not inherit our
     * options: a blockdev-reopen of the velo node leaves it alone.
     */
    o = qdict_new();
    qdict_put_str(o, "driver", "file");
    qdict_put_str(o, "filename", s->cache_path);
    cbs = NULL;
#ifdef CONFIG_LINUX_IO_URING
    {
        /*
         * io_uring copies a page-cache hit in this thread: the CRC check
         * that follows then reads the data from this core's cache, and no
         * pool thread is woken.  Warm reads run about twice as fast
         * (docs/performance.md).  Where io_uring is disabled (seccomp,
         * kernel.io_uring_disabled), the thread pool as before.
         */
        QDict *ou = qdict_clone_shallow(o);
        Error *local_err = NULL;

        qdict_put_str(ou, "aio", "io_uring");
        cbs = bdrv_open(NULL, NULL, ou, BDRV_O_RDWR, &local_err);
        if (!cbs) {
            trace_velo_cache_aio_fallback(s, error_get_pretty(local_err));
            error_free(local_err);
        }
    }
#endif
    if (cbs) {
        qobject_unref(o);
    } else {
        cbs = bdrv_open(NULL, NULL, g_steal_pointer(&o), BDRV_O_RDWR, errp);
    }
    if (!cbs) {
        error_prepend(errp, "cannot open cache file '%s': ", s->cache_path);
        return -EIO;
    }
    s->cache_child = bdrv_attach_child(bs, cbs, "cache-file", &child_of_bds,
                                       BDRV_CHILD_METADATA, errp);
    if (!s->cache_child) {
        error_prepend(errp, "cannot use cache file '%s': ", s->cache_path);
        return -EIO;
    }
    return 0;
}

int velo_cache_open(BDRVVeloState *s, QDict *options, Error **errp)
{
    uint8_t *hdr = NULL;
    VeloCacheHdr h;
    const char *why;
    int64_t size;
    int ret;

    ret = velo_cache_open_child(s, options, errp);
    if (ret < 0) {
        return ret;
    }
    size = bdrv_getlength(s->cache_child->bs);
    if (size < 0) {
        error_setg_errno(errp, -size, "cannot size cache file '%s'",
                         s->cache_path);
        return size;
    }

    hdr = qemu_blockalign(NULL, VELO_CACHE_HDR_SIZE);
    if (size >= VELO_CACHE_HDR_SIZE) {
        ret = bdrv_pread(s->cache_child, 0, VELO_CACHE_HDR_SIZE, hdr, 0);
        if (ret < 0) {
            qemu_vfree(hdr);
            error_setg_errno(errp, -ret, "cannot read cache file '%s'",
                             s->cache_path);
            return ret;
        }
    }
    if (size == 0 || (s->cache_node && size >= VELO_CACHE_HDR_SIZE &&
                      buffer_is_zero(hdr, VELO_CACHE_HDR_SIZE))) {
        qemu_vfree(hdr);
        if (!s->have_geometry) {
            error_setg(errp, "velo server unreachable and cache file '%s' is "
                       "empty: nothing to serve (%s)", s->cache_path,
                       s->last_error ? s->last_error : "not connected");
            return -EIO;
        }
        ret = velo_cache_create(s, size, errp);
        if (ret < 0) {
            return ret;
        }
        s->cache_created = true;
        s->map = velo_extmap_new(s->disk_size, s->extent_size);
        s->crc = g_new0(uint32_t, s->map->n_extents ? s->map->n_extents : 1);
        return velo_cache_atrest_open(s, true, errp);
    }

    if (size < VELO_CACHE_HDR_SIZE) {
        qemu_vfree(hdr);
        error_setg(errp, "cache file '%s' is not a velo cache file (too "
                   "short); remove it or name another cache.file",
                   s->cache_path);
        return -EINVAL;
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
        ret = bdrv_truncate(s->cache_child, velo_cache_file_size(&h), false,
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
    ret = velo_cache_load_index(s, errp);
    if (ret < 0) {
        return ret;
    }
    return velo_cache_atrest_open(s, false, errp);
}

void velo_cache_close(BDRVVeloState *s)
{
    /* The block layer drops the child after velo_close(). */
    if (s->cache_child && s->cache_child->bs) {
        velo_cache_atrest_close(s, bdrv_flush(s->cache_child->bs));
    }
    s->cache_child = NULL;
    g_free(s->crc);
    s->crc = NULL;
    ZSTD_freeCCtx(s->cache_zcctx);
    s->cache_zcctx = NULL;
    velo_atrest_clear(&s->atrest);
    velo_atrest_clear(&s->seal_key);
    g_free(s->index_raw);
    s->index_raw = NULL;
}

static int coroutine_fn velo_cache_put_entry(BDRVVeloState *s, uint64_t idx,
                                             unsigned state, uint32_t crc)
{
    uint8_t e[VELO_CACHE_ENTRY_SIZE];

    velo_cache_entry_encode(e, idx, state, crc);
    return bdrv_co_pwrite(s->cache_child, velo_cache_entry_offset(&s->chdr, idx),
                         sizeof(e), e, 0);
}

int coroutine_fn velo_cache_write_index(BDRVVeloState *s)
{
    const uint64_t per_chunk = (1 << 20) / VELO_CACHE_ENTRY_SIZE;
    uint64_t n = s->chdr.n_extents, first, i;
    /* Mapped for itself: a 1 MiB heap chunk would stay resident. */
    uint8_t *buf = velo_databuf_alloc(per_chunk * VELO_CACHE_ENTRY_SIZE);
    int ret = 0;

    for (first = 0; first < n && ret == 0; first += per_chunk) {
        uint64_t cnt = MIN(per_chunk, n - first);
        for (i = 0; i < cnt; i++) {
            velo_cache_entry_encode(buf + i * VELO_CACHE_ENTRY_SIZE, first + i,
                                    velo_extmap_get(s->map, first + i),
                                    s->crc[first + i]);
        }
        ret = bdrv_co_pwrite(s->cache_child,
                            velo_cache_entry_offset(&s->chdr, first),
                            cnt * VELO_CACHE_ENTRY_SIZE, buf, 0);
    }
    velo_databuf_free(buf, per_chunk * VELO_CACHE_ENTRY_SIZE);
    return ret;
}

uint32_t velo_qiov_crc(QEMUIOVector *qiov)
{
    uint32_t crc = 0;
    int i;

    for (i = 0; i < qiov->niov; i++) {
        crc = velo_cache_crc_update(crc, qiov->iov[i].iov_base,
                                    qiov->iov[i].iov_len);
    }
    return crc;
}

uint32_t velo_qiov_crc_copy(QEMUIOVector *qiov, size_t qoff, uint8_t *dst,
                            size_t n)
{
    uint32_t crc = 0;
    int i;

    for (i = 0; i < qiov->niov && n; i++) {
        size_t len = qiov->iov[i].iov_len;

        if (qoff >= len) {
            qoff -= len;
            continue;
        }
        len = MIN(len - qoff, n);
        crc = velo_cache_crc_copy(crc, dst,
                                  (uint8_t *)qiov->iov[i].iov_base + qoff, len);
        dst += len;
        n -= len;
        qoff = 0;
    }
    assert(n == 0);
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
    if (s->chdr.flags & VELO_CACHE_F_RECORDS) {
        uint8_t *bounce = velo_workbuf_try_alloc(s, len);

        ret = bounce ? velo_cache_rec_read(s, idx, bounce, s->crc[idx])
                     : -ENOMEM;
        if (ret == 0) {
            qemu_iovec_from_buf(&slice, 0, bounce, len);
        }
        velo_workbuf_free(s, bounce, len);
        *raced = s->write_gen != gen || velo_extmap_get(s->map, idx) != st;
        if (ret == -EILSEQ && st == VELO_EXT_DIRTY && !*raced) {
            /* A pinned write we can't vouch for: an error, never data. */
            s->stats.corrupt_entries++;
            qemu_iovec_destroy(&slice);
            error_report("velo: cache file '%s': pinned extent %" PRIu64
                         " fails its integrity check; its guest data is lost",
                         s->cache_path, idx);
            return -EIO;
        }
    } else {
        ret = bdrv_co_preadv(s->cache_child,
                            velo_cache_data_offset(&s->chdr, idx), len,
                            &slice, 0);
        *raced = s->write_gen != gen || velo_extmap_get(s->map, idx) != st;
        if (ret == 0 && velo_qiov_crc(&slice) != s->crc[idx]) {
            zero = qemu_iovec_is_zero(&slice, 0, len);
            ret = -EILSEQ;
        }
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
            s->crc[idx] = 0;
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
            s->crc[idx] = 0;
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

/*
 * What goes into extent @idx's slot for the data at *@buf: the data itself
 * (plain mode) or its record, built into *@rec.  Sets *@buf, *@len, *@crc.
 */
static bool cache_payload(BDRVVeloState *s, uint64_t idx, const uint8_t **buf,
                          uint32_t *len, uint32_t *crc, uint8_t **rec)
{
    if (!(s->chdr.flags & VELO_CACHE_F_RECORDS)) {
        *crc = velo_cache_crc(*buf, *len);
        return true;
    }
    *rec = velo_cache_rec_build(s, idx, *buf, crc, len);
    *buf = *rec;
    return *rec != NULL;
}

int coroutine_fn velo_cache_store_clean(BDRVVeloState *s, uint64_t idx,
                                        const uint8_t *buf)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    uint8_t *rec = NULL;
    uint32_t crc;
    int ret;

    if (!cache_payload(s, idx, &buf, &len, &crc, &rec)) {
        return -ENOMEM;
    }
    ret = bdrv_co_pwrite(s->cache_child, velo_cache_data_offset(&s->chdr, idx),
                        len, buf, 0);
    velo_cache_rec_free(s, idx, rec);
    if (ret == 0) {
        ret = velo_cache_put_entry(s, idx, VELO_EXT_CACHED, crc);
    }
    if (ret == 0) {
        s->crc[idx] = crc;
    }
    return ret;
}

int coroutine_fn velo_cache_drop_clean(BDRVVeloState *s, uint64_t idx,
                                       uint32_t tier_crc)
{
    int ret;

    velo_extmap_set(s->map, idx, VELO_EXT_DATA);
    s->crc[idx] = tier_crc;
    ret = velo_cache_put_entry(s, idx, VELO_EXT_DATA, tier_crc);
    if (ret == 0) {
        /* Give the space back; a node that can't discard keeps it. */
        bdrv_co_pdiscard(s->cache_child,
                         velo_cache_data_offset(&s->chdr, idx),
                         velo_cache_slot_size(&s->chdr));
    }
    return ret;
}

int coroutine_fn velo_cache_store_dirty(BDRVVeloState *s, uint64_t idx,
                                        const uint8_t *buf)
{
    uint32_t len = velo_extmap_extent_len(s->map, idx);
    uint8_t *rec = NULL;
    uint32_t crc;
    VeloExtState st = velo_extmap_get(s->map, idx);
    int64_t off = velo_cache_data_offset(&s->chdr, idx);
    int ret;

    if (!cache_payload(s, idx, &buf, &len, &crc, &rec)) {
        return -ENOMEM;
    }

    s->write_gen++;         /* before any yield: readers must notice */
    if (st == VELO_EXT_CACHED || st == VELO_EXT_DIRTY) {
        ret = velo_cache_put_entry(s, idx, VELO_EXT_DIRTY, crc);
        if (ret == 0) {
            ret = bdrv_co_pwrite(s->cache_child, off, len, buf, 0);
        }
    } else {
        ret = bdrv_co_pwrite(s->cache_child, off, len, buf, 0);
        if (ret == 0) {
            ret = velo_cache_put_entry(s, idx, VELO_EXT_DIRTY, crc);
        }
    }
    if (ret == 0) {
        s->crc[idx] = crc;
    }
    s->write_gen++;
    velo_cache_rec_free(s, idx, rec);
    return ret;
}

int coroutine_fn velo_cache_store_dirty_run(BDRVVeloState *s, uint64_t first,
                                            uint64_t n, uint8_t *const *bufs)
{
    g_autofree uint8_t *ents = NULL;
    g_autofree uint32_t *crcs = NULL;
    QEMUIOVector qiov;
    uint64_t i, bytes = 0;
    int ret;

    if (s->chdr.flags & VELO_CACHE_F_RECORDS) {
        for (i = 0, ret = 0; i < n && ret == 0; i++) {
            ret = velo_cache_store_dirty(s, first + i, bufs[i]);
        }
        return ret;
    }
    ents = g_malloc(n * VELO_CACHE_ENTRY_SIZE);
    crcs = g_new(uint32_t, n);
    qemu_iovec_init(&qiov, n);
    for (i = 0; i < n; i++) {
        uint32_t len = velo_extmap_extent_len(s->map, first + i);

        crcs[i] = velo_cache_crc(bufs[i], len);
        velo_cache_entry_encode(ents + i * VELO_CACHE_ENTRY_SIZE, first + i,
                                VELO_EXT_DIRTY, crcs[i]);
        qemu_iovec_add(&qiov, bufs[i], len);
        bytes += len;
    }
    s->write_gen++;         /* before any yield: readers must notice */
    ret = bdrv_co_pwrite(s->cache_child,
                         velo_cache_entry_offset(&s->chdr, first),
                         n * VELO_CACHE_ENTRY_SIZE, ents, 0);
    if (ret == 0) {
        ret = bdrv_co_pwritev(s->cache_child,
                              velo_cache_data_offset(&s->chdr, first), bytes,
                              &qiov, 0);
    }
    qemu_iovec_destroy(&qiov);
    if (ret == 0) {
        for (i = 0; i < n; i++) {
            s->crc[first + i] = crcs[i];
        }
    }
    s->write_gen++;
    return ret;
}

int coroutine_fn velo_cache_flush(BDRVVeloState *s)
{
    return bdrv_co_flush(s->cache_child->bs);
}
