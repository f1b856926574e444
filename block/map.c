/*
 * Velo allocation map: load which extents of the disk hold data, and which
 * read as zeros, from the server's MAP replies into s->map (and the cache
 * index), so zero extents are never fetched.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "velo-int.h"
#include "trace.h"

int coroutine_fn velo_co_load_map(BDRVVeloState *s, Error **errp)
{
    uint64_t off = 0;
    int ret;

    if (s->map->count[VELO_EXT_UNKNOWN] == 0) {
        return 0;
    }
    while (off < s->disk_size) {
        VeloRange r = { .offset = off, .length = s->disk_size - off };
        g_autoptr(VeloPayload) payload = NULL;
        g_autofree VeloMapEntry *e = NULL;
        uint8_t req[16];
        uint32_t len, n, i;
        const char *why;

        velo_map_req_encode(req, &r);
        ret = velo_co_request(s, VELO_MSG_MAP, req, sizeof(req), &payload,
                              &len, errp);
        if (ret < 0) {
            return ret;
        }
        if (!velo_map_reply_decode(payload, len, &r, &e, &n, &why)) {
            error_setg(errp, "velo server sent a bad MAP reply for export "
                       "'%s': %s", s->export_name, why);
            velo_conn_distrust(s, why);
            return -EPROTO;
        }
        for (i = 0; i < n; i++) {
            velo_extmap_apply(s->map, e[i].offset, e[i].length,
                              e[i].kind != VELO_MAP_DATA);
        }
        off = e[n - 1].offset + e[n - 1].length;
    }
    trace_velo_map_loaded(s, s->map->count[VELO_EXT_DATA],
                          s->map->count[VELO_EXT_ZERO]);
    ret = velo_cache_write_index(s);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot write the index of cache file "
                         "'%s'", s->cache_path);
    }
    return ret;
}
