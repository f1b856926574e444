/*
 * Velo learned prefetch: the QMP commands velo-profile-list and
 * velo-profile-drop (schema in qapi/velo.json).  They read and delete
 * profile files; a node recording or replaying carries on with what it
 * holds in memory.
 *
 * Built with blockdev.c (the emulator and qemu-storage-daemon both run
 * QMP).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-velo.h"
#include "block/block_int.h"
#include "velo-int.h"
#include "profile-int.h"

/* One file's entry; an unusable file is listed with its error. */
static VeloProfileInfo *profile_info(const char *path, const char *node_name)
{
    VeloProfileInfo *info = g_new0(VeloProfileInfo, 1);
    g_autofree char *err = NULL;
    g_autoptr(VeloProfile) p = NULL;
    info->path = g_strdup(path);
    info->has_node_name = !!node_name;
    info->node_name = g_strdup(node_name);
    if (velo_profile_load(path, &p, &err) < 0) {
        info->has_error = true;
        info->error = g_steal_pointer(&err);
        return info;
    }
    info->valid = true;
    info->has_kind = true;
    info->kind = (p->flags & VELO_PROFILE_F_TEMPLATE) ?
                 VELO_PROFILE_KIND_TEMPLATE : VELO_PROFILE_KIND_DISK;
    if (p->template_name[0]) {
        info->has_q_template = true;
        info->q_template = g_strdup(p->template_name);
    }
    info->has_disk_size = info->has_extent_size = info->has_extents = true;
    info->has_runs = info->has_bytes = true;
    info->has_recorded = info->has_duration_ms = true;
    info->disk_size = p->disk_size;
    info->extent_size = p->extent_size;
    info->extents = p->n_extents;
    info->runs = p->n_runs;
    info->bytes = velo_profile_bytes(p);
    info->recorded = p->recorded;
    info->duration_ms = p->duration_ms;
    return info;
}

static bool is_velo(BlockDriverState *bs)
{
    return bs->drv && !strcmp(bs->drv->format_name, "velo");
}

/* The profile files of velo node @bs: its own, and its template's if any. */
static void node_paths(BlockDriverState *bs, char **disk, char **tmpl)
{
    AioContext *ctx = bdrv_get_aio_context(bs);
    BDRVVeloState *s = bs->opaque;

    aio_context_acquire(ctx);
    *disk = velo_profile_disk_path(s->cache_path);
    *tmpl = s->prof && s->prof->template_name ?
            velo_profile_template_path(s->prof->dir, s->cache_path,
                                       s->prof->template_name) : NULL;
    aio_context_release(ctx);
}

static BlockDriverState *find_velo_node(const char *node_name, Error **errp)
{
    BlockDriverState *bs = bdrv_find_node(node_name);

    if (!bs) {
        error_setg(errp, "no node named '%s'", node_name);
        return NULL;
    }
    if (!is_velo(bs)) {
        error_setg(errp, "node '%s' is not a velo node", node_name);
        return NULL;
    }
    return bs;
}

static void list_node(BlockDriverState *bs, VeloProfileInfoList ***tail)
{
    g_autofree char *disk = NULL;
    g_autofree char *tmpl = NULL;

    node_paths(bs, &disk, &tmpl);
    if (access(disk, F_OK) == 0) {
        QAPI_LIST_APPEND(*tail, profile_info(disk, bs->node_name));
    }
    if (tmpl && access(tmpl, F_OK) == 0) {
        QAPI_LIST_APPEND(*tail, profile_info(tmpl, bs->node_name));
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

VeloProfileInfoList *qmp_velo_profile_list(bool has_node_name,
                                           const char *node_name,
                                           bool has_dir, const char *dir,
                                           Error **errp)
{
    VeloProfileInfoList *head = NULL, **tail = &head;
    BlockDriverState *bs;

    if (has_node_name && has_dir) {
        error_setg(errp, "give node-name or dir, not both");
        return NULL;
    }
    if (has_dir) {
        g_autoptr(GError) gerr = NULL;
        g_autoptr(GDir) d = g_dir_open(dir, 0, &gerr);
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *name;
        guint i;

        if (!d) {
            error_setg(errp, "cannot list profiles in '%s': %s", dir,
                       gerr->message);
            return NULL;
        }
        while ((name = g_dir_read_name(d))) {
            if (g_str_has_suffix(name, VELO_PROFILE_SUFFIX)) {
                g_ptr_array_add(names, g_build_filename(dir, name, NULL));
            }
        }
        qsort(names->pdata, names->len, sizeof(char *), cmp_names);
        for (i = 0; i < names->len; i++) {
            QAPI_LIST_APPEND(tail, profile_info(names->pdata[i], NULL));
        }
        return head;
    }
    if (has_node_name) {
        bs = find_velo_node(node_name, errp);
        if (bs) {
            list_node(bs, &tail);
        }
        return head;
    }
    for (bs = bdrv_next_node(NULL); bs; bs = bdrv_next_node(bs)) {
        if (is_velo(bs)) {
            list_node(bs, &tail);
        }
    }
    return head;
}

void qmp_velo_profile_drop(bool has_node_name, const char *node_name,
                           bool has_q_template, bool q_template,
                           bool has_path, const char *path, Error **errp)
{
    g_autofree char *disk = NULL;
    g_autofree char *tmpl = NULL;
    g_autofree char *err = NULL;
    BlockDriverState *bs;
    int ret;

    if (has_node_name == has_path) {
        error_setg(errp, "give exactly one of node-name and path");
        return;
    }
    if (has_path) {
        if (has_q_template) {
            error_setg(errp, "template goes with node-name, not path");
            return;
        }
        if (velo_profile_unlink(path, &err) < 0) {
            error_setg(errp, "%s", err);
        }
        return;
    }
    bs = find_velo_node(node_name, errp);
    if (!bs) {
        return;
    }
    node_paths(bs, &disk, &tmpl);
    if (has_q_template && q_template && !tmpl) {
        error_setg(errp, "node '%s' has no template", node_name);
        return;
    }
    ret = velo_profile_unlink(disk, &err);
    if (ret < 0 && ret != -ENOENT) {
        error_setg(errp, "%s", err);
        return;
    }
    g_clear_pointer(&err, g_free);
    if (has_q_template && q_template) {
        ret = velo_profile_unlink(tmpl, &err);
        if (ret < 0 && ret != -ENOENT) {
            error_setg(errp, "%s", err);
        }
    }
}
