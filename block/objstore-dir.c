/*
 * Velo object store: the "dir" backend, one file per object under a root
 * directory.  It is the object tier of a single machine with no server.
 *
 *   key "d1/ext/ab12"  ->  ROOT/d1/ext/ab12   (segments are directories)
 *
 * Confinement: every path is resolved one segment at a time with openat()
 * relative to the root's directory fd, each with O_NOFOLLOW, and the key rules
 * (objstore.h) forbid "." and ".." segments; so no key reaches outside the
 * root, and a symlink planted inside it is refused, never followed.  Objects
 * are opened O_NONBLOCK and must be regular files (a planted FIFO cannot hang
 * a reader).
 *
 * Atomic, durable put: write ".velo-tmp-RANDOM" in the object's directory,
 * fsync it, rename it over the key, fsync the directory.  New directories are
 * fsynced into their parents.  A crash leaves the old object or the new one,
 * plus perhaps a temporary file that listings skip.
 *
 * Objects hold guest data: files are created 0600 and directories 0700.
 *
 * Limits: a key cannot be both an object and a prefix of other keys ("a" and
 * "a/b"): the put that would need both fails with ENOTDIR/EISDIR.  Deletes
 * leave empty directories behind, so a concurrent put never writes into a
 * directory being removed.
 *
 * Threads: the handle holds only the immutable root fd; every call works on
 * its own fds, so any number of threads may call at once without a lock.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "objstore.h"

typedef struct DirStore {
    int root;           /* O_DIRECTORY fd of the root; immutable */
    bool sync;          /* fsync files and directories (false: tests only) */
} DirStore;

#define TMP_PREFIX ".velo-tmp-"

/* What to do about a failing system call, by errno. */
static const char *hint(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT:
        return "free space on the store's filesystem";
    case EACCES:
    case EPERM:
        return "check the store directory's owner and permissions";
    case EROFS:
        return "the store's filesystem is read-only; remount it read-write";
    case ELOOP:
        return "a symlink inside the store was refused; remove it";
    case ENOTDIR:
    case EISDIR:
        return "a key and a prefix of other keys collide; the dir backend "
               "cannot hold both \"a\" and \"a/b\"";
    default:
        return "check the store's filesystem";
    }
}

/* Fail with the current errno (saved) and a hint. */
static int sys_fail(GError **errp, VeloObjStore *s, const char *op,
                    const char *key, const char *what)
{
    int err = errno;

    return velo_obj_fail(errp, -err, s, op, key, "%s: %s (%s)", what,
                         g_strerror(err), hint(err));
}

static int dir_sync(DirStore *d, int fd)
{
    return d->sync ? fsync(fd) : 0;
}

/*
 * Open the directory that holds @key's last segment, one segment at a time,
 * never following a symlink.  Returns the fd (close it) and points @leaf at
 * the last segment, -ENOENT when a directory on the way is missing (or is an
 * object) and !@create, or a negative errno with @errp set.
 */
static int walk(VeloObjStore *s, const char *op, const char *key,
                bool create, const char **leaf, GError **errp)
{
    DirStore *d = s->priv;
    g_auto(GStrv) segs = g_strsplit(key, "/", -1);
    guint n = g_strv_length(segs), i;
    int fd = dup(d->root);

    if (fd < 0) {
        return sys_fail(errp, s, op, key, "dup of the root fd");
    }
    for (i = 0; i + 1 < n; i++) {
        int next = openat(fd, segs[i],
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(fd, segs[i], 0700) < 0 && errno != EEXIST) {
                int r = sys_fail(errp, s, op, key, "mkdir");
                close(fd);
                return r;
            }
            if (dir_sync(d, fd) < 0) {
                int r = sys_fail(errp, s, op, key, "fsync of a directory");
                close(fd);
                return r;
            }
            next = openat(fd, segs[i],
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) {
            struct stat st;
            int err = errno;

            if (fstatat(fd, segs[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode)) {
                errno = ELOOP;
                err = sys_fail(errp, s, op, key, "a directory on the path "
                               "is a symlink");
            } else if ((err == ENOENT || err == ENOTDIR) && !create) {
                err = -ENOENT;
            } else {
                errno = err;
                err = sys_fail(errp, s, op, key, "open of a directory");
            }
            close(fd);
            return err;
        }
        close(fd);
        fd = next;
    }
    *leaf = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
    return fd;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, MIN(len, (size_t)1 << 30));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        p += n;
        len -= n;
    }
    return 0;
}

static int dir_put(VeloObjStore *s, const char *key, const void *buf,
                   size_t len, GError **errp)
{
    DirStore *d = s->priv;
    const char *leaf;
    char tmp[sizeof(TMP_PREFIX) + 16];
    int dfd, fd = -1, r = 0, tries;

    dfd = walk(s, "put", key, true, &leaf, errp);
    if (dfd < 0) {
        return dfd;
    }
    for (tries = 0; fd < 0 && tries < 8; tries++) {
        g_snprintf(tmp, sizeof(tmp), TMP_PREFIX "%08x%08x",
                   g_random_int(), g_random_int());
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                    O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            break;
        }
    }
    if (fd < 0) {
        r = sys_fail(errp, s, "put", key, "create of a temporary file");
        goto out;
    }
    if (write_all(fd, buf, len) < 0) {
        r = sys_fail(errp, s, "put", key, "write");
    } else if (dir_sync(d, fd) < 0) {
        r = sys_fail(errp, s, "put", key, "fsync");
    }
    close(fd);
    if (r == 0 && renameat(dfd, tmp, dfd, leaf) < 0) {
        r = sys_fail(errp, s, "put", key, "rename over the key");
    }
    if (r < 0) {
        unlinkat(dfd, tmp, 0);
    } else if (dir_sync(d, dfd) < 0) {
        r = sys_fail(errp, s, "put", key, "fsync of the directory");
    }
 out:
    close(dfd);
    return r;
}

/* Open @key for reading: an fd of a regular file, -ENOENT, or an error. */
static int open_object(VeloObjStore *s, const char *op, const char *key,
                       struct stat *st, GError **errp)
{
    const char *leaf;
    int dfd, fd, r;

    dfd = walk(s, op, key, false, &leaf, errp);
    if (dfd < 0) {
        return dfd;
    }
    fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        r = errno == ENOENT ? -ENOENT
            : sys_fail(errp, s, op, key, errno == ELOOP
                       ? "the object is a symlink" : "open");
        close(dfd);
        return r;
    }
    close(dfd);
    if (fstat(fd, st) < 0) {
        r = sys_fail(errp, s, op, key, "fstat");
        close(fd);
        return r;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        if (S_ISDIR(st->st_mode)) {
            return -ENOENT;         /* a prefix, not an object */
        }
        return velo_obj_fail(errp, -EINVAL, s, op, key, "not a regular "
                             "file; remove whatever was put there");
    }
    return fd;
}

static ssize_t dir_get(VeloObjStore *s, const char *key, uint64_t offset,
                       size_t len, void *buf, GError **errp)
{
    struct stat st;
    size_t got = 0;
    int fd = open_object(s, "get", key, &st, errp);

    if (fd < 0) {
        return fd;
    }
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, offset + got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int r = sys_fail(errp, s, "get", key, "read");
            close(fd);
            return r;
        }
        if (n == 0) {
            break;
        }
        got += n;
    }
    close(fd);
    return got;
}

static int dir_head(VeloObjStore *s, const char *key, VeloObjInfo *info,
                    GError **errp)
{
    struct stat st;
    int fd = open_object(s, "head", key, &st, errp);

    if (fd < 0) {
        return fd;
    }
    close(fd);
    info->size = st.st_size;
    return 0;
}

static int dir_del(VeloObjStore *s, const char *key, GError **errp)
{
    DirStore *d = s->priv;
    const char *leaf;
    int dfd, r = 0;

    dfd = walk(s, "delete", key, false, &leaf, errp);
    if (dfd == -ENOENT) {
        return 0;
    }
    if (dfd < 0) {
        return dfd;
    }
    if (unlinkat(dfd, leaf, 0) < 0) {
        /* Missing, or a directory (a prefix): no such object, done. */
        if (errno != ENOENT && errno != EISDIR) {
            r = sys_fail(errp, s, "delete", key, "unlink");
        }
    } else if (dir_sync(d, dfd) < 0) {
        r = sys_fail(errp, s, "delete", key, "fsync of the directory");
    }
    close(dfd);
    return r;
}

/* ---- listing ----------------------------------------------------------- */

/*
 * A depth-first walk in key order.  All keys under directory "a" start with
 * "a/", so they form one contiguous run in sorted order; sorting each
 * directory's entries by "name" (files) and "name/" (directories) therefore
 * visits keys in global byte order, and whole subtrees are skipped when they
 * cannot match the prefix or lie before start_after.
 */
typedef struct ListCtx {
    VeloObjStore *s;
    const char *prefix;
    const char *start_after;        /* NULL: from the first key */
    unsigned max;
    VeloObjList *out;
    GError **errp;
    int err;                        /* first error, with *errp set */
} ListCtx;

typedef struct Entry {
    char *sort;                     /* "name" or "name/" */
    bool dir;
} Entry;

static int entry_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(((const Entry *)a)->sort, ((const Entry *)b)->sort);
}

static void entry_clear(gpointer p)
{
    g_free(((Entry *)p)->sort);
}

/* Read @fd's entries that can be keys, sorted.  NULL on error. */
static GArray *read_entries(ListCtx *c, int fd, const char *base)
{
    GArray *a;
    struct dirent *de;
    DIR *dir;
    /* A new open file description: a dup would share the read offset with
     * the root fd and with every other lister. */
    int fd2 = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd2 < 0 || !(dir = fdopendir(fd2))) {
        if (fd2 >= 0) {
            close(fd2);
        }
        c->err = sys_fail(c->errp, c->s, "list", base[0] ? base : NULL,
                          "opendir");
        return NULL;
    }
    a = g_array_new(FALSE, FALSE, sizeof(Entry));
    g_array_set_clear_func(a, entry_clear);
    while ((de = readdir(dir))) {
        const char *why;
        struct stat st;
        unsigned char t = de->d_type;
        Entry e;

        if (de->d_name[0] == '.' || !velo_obj_key_check(de->d_name, &why)) {
            continue;               /* temporary, hidden or not a key */
        }
        if (t == DT_UNKNOWN) {
            if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                continue;
            }
            t = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode)
                ? DT_REG : DT_UNKNOWN;
        }
        if (t != DT_DIR && t != DT_REG) {
            continue;               /* symlinks and devices are no objects */
        }
        e.dir = t == DT_DIR;
        e.sort = g_strconcat(de->d_name, e.dir ? "/" : NULL, NULL);
        g_array_append_val(a, e);
    }
    closedir(dir);
    g_array_sort(a, entry_cmp);
    return a;
}

/* Whether any key "@full..." (a subtree) can be listed. */
static bool subtree_wanted(ListCtx *c, const char *full)
{
    if (!g_str_has_prefix(full, c->prefix) &&
        !g_str_has_prefix(c->prefix, full)) {
        return false;
    }
    return !c->start_after || strcmp(c->start_after, full) < 0 ||
           g_str_has_prefix(c->start_after, full);
}

/* List directory @fd whose keys start with @base.  Returns false to stop. */
static bool list_dir(ListCtx *c, int fd, const char *base)
{
    g_autoptr(GArray) a = read_entries(c, fd, base);
    guint i;

    if (!a) {
        return false;
    }
    for (i = 0; i < a->len; i++) {
        Entry *e = &g_array_index(a, Entry, i);
        g_autofree char *full = g_strconcat(base, e->sort, NULL);
        struct stat st;

        if (strlen(full) > VELO_OBJ_KEY_MAX) {
            continue;
        }
        if (e->dir) {
            int sub;
            bool go_on;

            if (!subtree_wanted(c, full)) {
                continue;
            }
            sub = openat(fd, e->sort, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                         O_CLOEXEC);
            if (sub < 0) {
                continue;           /* removed or swapped meanwhile */
            }
            go_on = list_dir(c, sub, full);
            close(sub);
            if (!go_on) {
                return false;
            }
            continue;
        }
        if (!g_str_has_prefix(full, c->prefix) ||
            (c->start_after && strcmp(full, c->start_after) <= 0)) {
            continue;
        }
        if (fstatat(fd, e->sort, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode)) {
            continue;               /* deleted meanwhile */
        }
        if (c->out->items->len == c->max) {
            c->out->truncated = true;
            return false;
        }
        velo_obj_list_add(c->out, full, st.st_size);
    }
    return true;
}

static int dir_list(VeloObjStore *s, const char *prefix,
                    const char *start_after, unsigned max, VeloObjList *out,
                    GError **errp)
{
    ListCtx c = {
        .s = s, .prefix = prefix, .start_after = start_after, .max = max,
        .out = out, .errp = errp,
    };
    const char *slash = strrchr(prefix, '/');
    g_autofree char *base = g_strndup(prefix, slash ? slash - prefix + 1 : 0);
    g_autofree char *probe = g_strconcat(base, "x", NULL);
    const char *leaf;
    int fd;

    /* Start at the deepest directory that the prefix names whole. */
    fd = walk(s, "list", probe, false, &leaf, errp);
    if (fd == -ENOENT) {
        return 0;
    }
    if (fd < 0) {
        return fd;
    }
    list_dir(&c, fd, base);
    close(fd);
    return c.err;
}

/* ---- open and close ---------------------------------------------------- */

static int dir_open(VeloObjStore *s, const VeloObjConfig *cfg, GError **errp)
{
    DirStore *d;
    int fd;

    if (!cfg->path || !cfg->path[0]) {
        return velo_obj_fail(errp, -EINVAL, s, "open", NULL,
                             "the dir backend needs a path");
    }
    s->desc = g_strdup_printf("dir:%s", cfg->path);
    if (cfg->create && g_mkdir_with_parents(cfg->path, 0700) < 0) {
        return sys_fail(errp, s, "open", NULL, "create of the directory");
    }
    fd = open(cfg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;

        if (err == ENOENT) {
            return velo_obj_fail(errp, -ENXIO, s, "open", NULL,
                                 "the directory does not exist; create it "
                                 "or open with create=on");
        }
        errno = err;
        return sys_fail(errp, s, "open", NULL, "open of the directory");
    }
    d = g_new0(DirStore, 1);
    d->root = fd;
    d->sync = !cfg->no_sync;
    s->priv = d;
    return 0;
}

static void dir_close(VeloObjStore *s)
{
    DirStore *d = s->priv;

    if (d) {
        close(d->root);
        g_free(d);
    }
}

const VeloObjOps velo_obj_dir_ops = {
    .name = "dir",
    .open = dir_open,
    .close = dir_close,
    .put = dir_put,
    .get = dir_get,
    .head = dir_head,
    .del = dir_del,
    .list = dir_list,
};
