/*
 * Velo object store: dispatch.  Picks the backend named by the config, checks
 * every key and argument before a backend sees it, and holds the helpers that
 * keep the backends' error messages and listings alike.  See objstore.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include "objstore.h"

G_DEFINE_QUARK(velo-obj-error-quark, velo_obj_error)

static const VeloObjOps *const backends[] = {
    &velo_obj_dir_ops,
    &velo_obj_s3_ops,
};

int velo_obj_fail(GError **errp, int err, const VeloObjStore *s,
                  const char *op, const char *key, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, VELO_OBJ_ERROR, -err, "object store %s: %s%s%s: %s",
                s && s->desc ? s->desc : "(not open)", op,
                key ? " " : "", key ? key : "", msg);
    return err;
}

/*
 * The key rules of objstore.h.  Shared by keys and prefixes: a prefix may
 * also be empty or end in '/' (an unfinished key).
 */
static bool name_check(const char *k, bool is_prefix, const char **why)
{
    size_t n = strlen(k), seg = 0, i;

    if (n == 0 && !is_prefix) {
        *why = "empty key";
        return false;
    }
    if (n > VELO_OBJ_KEY_MAX) {
        *why = "longer than 1024 bytes";
        return false;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = k[i];

        if (c < 0x20 || c > 0x7e) {
            *why = "contains a byte that is not printable ASCII";
            return false;
        }
        if (c == '/') {
            if (seg == 0) {
                *why = i == 0 ? "starts with '/'" : "contains \"//\"";
                return false;
            }
            seg = 0;
            continue;
        }
        if (seg == 0 && c == '.') {
            *why = "has a segment starting with '.' (\".\", \"..\" and "
                   "hidden names are not keys)";
            return false;
        }
        if (++seg > VELO_OBJ_SEGMENT_MAX) {
            *why = "has a segment longer than 255 bytes";
            return false;
        }
    }
    if (n > 0 && seg == 0 && !is_prefix) {
        *why = "ends with '/'";
        return false;
    }
    return true;
}

bool velo_obj_key_check(const char *key, const char **why)
{
    return name_check(key, false, why);
}

bool velo_obj_prefix_check(const char *prefix, const char **why)
{
    return name_check(prefix, true, why);
}

static int check_key(VeloObjStore *s, const char *op, const char *key,
                     GError **errp)
{
    const char *why;

    if (!key) {
        return velo_obj_fail(errp, -EINVAL, s, op, NULL, "no key given");
    }
    if (!velo_obj_key_check(key, &why)) {
        /* Don't echo a hostile key whole: it may hold anything. */
        return velo_obj_fail(errp, -EINVAL, s, op, NULL,
                             "invalid key (%s): keys are printable ASCII "
                             "segments split by '/'", why);
    }
    return 0;
}

VeloObjStore *velo_obj_open(const VeloObjConfig *cfg, GError **errp)
{
    const VeloObjOps *ops = NULL;
    VeloObjStore *s;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(backends); i++) {
        if (cfg->backend && strcmp(cfg->backend, backends[i]->name) == 0) {
            ops = backends[i];
        }
    }
    if (!ops) {
        velo_obj_fail(errp, -EINVAL, NULL, "open", NULL,
                      "unknown backend '%s': use \"dir\" or \"s3\"",
                      cfg->backend ? cfg->backend : "(none)");
        return NULL;
    }
    s = g_new0(VeloObjStore, 1);
    s->ops = ops;
    if (ops->open(s, cfg, errp) < 0) {
        g_free(s->desc);
        g_free(s);
        return NULL;
    }
    return s;
}

void velo_obj_close(VeloObjStore *s)
{
    if (!s) {
        return;
    }
    s->ops->close(s);
    g_free(s->desc);
    g_free(s);
}

int velo_obj_put(VeloObjStore *s, const char *key, const void *buf,
                 size_t len, GError **errp)
{
    int r = check_key(s, "put", key, errp);

    if (r < 0) {
        return r;
    }
    if (!buf && len) {
        return velo_obj_fail(errp, -EINVAL, s, "put", key, "no buffer");
    }
    if (len > VELO_OBJ_PUT_MAX) {
        return velo_obj_fail(errp, -EFBIG, s, "put", key,
                             "%zu bytes is over the 5 GiB single-put limit; "
                             "split the object", len);
    }
    return s->ops->put(s, key, buf ? buf : "", len, errp);
}

ssize_t velo_obj_get(VeloObjStore *s, const char *key, uint64_t offset,
                     size_t len, void *buf, GError **errp)
{
    VeloObjInfo info;
    int r = check_key(s, "get", key, errp);

    if (r < 0) {
        return r;
    }
    if (!buf && len) {
        return velo_obj_fail(errp, -EINVAL, s, "get", key, "no buffer");
    }
    if (len > SSIZE_MAX || offset > INT64_MAX - len) {
        return velo_obj_fail(errp, -EINVAL, s, "get", key,
                             "range %" G_GUINT64_FORMAT "+%zu is too large",
                             offset, len);
    }
    if (len == 0) {
        /* Nothing to read: only say whether it exists. */
        r = s->ops->head(s, key, &info, errp);
        return r < 0 ? r : 0;
    }
    return s->ops->get(s, key, offset, len, buf, errp);
}

int velo_obj_head(VeloObjStore *s, const char *key, VeloObjInfo *info,
                  GError **errp)
{
    int r = check_key(s, "head", key, errp);

    if (r < 0) {
        return r;
    }
    info->key = NULL;
    info->size = 0;
    return s->ops->head(s, key, info, errp);
}

int velo_obj_delete(VeloObjStore *s, const char *key, GError **errp)
{
    int r = check_key(s, "delete", key, errp);

    return r < 0 ? r : s->ops->del(s, key, errp);
}

static void info_clear(gpointer p)
{
    g_free(((VeloObjInfo *)p)->key);
}

void velo_obj_list_free(VeloObjList *l)
{
    if (l) {
        g_array_unref(l->items);
        g_free(l);
    }
}

void velo_obj_list_add(VeloObjList *out, const char *key, uint64_t size)
{
    VeloObjInfo i = { .key = g_strdup(key), .size = size };

    g_array_append_val(out->items, i);
}

int velo_obj_list(VeloObjStore *s, const char *prefix,
                  const char *start_after, unsigned max, VeloObjList **out,
                  GError **errp)
{
    g_autoptr(VeloObjList) l = NULL;
    const char *why;
    int r;

    *out = NULL;
    prefix = prefix ? prefix : "";
    if (!velo_obj_prefix_check(prefix, &why)) {
        return velo_obj_fail(errp, -EINVAL, s, "list", NULL,
                             "invalid prefix (%s)", why);
    }
    if (start_after && strlen(start_after) > VELO_OBJ_KEY_MAX) {
        return velo_obj_fail(errp, -EINVAL, s, "list", NULL,
                             "start_after is longer than a key can be");
    }
    if (max == 0 || max > VELO_OBJ_LIST_MAX) {
        return velo_obj_fail(errp, -EINVAL, s, "list", NULL,
                             "max %u is outside 1..%u", max,
                             VELO_OBJ_LIST_MAX);
    }
    l = g_new0(VeloObjList, 1);
    l->items = g_array_new(FALSE, FALSE, sizeof(VeloObjInfo));
    g_array_set_clear_func(l->items, info_clear);
    r = s->ops->list(s, prefix, start_after && *start_after ? start_after
                     : NULL, max, l, errp);
    if (r < 0) {
        return r;
    }
    g_assert(l->items->len <= max);
    *out = g_steal_pointer(&l);
    return 0;
}

int velo_obj_list_all(VeloObjStore *s, const char *prefix, uint64_t max_keys,
                      VeloObjList **out, GError **errp)
{
    g_autoptr(VeloObjList) all = NULL;
    g_autofree char *after = NULL;
    bool more = true;

    *out = NULL;
    while (more) {
        g_autoptr(VeloObjList) page = NULL;
        guint i;
        int r = velo_obj_list(s, prefix, after, VELO_OBJ_LIST_MAX, &page,
                              errp);

        if (r < 0) {
            return r;
        }
        more = page->truncated && page->items->len;
        if (more) {
            g_free(after);
            after = g_strdup(g_array_index(page->items, VeloObjInfo,
                                           page->items->len - 1).key);
        }
        if (!all) {
            all = g_steal_pointer(&page);
        } else {
            for (i = 0; i < page->items->len; i++) {
                VeloObjInfo *o = &g_array_index(page->items, VeloObjInfo, i);
                velo_obj_list_add(all, o->key, o->size);
            }
        }
        if (all->items->len > max_keys) {
            return velo_obj_fail(errp, -EFBIG, s, "list", prefix,
                                 "more than %" PRIu64 " objects, more than "
                                 "this disk can have: not the bucket or "
                                 "prefix it uses, or a broken server",
                                 max_keys);
        }
    }
    all->truncated = false;
    *out = g_steal_pointer(&all);
    return 0;
}
