/*
 * Velo boot profile format: codec and atomic file I/O.  See profile.h for
 * the layout and docs/profile.md for the specification.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bytes.h"
#include "cachefmt.h"
#include "profile.h"

/* Header field offsets. */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HDR_SIZE = 12, H_FLAGS = 16,
    H_EXTENT_SIZE = 20, H_DISK_SIZE = 24, H_N_RUNS = 32, H_DURATION = 36,
    H_N_EXTENTS = 40, H_RECORDED = 48, H_DISK_ID = 56, H_TEMPLATE = 72,
    H_RESERVED = 72 + VELO_PROFILE_NAME_MAX, H_CRC = VELO_PROFILE_HDR_SIZE - 4,
};
G_STATIC_ASSERT(H_RESERVED <= H_CRC);

#define MIN_EXTENT_SIZE (4u << 10)
#define MAX_EXTENT_SIZE (4u << 20)
#define MAX_DISK_SIZE   (1ull << 60)
#define MAX_FILE_SIZE   (VELO_PROFILE_HDR_SIZE + \
                         (uint64_t)VELO_PROFILE_MAX_RUNS * \
                         VELO_PROFILE_ENTRY_SIZE + 4)

VeloProfile *velo_profile_new(uint64_t disk_size, uint32_t extent_size,
                              const uint8_t *disk_id,
                              const char *template_name, uint32_t flags)
{
    VeloProfile *p = g_new0(VeloProfile, 1);

    p->flags = flags;
    p->disk_size = disk_size;
    p->extent_size = extent_size;
    if (disk_id) {
        memcpy(p->disk_id, disk_id, sizeof(p->disk_id));
    }
    if (template_name) {
        g_strlcpy(p->template_name, template_name, sizeof(p->template_name));
    }
    return p;
}

void velo_profile_free(VeloProfile *p)
{
    if (p) {
        g_free(p->runs);
        g_free(p);
    }
}

VeloProfile *velo_profile_copy(const VeloProfile *p, uint32_t flags)
{
    VeloProfile *c = g_memdup2(p, sizeof(*p));

    c->flags = flags;
    c->runs = g_memdup2(p->runs, (gsize)p->n_runs * sizeof(*p->runs));
    c->alloc_runs = p->n_runs;
    return c;
}

uint64_t velo_profile_disk_extents(const VeloProfile *p)
{
    return p->extent_size ?
           (p->disk_size + p->extent_size - 1) / p->extent_size : 0;
}

uint64_t velo_profile_bytes(const VeloProfile *p)
{
    uint64_t bytes = 0;
    uint32_t i;

    for (i = 0; i < p->n_runs; i++) {
        uint64_t start = p->runs[i].first * p->extent_size;
        uint64_t end = (p->runs[i].first + p->runs[i].count) * p->extent_size;
        bytes += MIN(end, p->disk_size) - start;
    }
    return bytes;
}

bool velo_profile_append(VeloProfile *p, uint64_t idx, uint32_t time_ms)
{
    VeloProfileRun *last = p->n_runs ? &p->runs[p->n_runs - 1] : NULL;

    if (idx >= velo_profile_disk_extents(p)) {
        return false;
    }
    if (last && last->first + last->count == idx && last->count < UINT32_MAX) {
        last->count++;
    } else {
        if (p->n_runs >= VELO_PROFILE_MAX_RUNS) {
            return false;
        }
        if (p->n_runs == p->alloc_runs) {
            p->alloc_runs = MAX(64, p->alloc_runs * 2);
            p->runs = g_renew(VeloProfileRun, p->runs, p->alloc_runs);
        }
        p->runs[p->n_runs++] = (VeloProfileRun) {
            .first = idx, .count = 1, .time_ms = time_ms,
        };
    }
    p->n_extents++;
    p->duration_ms = MAX(p->duration_ms, time_ms);
    return true;
}

bool velo_profile_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    size_t i;

    if (len == 0 || len > VELO_PROFILE_NAME_MAX || name[0] == '.') {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!g_ascii_isalnum(name[i]) && !strchr("._-", name[i])) {
            return false;
        }
    }
    return true;
}

uint8_t *velo_profile_encode(const VeloProfile *p, size_t *len)
{
    size_t n = VELO_PROFILE_HDR_SIZE +
               (size_t)p->n_runs * VELO_PROFILE_ENTRY_SIZE + 4;
    uint8_t *buf = g_malloc0(n);
    uint8_t *e = buf + VELO_PROFILE_HDR_SIZE;
    uint32_t i;

    memcpy(buf + H_MAGIC, VELO_PROFILE_MAGIC, 8);
    velo_put32(buf + H_VERSION, VELO_PROFILE_VERSION);
    velo_put32(buf + H_HDR_SIZE, VELO_PROFILE_HDR_SIZE);
    velo_put32(buf + H_FLAGS, p->flags);
    velo_put32(buf + H_EXTENT_SIZE, p->extent_size);
    velo_put64(buf + H_DISK_SIZE, p->disk_size);
    velo_put32(buf + H_N_RUNS, p->n_runs);
    velo_put32(buf + H_DURATION, p->duration_ms);
    velo_put64(buf + H_N_EXTENTS, p->n_extents);
    velo_put64(buf + H_RECORDED, p->recorded);
    memcpy(buf + H_DISK_ID, p->disk_id, sizeof(p->disk_id));
    memcpy(buf + H_TEMPLATE, p->template_name,
           strnlen(p->template_name, VELO_PROFILE_NAME_MAX));
    velo_put32(buf + H_CRC, velo_cache_crc(buf, H_CRC));
    for (i = 0; i < p->n_runs; i++, e += VELO_PROFILE_ENTRY_SIZE) {
        velo_put64(e, p->runs[i].first);
        velo_put32(e + 8, p->runs[i].count);
        velo_put32(e + 12, p->runs[i].time_ms);
    }
    velo_put32(e, velo_cache_crc(buf + VELO_PROFILE_HDR_SIZE,
                                 e - (buf + VELO_PROFILE_HDR_SIZE)));
    *len = n;
    return buf;
}

/* Check the fixed header; fills @p's scalar fields. */
static bool decode_header(const uint8_t *buf, size_t len, VeloProfile *p,
                          const char **why)
{
    uint32_t i;

    if (len < VELO_PROFILE_HDR_SIZE) {
        *why = len >= 8 && !memcmp(buf, VELO_PROFILE_MAGIC, 8) ?
               "truncated header" : "not a velo profile (file too short)";
        return false;
    }
    if (memcmp(buf + H_MAGIC, VELO_PROFILE_MAGIC, 8)) {
        *why = "not a velo profile (bad magic)";
        return false;
    }
    if (velo_get32(buf + H_VERSION) != VELO_PROFILE_VERSION) {
        *why = "unsupported profile version";
        return false;
    }
    if (velo_get32(buf + H_HDR_SIZE) != VELO_PROFILE_HDR_SIZE) {
        *why = "bad header size";
        return false;
    }
    if (velo_get32(buf + H_CRC) != velo_cache_crc(buf, H_CRC)) {
        *why = "header checksum mismatch";
        return false;
    }
    p->flags = velo_get32(buf + H_FLAGS);
    p->extent_size = velo_get32(buf + H_EXTENT_SIZE);
    p->disk_size = velo_get64(buf + H_DISK_SIZE);
    p->n_runs = velo_get32(buf + H_N_RUNS);
    p->duration_ms = velo_get32(buf + H_DURATION);
    p->n_extents = velo_get64(buf + H_N_EXTENTS);
    p->recorded = velo_get64(buf + H_RECORDED);
    memcpy(p->disk_id, buf + H_DISK_ID, sizeof(p->disk_id));
    memcpy(p->template_name, buf + H_TEMPLATE, VELO_PROFILE_NAME_MAX);
    p->template_name[VELO_PROFILE_NAME_MAX] = 0;

    if (p->flags & ~VELO_PROFILE_F_ALL) {
        *why = "unknown flags";
        return false;
    }
    if (p->extent_size < MIN_EXTENT_SIZE || p->extent_size > MAX_EXTENT_SIZE ||
        (p->extent_size & (p->extent_size - 1))) {
        *why = "bad extent size";
        return false;
    }
    if (p->disk_size == 0 || p->disk_size > MAX_DISK_SIZE) {
        *why = "bad disk size";
        return false;
    }
    if (p->n_runs > VELO_PROFILE_MAX_RUNS) {
        *why = "too many runs";
        return false;
    }
    if (p->n_extents > velo_profile_disk_extents(p)) {
        *why = "more extents than the disk has";
        return false;
    }
    /* The name is NUL-padded, and valid if present. */
    for (i = strlen(p->template_name); i < VELO_PROFILE_NAME_MAX; i++) {
        if (buf[H_TEMPLATE + i]) {
            *why = "bad template name padding";
            return false;
        }
    }
    if (p->template_name[0] && !velo_profile_name_valid(p->template_name)) {
        *why = "bad template name";
        return false;
    }
    if ((p->flags & VELO_PROFILE_F_TEMPLATE) && !p->template_name[0]) {
        *why = "template profile without a template name";
        return false;
    }
    for (i = H_RESERVED; i < H_CRC; i++) {
        if (buf[i]) {
            *why = "reserved header bytes are not zero";
            return false;
        }
    }
    return true;
}

VeloProfile *velo_profile_decode(const uint8_t *buf, size_t len,
                                 const char **why)
{
    g_autoptr(VeloProfile) p = g_new0(VeloProfile, 1);
    const uint8_t *e;
    uint64_t disk_extents, sum = 0;
    size_t want;
    uint32_t i;

    if (!decode_header(buf, len, p, why)) {
        return NULL;
    }
    want = VELO_PROFILE_HDR_SIZE +
           (size_t)p->n_runs * VELO_PROFILE_ENTRY_SIZE + 4;
    if (len < want) {
        *why = "truncated (fewer runs than the header says)";
        return NULL;
    }
    if (len > want) {
        *why = "trailing bytes after the runs";
        return NULL;
    }
    e = buf + VELO_PROFILE_HDR_SIZE;
    if (velo_get32(buf + want - 4) !=
        velo_cache_crc(e, (size_t)p->n_runs * VELO_PROFILE_ENTRY_SIZE)) {
        *why = "run list checksum mismatch";
        return NULL;
    }
    disk_extents = velo_profile_disk_extents(p);
    p->runs = g_new(VeloProfileRun, MAX(p->n_runs, 1));
    p->alloc_runs = MAX(p->n_runs, 1);
    for (i = 0; i < p->n_runs; i++, e += VELO_PROFILE_ENTRY_SIZE) {
        VeloProfileRun *r = &p->runs[i];

        r->first = velo_get64(e);
        r->count = velo_get32(e + 8);
        r->time_ms = velo_get32(e + 12);
        if (r->count == 0 || r->first >= disk_extents ||
            r->count > disk_extents - r->first) {
            *why = "run outside the disk";
            return NULL;
        }
        sum += r->count;
    }
    if (sum != p->n_extents) {
        *why = "run counts do not add up to the extent count";
        return NULL;
    }
    return g_steal_pointer(&p);
}

int velo_profile_load(const char *path, VeloProfile **out, char **err)
{
    g_autofree uint8_t *buf = NULL;
    const char *why = NULL;
    struct stat st;
    ssize_t n;
    size_t got = 0;
    int fd, ret = 0;

    *out = NULL;
    /* Non-blocking: a FIFO planted there must not hang the open. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        ret = -errno;
        *err = g_strdup_printf("cannot open profile '%s': %s", path,
                               g_strerror(errno));
        return ret;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        *err = g_strdup_printf("profile '%s' is not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    if ((uint64_t)st.st_size > MAX_FILE_SIZE) {
        *err = g_strdup_printf("profile '%s' is too large (%lld bytes)", path,
                               (long long)st.st_size);
        close(fd);
        return -EINVAL;
    }
    /* One byte more than the size, to notice a file that grew meanwhile. */
    buf = g_malloc(st.st_size + 1);
    while (got < (size_t)st.st_size + 1) {
        n = read(fd, buf + got, st.st_size + 1 - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            ret = -errno;
            *err = g_strdup_printf("cannot read profile '%s': %s", path,
                                   g_strerror(errno));
            close(fd);
            return ret;
        }
        if (n == 0) {
            break;
        }
        got += n;
    }
    close(fd);
    *out = velo_profile_decode(buf, got, &why);
    if (!*out) {
        bool ours = got >= 8 && !memcmp(buf, VELO_PROFILE_MAGIC, 8);
        *err = g_strdup_printf("bad profile '%s': %s", path, why);
        return ours ? -EINVAL : -ENOTSUP;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        buf += n;
        len -= n;
    }
    return 0;
}

int velo_profile_save(const char *path, const VeloProfile *p, char **err)
{
    g_autofree char *tmp = g_strdup_printf("%s.tmp.%d", path, (int)getpid());
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree uint8_t *buf = NULL;
    size_t len;
    int fd, ret;

    buf = velo_profile_encode(p, &len);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ret = -errno;
        *err = g_strdup_printf("cannot create '%s': %s", tmp, g_strerror(-ret));
        return ret;
    }
    ret = write_all(fd, buf, len);
    if (ret == 0 && fsync(fd) < 0) {
        ret = -errno;
    }
    if (close(fd) < 0 && ret == 0) {
        ret = -errno;
    }
    if (ret == 0 && rename(tmp, path) < 0) {
        ret = -errno;
    }
    if (ret < 0) {
        *err = g_strdup_printf("cannot write profile '%s': %s", path,
                               g_strerror(-ret));
        unlink(tmp);
        return ret;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);      /* best effort: the rename itself is done */
        close(fd);
    }
    return 0;
}

int velo_profile_unlink(const char *path, char **err)
{
    char magic[8];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int ret;

    if (fd < 0) {
        ret = -errno;
        *err = g_strdup_printf("cannot open profile '%s': %s", path,
                               g_strerror(errno));
        return ret;
    }
    n = read(fd, magic, sizeof(magic));
    close(fd);
    if (n != sizeof(magic) || memcmp(magic, VELO_PROFILE_MAGIC, 8)) {
        *err = g_strdup_printf("'%s' is not a velo profile; not deleting it",
                               path);
        return -ENOTSUP;
    }
    if (unlink(path) < 0) {
        ret = -errno;
        *err = g_strdup_printf("cannot delete profile '%s': %s", path,
                               g_strerror(errno));
        return ret;
    }
    return 0;
}
