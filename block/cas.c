/*
 * Velo content-addressed store: the per-host directory of extent contents
 * by SHA-256 (see cas.h for the layout and the promises).
 *
 * No index and no lock: the file system is the index, rename() makes an
 * object appear whole, and a reader trusts nothing it has not hashed.  The
 * store is a cache of content the origin still has, so objects are not
 * fsync'ed; a crash can at worst leave a short or empty object, which fails
 * its hash and is refetched.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "bytes.h"
#include <unistd.h>
#include <openssl/evp.h>
#include "cas.h"

struct VeloCas {
    int dirfd;                          /* the store directory */
    uint8_t id[VELO_CAS_ID_SIZE];
};

void velo_cas_hash(const void *data, size_t len,
                   uint8_t hash[VELO_CAS_HASH_SIZE])
{
    unsigned int n = VELO_CAS_HASH_SIZE;

    EVP_Digest(data, len, hash, &n, EVP_sha256(), NULL);
}

guint velo_cas_hash_hash(gconstpointer hash)
{
    guint h;

    memcpy(&h, hash, sizeof(h));    /* a SHA-256 is uniform already */
    return h;
}

gboolean velo_cas_hash_equal(gconstpointer a, gconstpointer b)
{
    return !memcmp(a, b, VELO_CAS_HASH_SIZE);
}

/* "ab/abcdef..." for @hash, relative to the store directory. */
static void object_name(const uint8_t *hash, char name[3 + 64 + 1])
{
    velo_hex(name + 3, hash, VELO_CAS_HASH_SIZE);
    name[0] = name[3];
    name[1] = name[4];
    name[2] = '/';
}

/* Read or write exactly @len bytes. */
static bool io_full(int fd, void *buf, size_t len, bool write_it)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = write_it ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

/* Write @len bytes to a temporary name, then rename it to @name. */
static int publish(int dirfd, const char *dir, const char *name,
                   const void *data, size_t len)
{
    char tmp[128];
    int fd, ret = 0;

    snprintf(tmp, sizeof(tmp), "%s/.tmp-%08x%08x", dir, g_random_int(),
             g_random_int());
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    if (!io_full(fd, (void *)data, len, true)) {
        ret = errno ? -errno : -EIO;
    }
    close(fd);
    if (ret == 0 && renameat(dirfd, tmp, dirfd, name) < 0) {
        ret = -errno;
    }
    if (ret < 0) {
        unlinkat(dirfd, tmp, 0);
    }
    return ret;
}

static bool load_or_create_id(VeloCas *cas)
{
    uint8_t id[VELO_CAS_ID_SIZE];
    int fd, i;

    for (i = 0; i < 2; i++) {
        fd = openat(cas->dirfd, "store-id", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            bool ok = io_full(fd, cas->id, sizeof(cas->id), false);
            close(fd);
            return ok;
        }
        if (errno != ENOENT) {
            return false;
        }
        /* Racing creators: rename makes one of them win, both read it. */
        for (size_t j = 0; j < sizeof(id); j += 4) {
            uint32_t r = g_random_int();
            memcpy(id + j, &r, 4);
        }
        if (publish(cas->dirfd, ".", "store-id", id, sizeof(id)) < 0) {
            return false;
        }
    }
    return false;
}

VeloCas *velo_cas_open(const char *dir, const char **why)
{
    VeloCas *cas;

    if (g_mkdir_with_parents(dir, 0700) < 0) {
        *why = "cannot create the directory";
        return NULL;
    }
    cas = g_new0(VeloCas, 1);
    cas->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cas->dirfd < 0) {
        *why = "cannot open the directory";
        g_free(cas);
        return NULL;
    }
    if (!load_or_create_id(cas)) {
        *why = "cannot read or create its store-id file";
        velo_cas_close(cas);
        return NULL;
    }
    return cas;
}

void velo_cas_close(VeloCas *cas)
{
    if (cas) {
        close(cas->dirfd);
        g_free(cas);
    }
}

const uint8_t *velo_cas_id(const VeloCas *cas)
{
    return cas->id;
}

bool velo_cas_get(VeloCas *cas, const uint8_t hash[VELO_CAS_HASH_SIZE],
                  void *buf, size_t len)
{
    char name[3 + 64 + 1];
    uint8_t got[VELO_CAS_HASH_SIZE];
    struct stat st;
    bool ok;
    int fd;

    if (len > VELO_CAS_MAX_OBJECT) {
        return false;
    }
    object_name(hash, name);
    fd = openat(cas->dirfd, name,
                O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        return false;
    }
    /*
     * Another size is a miss but stays: a hostile server's REF must not
     * remove good objects.  A put of the content replaces a short one.
     */
    ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
         (uint64_t)st.st_size == len;
    if (ok) {
        ok = io_full(fd, buf, len, false);
        if (ok) {
            velo_cas_hash(buf, len, got);
            ok = memcmp(got, hash, sizeof(got)) == 0;
        }
        if (!ok) {
            unlinkat(cas->dirfd, name, 0);  /* corrupt: let it be redone */
        }
    }
    close(fd);
    return ok;
}

int velo_cas_put(VeloCas *cas, const uint8_t hash[VELO_CAS_HASH_SIZE],
                 const void *data, size_t len)
{
    char name[3 + 64 + 1], dir[3];
    struct stat st;

    if (len > VELO_CAS_MAX_OBJECT) {
        return -EFBIG;
    }
    object_name(hash, name);
    if (fstatat(cas->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) && (uint64_t)st.st_size == len) {
        return 0;               /* there (a short one is replaced) */
    }
    memcpy(dir, name, 2);
    dir[2] = 0;
    if (mkdirat(cas->dirfd, dir, 0700) < 0 && errno != EEXIST) {
        return -errno;
    }
    return publish(cas->dirfd, dir, name, data, len);
}
