/*
 * Velo cache file at rest: opening a compressed and/or encrypted cache file
 * (options and key checked against its header, a new nonce epoch started)
 * and its seal file, which catches a rolled-back file and, after a clean
 * close, an index whose entries were changed.
 *
 * The seal file (CACHE.seal, beside the cache file, only for encrypted
 * files) holds, under an HMAC with the file's key:
 *
 *   0 "VSL2"  4 epoch  8 flags (1: CLOSED)  12 reserved
 *   16 pinned (DIRTY entries at that close)  24 index MAC (16)  40 MAC (16)
 *
 * The seal's key is derived from the secret and the disk id with a fixed
 * salt, not the file's: a rekeyed file (below) keeps it, so a crash between
 * the new header and the new seal reads as the crash it is.  Every open
 * bumps the epoch in the header (flushed), then writes the seal with that
 * epoch, not CLOSED.  A clean close flushes the file and writes it again,
 * CLOSED, with the MAC of the whole index as it is on disk (domain "INDX",
 * disk id, epoch, extent count, and the SHA-256 of the entries); the open
 * checks the very bytes it decoded.  At open:
 *   - the header behind the seal's epoch (or no seal for an encrypted file):
 *     rolled back;
 *   - the same epoch and CLOSED: the index must match the sealed MAC, or
 *     some entry was changed since (the per-entry check is a CRC, which
 *     anyone can recompute): an entry set back to "not cached" would hide a
 *     pinned write, an older entry put back with its record would serve old
 *     data;
 *   - otherwise (the last run crashed) the index is trusted entry by entry.
 * Either failure drops the clean extents (refetched) and gives the file a
 * new key; pinned writes the seal counted can't be vouched for, so the
 * open fails.  Old 24-byte seals ("VSEL": epoch and a MAC under the file's
 * key) read as not CLOSED.
 *
 * The limit: without storage the attacker can't roll back, a seal and
 * header copied while the node ran (not CLOSED) can be put back after a
 * clean close, and the open then takes the index for a crashed one's.
 * Keep the seal file out of the attacker's reach.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/memalign.h"
#include "qemu/guest-random.h"
#include "qemu/error-report.h"
#include <zstd.h>
#include "velo-int.h"
#include "trace.h"

#define VELO_SEAL_V1_SIZE   24
#define VELO_SEAL_SIZE      56
#define VELO_SEAL_F_CLOSED  1u

typedef struct VeloSeal {
    uint32_t epoch;
    bool closed;            /* written at a clean close of that epoch */
    uint64_t pinned;        /* DIRTY entries then */
    uint8_t index_mac[16];  /* the index then (closed only) */
} VeloSeal;

/* Not a file's salt (those are random): the seal key's. */
static const uint8_t seal_salt[VELO_ATREST_SALT_SIZE] =
    "velo seal key salt (fixed).....";

static char *seal_path(BDRVVeloState *s)
{
    return g_strdup_printf("%s.seal", s->cache_path);
}

/* The MAC under @k of a seal's first @len bytes, bound to the disk. */
static void seal_mac(BDRVVeloState *s, const VeloAtRestKey *k,
                     const uint8_t *buf, size_t len, uint8_t mac[16])
{
    uint8_t msg[4 + 16 + VELO_SEAL_SIZE];

    memcpy(msg, "SEAL", 4);
    memcpy(msg + 4, s->chdr.disk_id, 16);
    memcpy(msg + 20, buf, len);
    velo_atrest_mac(k, msg, 20 + len, mac);
}

static void seal_encode(BDRVVeloState *s, const VeloSeal *v, uint8_t *buf)
{
    memset(buf, 0, VELO_SEAL_SIZE);
    memcpy(buf, "VSL2", 4);
    stl_be_p(buf + 4, v->epoch);
    stl_be_p(buf + 8, v->closed ? VELO_SEAL_F_CLOSED : 0);
    stq_be_p(buf + 16, v->pinned);
    memcpy(buf + 24, v->index_mac, 16);
    seal_mac(s, &s->seal_key, buf, 40, buf + 40);
}

/* Decode and authenticate a seal file's @len bytes. */
static bool seal_decode(BDRVVeloState *s, const uint8_t *buf, size_t len,
                        VeloSeal *v)
{
    uint8_t mac[16];

    *v = (VeloSeal) { 0 };
    if (len == VELO_SEAL_V1_SIZE && !memcmp(buf, "VSEL", 4)) {
        /* v1: "SEAL", the disk id and the epoch, under the file's key. */
        seal_mac(s, &s->atrest, buf + 4, 4, mac);
        v->epoch = ldl_be_p(buf + 4);
        return !memcmp(mac, buf + 8, 16);
    }
    if (len != VELO_SEAL_SIZE || memcmp(buf, "VSL2", 4)) {
        return false;
    }
    seal_mac(s, &s->seal_key, buf, 40, mac);
    if (memcmp(mac, buf + 40, 16) ||
        (ldl_be_p(buf + 8) & ~VELO_SEAL_F_CLOSED) || ldl_be_p(buf + 12)) {
        return false;
    }
    v->epoch = ldl_be_p(buf + 4);
    v->closed = ldl_be_p(buf + 8) & VELO_SEAL_F_CLOSED;
    v->pinned = ldq_be_p(buf + 16);
    memcpy(v->index_mac, buf + 24, 16);
    return true;
}

/* Write the seal file (a new file renamed over the old).  -errno. */
static int seal_write(BDRVVeloState *s, const VeloSeal *v, Error **errp)
{
    g_autofree char *path = seal_path(s);
    g_autofree char *tmp = g_strdup_printf("%s.tmp", path);
    uint8_t buf[VELO_SEAL_SIZE];
    int fd, ret;

    seal_encode(s, v, buf);
    fd = qemu_create(tmp, O_WRONLY | O_TRUNC | O_NOFOLLOW, 0600, errp);
    if (fd < 0) {
        return -EIO;
    }
    ret = qemu_write_full(fd, buf, sizeof(buf)) == sizeof(buf) &&
          qemu_fdatasync(fd) == 0 ? 0 : -errno;
    qemu_close(fd);
    if (ret == 0 && rename(tmp, path) < 0) {
        ret = -errno;
    }
    if (ret < 0) {
        unlink(tmp);
        error_setg_errno(errp, -ret, "cannot write seal file '%s'", path);
    }
    return ret;
}

/*
 * The MAC of the index, bound to the disk, @epoch and the extent count,
 * and, unless @pinned is NULL, the number of DIRTY entries in it: of
 * @index (the bytes decoded at open), or else as the file holds it.
 */
static int velo_cache_index_mac(BDRVVeloState *s, uint32_t epoch,
                                const uint8_t *index, uint8_t mac[16],
                                uint64_t *pinned)
{
    uint64_t n = s->chdr.n_extents, i, dirty = 0;
    size_t len = n * VELO_CACHE_ENTRY_SIZE;
    g_autofree uint8_t *buf = NULL;
    uint8_t prefix[32];
    int ret;

    if (!index) {
        buf = g_try_malloc(len ? len : 1);
        if (!buf) {
            return -ENOMEM;
        }
        ret = bdrv_pread(s->cache_child, s->chdr.index_offset, len, buf, 0);
        if (ret < 0) {
            return ret;
        }
        index = buf;
    }
    memcpy(prefix, "INDX", 4);
    memcpy(prefix + 4, s->chdr.disk_id, 16);
    stl_be_p(prefix + 20, epoch);
    stq_be_p(prefix + 24, n);
    if (!velo_atrest_mac_long(&s->seal_key, prefix, sizeof(prefix), index,
                              len, mac)) {
        return -EIO;
    }
    for (i = 0; pinned && i < n; i++) {
        unsigned st;
        uint32_t crc;

        if (velo_cache_entry_decode(index + i * VELO_CACHE_ENTRY_SIZE, i, &st,
                                    &crc) && st == VELO_EXT_DIRTY) {
            dirty++;
        }
    }
    if (pinned) {
        *pinned = dirty;
    }
    return 0;
}

/* The MAC of the header as s->chdr holds it (its first bytes). */
static void velo_cache_hdr_mac(BDRVVeloState *s, uint8_t mac[16])
{
    g_autofree uint8_t *buf = g_malloc(VELO_CACHE_HDR_SIZE);

    velo_cache_hdr_encode(buf, &s->chdr);
    velo_atrest_mac(&s->atrest, buf, VELO_CACHE_HDR_MACED, mac);
}

/*
 * Check the file against its seal (see the top of this file).  A seal file
 * that is there but not sound (size, MAC) fails the open.
 */
static int velo_cache_check_seal(BDRVVeloState *s, Error **errp)
{
    g_autofree char *path = seal_path(s);
    g_autofree char *got = NULL;
    g_autoptr(GError) gerr = NULL;
    VeloSeal v = { 0 };
    gsize got_len;
    uint64_t i, pinned = s->map->count[VELO_EXT_DIRTY];
    bool tampered = false;
    int ret;

    if (!g_file_get_contents(path, &got, &got_len, &gerr) &&
        !g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
        error_setg(errp, "cannot read seal file '%s' of cache file '%s': %s",
                   path, s->cache_path, gerr->message);
        return -EIO;
    }
    if (got && !seal_decode(s, (uint8_t *)got, got_len, &v)) {
        error_setg(errp, "seal file '%s' of cache file '%s' is corrupt or "
                   "from another key; remove both files to start over",
                   path, s->cache_path);
        return -EINVAL;
    }
    if (got && (s->chdr.epoch > v.epoch ||
                (s->chdr.epoch == v.epoch && !v.closed))) {
        return 0;               /* not closed cleanly: entries checked alone */
    }
    if (got && s->chdr.epoch == v.epoch) {
        uint8_t mac[16];

        ret = velo_cache_index_mac(s, v.epoch, s->index_raw, mac, NULL);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "cannot read the index of cache "
                             "file '%s'", s->cache_path);
            return ret;
        }
        if (!memcmp(mac, v.index_mac, sizeof(mac))) {
            return 0;
        }
        /* What the index claims is pinned now can't be believed. */
        tampered = true;
        pinned = v.pinned;
    }
    if (tampered && pinned) {
        error_setg(errp, "the index of cache file '%s' is not the one sealed "
                   "at its last close (entries were changed since): its %"
                   PRIu64 " pinned writes can't be vouched for; move it aside "
                   "(with its seal file '%s')", s->cache_path, pinned, path);
        return -EACCES;
    }
    if (pinned) {
        error_setg(errp, "cache file '%s' was rolled back (epoch %u, sealed "
                   "%u in '%s'): its %" PRIu64 " pinned writes may be stale; "
                   "move it aside (with its seal file) and decide which copy "
                   "is right", s->cache_path, s->chdr.epoch, v.epoch, path,
                   pinned);
        return -ESTALE;
    }
    if (tampered) {
        warn_report("velo: the index of cache file '%s' is not the one sealed "
                    "at its last close (entries were changed since); dropping "
                    "its extents", s->cache_path);
    } else {
        warn_report("velo: cache file '%s' was rolled back (epoch %u, sealed "
                    "%u); dropping its extents", s->cache_path, s->chdr.epoch,
                    v.epoch);
    }
    for (i = 0; i < s->map->n_extents; i++) {
        VeloExtState st = velo_extmap_get(s->map, i);

        /* DIRTY here only if forged: the seal counted none. */
        if (st == VELO_EXT_CACHED || st == VELO_EXT_DIRTY) {
            velo_extmap_set(s->map, i, VELO_EXT_UNKNOWN);
            s->stats.corrupt_entries++;
        }
        s->crc[i] = 0;
    }
    /* Forget them on disk too, before the new epoch makes them look fresh. */
    {
        size_t ilen = s->map->n_extents * VELO_CACHE_ENTRY_SIZE;
        g_autofree uint8_t *zero = g_try_malloc0(ilen ? ilen : 1);

        ret = zero ? bdrv_pwrite(s->cache_child, s->chdr.index_offset, ilen,
                                 zero, 0) : -ENOMEM;
        if (ret == 0) {
            ret = bdrv_flush(s->cache_child->bs);
        }
        if (ret < 0) {
            error_setg_errno(errp, -ret, "cannot reset the index of cache "
                             "file '%s'", s->cache_path);
            return ret;
        }
    }
    /*
     * The epochs after this file's may have sealed records already (its
     * seal is gone or behind): their nonces would come again under this
     * key.  A new salt makes a new key; nothing encrypted is left to read.
     */
    qemu_guest_getrandom_nofail(s->chdr.salt, sizeof(s->chdr.salt));
    velo_atrest_clear(&s->atrest);
    if (!velo_atrest_derive(s->secret, s->secret_len, s->chdr.salt,
                            s->chdr.disk_id, &s->atrest)) {
        error_setg(errp, "cannot derive a new key for cache file '%s'",
                   s->cache_path);
        return -EIO;
    }
    memcpy(s->chdr.key_id, s->atrest.key_id, sizeof(s->chdr.key_id));
    s->chdr.epoch = MAX(s->chdr.epoch, v.epoch);
    return 0;
}

/*
 * Compression and encryption at rest: check the file matches the options
 * and the key, then start a new epoch (header written and flushed before
 * any nonce of it is used) and seal it.
 */
int velo_cache_atrest_open(BDRVVeloState *s, bool fresh, Error **errp)
{
    bool gcm = s->chdr.flags & VELO_CACHE_F_GCM;
    uint8_t *hdr;
    int ret;

    if (!!s->secret != gcm) {
        error_setg(errp, gcm ? "cache file '%s' is encrypted: give the "
                   "key-secret it was created with" :
                   "cache file '%s' is not encrypted: remove it (or name "
                   "another cache.file) to start an encrypted cache",
                   s->cache_path);
        return -EINVAL;
    }
    if (s->cache_compress != !!(s->chdr.flags & VELO_CACHE_F_ZSTD)) {
        error_setg(errp, "cache file '%s' was created with cache-compress=%s; "
                   "use that, or remove the file", s->cache_path,
                   s->chdr.flags & VELO_CACHE_F_ZSTD ? "on" : "off");
        return -EINVAL;
    }
    if (s->cache_compress) {
        s->cache_zcctx = ZSTD_createCCtx();
    }
    if (!gcm) {
        return 0;
    }
    if (!velo_atrest_derive(s->secret, s->secret_len, s->chdr.salt,
                            s->chdr.disk_id, &s->atrest) ||
        !velo_atrest_derive(s->secret, s->secret_len, seal_salt,
                            s->chdr.disk_id, &s->seal_key)) {
        error_setg(errp, "cannot derive the key of cache file '%s'",
                   s->cache_path);
        return -EIO;
    }
    if (fresh || s->chdr.epoch == 0) {
        memcpy(s->chdr.key_id, s->atrest.key_id, sizeof(s->chdr.key_id));
    } else if (memcmp(s->chdr.key_id, s->atrest.key_id,
                      sizeof(s->chdr.key_id))) {
        error_setg(errp, "cache file '%s' was encrypted with another key: "
                   "give the key-secret it was created with, or remove it",
                   s->cache_path);
        return -EACCES;
    }
    if (!fresh && s->chdr.epoch) {
        /* Else its epoch could be raised to the seal's after a rollback. */
        uint8_t mac[16];

        velo_cache_hdr_mac(s, mac);
        if (memcmp(mac, s->chdr.mac, sizeof(mac))) {
            error_setg(errp, "the header of cache file '%s' fails its MAC: "
                       "it was tampered with or damaged; remove it (and its "
                       "seal file) to start over", s->cache_path);
            return -EACCES;
        }
    }
    ret = fresh ? 0 : velo_cache_check_seal(s, errp);
    g_free(s->index_raw);
    s->index_raw = NULL;
    if (ret < 0) {
        return ret;
    }
    if (s->chdr.epoch == UINT32_MAX) {
        error_setg(errp, "cache file '%s' has used up its nonce epochs; "
                   "remove it", s->cache_path);
        return -ERANGE;
    }
    s->chdr.epoch++;
    s->nonce_ctr = 0;
    velo_cache_hdr_mac(s, s->chdr.mac);
    hdr = qemu_blockalign(NULL, VELO_CACHE_HDR_SIZE);
    velo_cache_hdr_encode(hdr, &s->chdr);
    ret = bdrv_pwrite(s->cache_child, 0, VELO_CACHE_HDR_SIZE, hdr, 0);
    qemu_vfree(hdr);
    if (ret == 0) {
        ret = bdrv_flush(s->cache_child->bs);
    }
    if (ret == 0) {
        VeloSeal v = { .epoch = s->chdr.epoch };

        ret = seal_write(s, &v, errp);
        if (ret < 0) {
            return ret;
        }
        s->seal_armed = true;
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot start a new epoch in cache file "
                         "'%s'", s->cache_path);
        return ret;
    }
    trace_velo_cache_epoch(s, s->chdr.epoch);
    return 0;
}

void velo_cache_atrest_close(BDRVVeloState *s, int flushed)
{
    VeloSeal v = { .epoch = s->chdr.epoch, .closed = true };
    Error *local_err = NULL;
    int ret = flushed;

    if (!s->seal_armed) {
        return;
    }
    s->seal_armed = false;
    if (ret < 0) {
        error_setg_errno(&local_err, -ret, "cannot flush it");
    } else if ((ret = velo_cache_index_mac(s, v.epoch, NULL, v.index_mac,
                                           &v.pinned)) < 0) {
        error_setg_errno(&local_err, -ret, "cannot read back the index");
    } else {
        ret = seal_write(s, &v, &local_err);
    }
    if (ret < 0) {
        warn_reportf_err(local_err, "velo: cache file '%s' not sealed at "
                         "close, so its next open can't check its index: ",
                         s->cache_path);
        return;
    }
    trace_velo_cache_index_sealed(s, v.epoch, v.pinned);
}
