/*
 * Velo object store: the contract of the object-store tier.  One opaque
 * handle, one ops struct per backend, a thin dispatch layer that checks keys
 * and arguments before any backend sees them.
 *
 * Backends:
 *   "dir"  a local directory, one file per object (objstore-dir.c);
 *   "s3"   an S3 bucket over HTTP(S), SigV4-signed by libcurl
 *          (objstore-s3.c: the operations; s3-http.c: one request, errors,
 *          the handle pool; s3-xml.c: the bounded XML reader).
 *
 * Pure C: GLib, libcurl and OpenSSL only, no QEMU headers, so the unit tests
 * and the QEMU driver can both use it.
 *
 * Results.  Every operation returns 0 (or a byte count) on success and a
 * negative errno on failure.  -ENOENT always and only means "this object does
 * not exist": it is a result, not an error, and @errp is left unset.  Every
 * other failure sets @errp (domain VELO_OBJ_ERROR, code = the positive errno)
 * to one message naming the backend, the operation, the key, the HTTP status
 * and S3 error code where there is one, and what to do.  Never both report
 * and handle: callers print or propagate the GError.
 *
 * Thread model.  A handle may be used by any number of threads at once (the
 * QEMU driver calls it from its thread pool); every operation blocks the
 * calling thread until done or timed out, and never calls back into the
 * caller.  Only open and close must not race with other calls on the handle.
 * Concurrent puts of one key: one of them wins whole (no torn objects).
 *
 * Keys (checked by velo_obj_key_check before any backend runs):
 *   1..VELO_OBJ_KEY_MAX bytes of printable ASCII (0x20..0x7e), split by '/'
 *   into segments of 1..VELO_OBJ_SEGMENT_MAX bytes; no empty segment (so no
 *   leading, trailing or double '/'), no segment starting with '.' (so no
 *   "." or "..", and no clash with the dir backend's temporary files).
 *   Both backends accept exactly the same keys.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_OBJSTORE_H
#define VELO_OBJSTORE_H

#include <glib.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VELO_OBJ_KEY_MAX        1024
#define VELO_OBJ_SEGMENT_MAX    255
/* The largest object a single put accepts (S3's single-PUT limit). */
#define VELO_OBJ_PUT_MAX        (5ull << 30)
/* The most keys one list call returns. */
#define VELO_OBJ_LIST_MAX       100000

#define VELO_OBJ_ERROR (velo_obj_error_quark())
GQuark velo_obj_error_quark(void);

typedef struct VeloObjStore VeloObjStore;

/* What open needs.  Strings are copied; unset members take the defaults. */
typedef struct VeloObjConfig {
    const char *backend;        /* "dir" or "s3" */
    bool create;                /* create the directory / bucket if missing */

    /* dir */
    const char *path;           /* the root directory */
    bool no_sync;               /* skip fsync (tests and scratch stores only) */

    /* s3 */
    const char *endpoint;       /* "http(s)://host[:port]", path-style */
    const char *bucket;         /* 3..63 chars, S3 bucket naming rules */
    const char *region;         /* default "us-east-1" */
    const char *access_key;
    const char *secret_key;
    const char *ca_file;        /* PEM bundle; default: the system's */
    bool insecure;              /* skip TLS peer/host checks (tests only) */
    unsigned timeout_ms;        /* per request, default 30000 */
    unsigned connect_timeout_ms;/* default 5000 */
    unsigned retries;           /* extra tries on 5xx/transport errors; 0:
                                   the default, 2; VELO_OBJ_RETRIES_NONE:
                                   none */
} VeloObjConfig;

#define VELO_OBJ_RETRIES_NONE   UINT_MAX

/* What head and list report of one object. */
typedef struct VeloObjInfo {
    char *key;                  /* set by list only; owned by the list */
    uint64_t size;
} VeloObjInfo;

/* One page of a listing, in ascending byte order of keys. */
typedef struct VeloObjList {
    GArray *items;              /* of VeloObjInfo */
    bool truncated;             /* more keys follow: list again with
                                 * start_after = the last key here */
} VeloObjList;

/*
 * A backend: just a bunch of methods.  The dispatch layer (objstore.c) has
 * checked keys, lengths and pointers before any of them runs, so a backend
 * never re-checks them.  All may block; all but close may fail.
 */
typedef struct VeloObjOps {
    const char *name;

    /* Check @cfg, connect or open the root, create it if cfg->create.
     * Sets s->priv.  Blocks (an S3 backend does one request); may fail. */
    int (*open)(VeloObjStore *s, const VeloObjConfig *cfg, GError **errp);

    /* Free s->priv.  Never fails; no other call may be running. */
    void (*close)(VeloObjStore *s);

    /* Store @len bytes as @key, replacing any object of that key: afterwards
     * a get sees all of it, before it sees the old object or none; durable
     * when it returns.  Blocks; may fail. */
    int (*put)(VeloObjStore *s, const char *key, const void *buf, size_t len,
               GError **errp);

    /* Read up to @len (> 0) bytes at @offset into @buf.  Returns the count
     * read, short only at the end of the object (0 at or past it), or
     * -ENOENT.  Never writes past @buf + @len.  Blocks; may fail. */
    ssize_t (*get)(VeloObjStore *s, const char *key, uint64_t offset,
                   size_t len, void *buf, GError **errp);

    /* The object's size in @info (info->key untouched), or -ENOENT.
     * Blocks; may fail. */
    int (*head)(VeloObjStore *s, const char *key, VeloObjInfo *info,
                GError **errp);

    /* Remove @key.  Removing a missing key succeeds (as in S3).
     * Blocks; may fail. */
    int (*del)(VeloObjStore *s, const char *key, GError **errp);

    /* Append to @out up to @max keys that start with @prefix ("" = all) and
     * sort after @start_after (NULL = from the first), ascending; set
     * out->truncated when more remain.  Blocks; may fail. */
    int (*list)(VeloObjStore *s, const char *prefix, const char *start_after,
                unsigned max, VeloObjList *out, GError **errp);
} VeloObjOps;

/* The handle.  Immutable after open, except what priv's own locks guard. */
struct VeloObjStore {
    const VeloObjOps *ops;
    char *desc;                 /* "dir:/path" or "s3:endpoint/bucket" */
    void *priv;                 /* the backend's state */
};

/* ---- objstore.c: the API callers use ---------------------------------- */

/* Open a store as @cfg says.  Returns NULL with @errp set on failure. */
VeloObjStore *velo_obj_open(const VeloObjConfig *cfg, GError **errp);

/* Close @s (NULL is fine).  No other call on @s may be running. */
void velo_obj_close(VeloObjStore *s);

/* See VeloObjOps for each; these check the key and arguments first
 * (-EINVAL with @errp set for a bad key, NULL buffer or oversized length). */
int velo_obj_put(VeloObjStore *s, const char *key, const void *buf,
                 size_t len, GError **errp);
ssize_t velo_obj_get(VeloObjStore *s, const char *key, uint64_t offset,
                     size_t len, void *buf, GError **errp);
int velo_obj_head(VeloObjStore *s, const char *key, VeloObjInfo *info,
                  GError **errp);
int velo_obj_delete(VeloObjStore *s, const char *key, GError **errp);

/* One page of at most @max (1..VELO_OBJ_LIST_MAX) keys.  Returns a new list
 * in @out (free with velo_obj_list_free) or a negative errno. */
int velo_obj_list(VeloObjStore *s, const char *prefix,
                  const char *start_after, unsigned max, VeloObjList **out,
                  GError **errp);
void velo_obj_list_free(VeloObjList *l);

/*
 * Every key under @prefix, paging through velo_obj_list() (never
 * truncated).  More than @max_keys of them is an error (-EFBIG): the
 * caller knows how many it can have, and a broken or hostile server could
 * list new keys for ever.
 */
int velo_obj_list_all(VeloObjStore *s, const char *prefix, uint64_t max_keys,
                      VeloObjList **out, GError **errp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VeloObjList, velo_obj_list_free)

/* Check @key against the key rules above; @why says which rule failed. */
bool velo_obj_key_check(const char *key, const char **why);

/* Check a list prefix: "" or a key prefix (same characters, no '.' at a
 * segment start, no "//", may end in '/'). */
bool velo_obj_prefix_check(const char *prefix, const char **why);

/* Set @errp to "BACKEND OP KEY: MESSAGE" with code -@err; returns @err.
 * For backends. */
int velo_obj_fail(GError **errp, int err, const VeloObjStore *s,
                  const char *op, const char *key, const char *fmt, ...)
    G_GNUC_PRINTF(6, 7);

/* Append a copy of @key with @size to @out.  For backends. */
void velo_obj_list_add(VeloObjList *out, const char *key, uint64_t size);

/* ---- the backends ------------------------------------------------------ */

/* objstore-dir.c */
extern const VeloObjOps velo_obj_dir_ops;

/* objstore-s3.c */
extern const VeloObjOps velo_obj_s3_ops;

#endif
