/*
 * Velo block driver glue: options, open/close, geometry, block status,
 * statistics and the BlockDriver table.  The work happens in conn.c
 * (connection), fetch.c (read/write paths, RAM tier) and cache.c (cache
 * file).
 *
 *   -blockdev driver=velo,node-name=N,server.type=inet,server.host=H,
 *             server.port=P,export=E,cache.file=PATH[,ram-size=...]
 *   -drive driver=velo,...      velo://host[:port]/export
 *
 * Opening: connect (retrying up to open-timeout), then open the cache file
 * (created on first use, checked against the disk afterwards), then load the
 * allocation map.  If the server can't be reached but the cache file holds
 * this disk, the node opens anyway and serves what is cached while it keeps
 * reconnecting in the background.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-sockets.h"
#include "qapi/qobject-input-visitor.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qstring.h"
#include "qapi/util.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "qemu/module.h"
#include "qemu/option.h"
#include "qemu/uri.h"
#include "block/block_int.h"
#include "block/qdict.h"
#include "sysemu/block-backend.h"
#include "crypto/secret_common.h"
#include "velo-int.h"
#include "tls.h"
#include "profile-int.h"
#include "trace.h"

#define VELO_DEFAULT_PORT       10810
#define VELO_DEFAULT_RAM        (64 * MiB)
#define VELO_DEFAULT_READAHEAD  (8 * MiB)
#define VELO_DEFAULT_INFLIGHT   64
#define VELO_DEFAULT_RECONNECT  60
#define VELO_DEFAULT_REPLY_TIMEOUT 60

static QemuOptsList velo_runtime_opts = {
    .name = "velo",
    .head = QTAILQ_HEAD_INITIALIZER(velo_runtime_opts.head),
    .desc = {
        { .name = "export", .type = QEMU_OPT_STRING,
          .help = "Export name on the velo server" },
        { .name = "cache.file", .type = QEMU_OPT_STRING,
          .help = "Persistent local cache file" },
        { .name = "ram-size", .type = QEMU_OPT_SIZE,
          .help = "RAM cache tier size in bytes" },
        { .name = "readahead-max", .type = QEMU_OPT_SIZE,
          .help = "Largest sequential readahead window in bytes" },
        { .name = "max-inflight", .type = QEMU_OPT_NUMBER,
          .help = "Most fetch requests in flight" },
        { .name = "write-mode", .type = QEMU_OPT_STRING,
          .help = "read-only, cloud-persist or write-back" },
        { .name = "reconnect-delay", .type = QEMU_OPT_NUMBER,
          .help = "Seconds I/O waits for a lost server before failing" },
        { .name = "open-timeout", .type = QEMU_OPT_NUMBER,
          .help = "Seconds to keep trying to connect when opening" },
        { .name = "reply-timeout", .type = QEMU_OPT_NUMBER,
          .help = "Seconds without any reply before the connection is cut" },
        { .name = "tls-creds", .type = QEMU_OPT_STRING,
          .help = "ID of the TLS credentials object (client endpoint)" },
        { .name = "tls-hostname", .type = QEMU_OPT_STRING,
          .help = "Host name the server certificate must match" },
        { .name = "allow-plaintext", .type = QEMU_OPT_BOOL,
          .help = "Allow plaintext to a non-loopback server" },
        { .name = "compress", .type = QEMU_OPT_BOOL,
          .help = "Ask the server for zstd-compressed extents" },
        { .name = "dedup-store", .type = QEMU_OPT_STRING,
          .help = "Directory of the host's shared content store" },
        { .name = "key-secret", .type = QEMU_OPT_STRING,
          .help = "ID of the secret that encrypts the cache file" },
        { .name = "cache-compress", .type = QEMU_OPT_BOOL,
          .help = "Store extents zstd-compressed in the cache file" },
        { /* end of list */ }
    },
};

/* velo://host[:port]/export  or  velo+unix:///export?socket=PATH */
static void velo_parse_filename(const char *filename, QDict *options,
                                Error **errp)
{
    g_autoptr(QDict) out = qdict_new();
    URI *uri = uri_parse(filename);
    QueryParams *qp = NULL;
    const char *export;
    bool is_unix;

    if (!uri) {
        error_setg(errp, "invalid velo URI '%s': expected "
                   "velo://host[:port]/export", filename);
        return;
    }
    is_unix = !g_strcmp0(uri->scheme, "velo+unix");
    if (!is_unix && g_strcmp0(uri->scheme, "velo")) {
        error_setg(errp, "invalid velo URI '%s': scheme must be velo or "
                   "velo+unix", filename);
        goto out;
    }
    export = uri->path ? uri->path + (uri->path[0] == '/') : "";
    if (!*export) {
        error_setg(errp, "invalid velo URI '%s': no export name in the path",
                   filename);
        goto out;
    }
    qp = query_params_parse(uri->query);
    if (is_unix) {
        if (uri->server || uri->port || qp->n != 1 ||
            strcmp(qp->p[0].name, "socket")) {
            error_setg(errp, "invalid velo URI '%s': velo+unix needs "
                       "?socket=PATH and no host", filename);
            goto out;
        }
        qdict_put_str(out, "server.type", "unix");
        qdict_put_str(out, "server.path", qp->p[0].value);
    } else {
        if (!uri->server || qp->n) {
            error_setg(errp, "invalid velo URI '%s': need a host and no "
                       "query", filename);
            goto out;
        }
        qdict_put_str(out, "server.type", "inet");
        qdict_put_str(out, "server.host", uri->server);
        qdict_put_int(out, "server.port",
                      uri->port ? uri->port : VELO_DEFAULT_PORT);
    }
    qdict_put_str(out, "export", export);
    qdict_join(options, out, false);
out:
    if (qp) {
        query_params_free(qp);
    }
    uri_free(uri);
}

static SocketAddress *velo_parse_server(QDict *options, Error **errp)
{
    QDict *addr = NULL;
    Visitor *iv = NULL;
    SocketAddress *saddr = NULL;

    qdict_extract_subqdict(options, &addr, "server.");
    if (!qdict_size(addr)) {
        error_setg(errp, "velo: option 'server' is required: the address of "
                   "the velo export, e.g. server.type=inet,"
                   "server.host=HOST,server.port=PORT");
        goto done;
    }
    iv = qobject_input_visitor_new_flat_confused(addr, errp);
    if (!iv) {
        goto done;
    }
    if (!visit_type_SocketAddress(iv, NULL, &saddr, errp)) {
        error_prepend(errp, "velo: bad 'server' option: ");
        goto done;
    }
done:
    qobject_unref(addr);
    visit_free(iv);
    return saddr;
}

/* Is @addr on this host, so that plaintext never leaves it? */
static bool velo_addr_is_local(SocketAddress *addr)
{
    const char *h;

    if (addr->type != SOCKET_ADDRESS_TYPE_INET) {
        return true;                    /* unix, vsock, fd */
    }
    h = addr->u.inet.host;
    return !strcmp(h, "localhost") || g_str_has_prefix(h, "127.") ||
           !strcmp(h, "::1") || !strcmp(h, "[::1]");
}

/* tls-creds, tls-hostname and the plaintext rule. */
static bool velo_parse_tls(BDRVVeloState *s, QemuOpts *opts, Error **errp)
{
    const char *creds = qemu_opt_get(opts, "tls-creds");
    const char *host = qemu_opt_get(opts, "tls-hostname");

    if (!creds) {
        if (host) {
            error_setg(errp, "velo: tls-hostname needs tls-creds");
            return false;
        }
        if (!velo_addr_is_local(s->saddr) &&
            !qemu_opt_get_bool(opts, "allow-plaintext", false)) {
            error_setg(errp, "velo: refusing to stream export '%s' in "
                       "plaintext from %s, which is not a loopback address: "
                       "give tls-creds, or set allow-plaintext=on if the "
                       "link is protected otherwise", s->export_name,
                       s->saddr->u.inet.host);
            return false;
        }
        return true;
    }
    s->tlscreds = velo_tls_creds_get(creds, QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
                                     "velo: tls-creds", errp);
    if (!s->tlscreds) {
        return false;
    }
    if (host) {
        s->tlshostname = g_strdup(host);
    } else if (s->saddr->type == SOCKET_ADDRESS_TYPE_INET) {
        s->tlshostname = g_strdup(s->saddr->u.inet.host);
    }
    return true;
}

static int velo_parse_opts(BDRVVeloState *s, QDict *options, Error **errp)
{
    QemuOpts *opts = qemu_opts_create(&velo_runtime_opts, NULL, 0,
                                      &error_abort);
    Error *local_err = NULL;
    const char *str;
    uint64_t n;
    int ret = -EINVAL;

    s->saddr = velo_parse_server(options, errp);
    if (!s->saddr) {
        goto out;
    }
    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        goto out;
    }
    str = qemu_opt_get(opts, "export");
    if (!str || !*str || strlen(str) > VELO_MAX_STRING) {
        error_setg(errp, "velo: option 'export' is required: the export "
                   "name on the server (1 to %d bytes)", VELO_MAX_STRING);
        goto out;
    }
    s->export_name = g_strdup(str);
    str = qemu_opt_get(opts, "cache.file");
    s->cache_node = qdict_haskey(options, "cache-node");
    if (s->cache_node && str) {
        error_setg(errp, "velo: give cache.file or cache-node, not both");
        goto out;
    }
    if (!s->cache_node && (!str || !*str)) {
        error_setg(errp, "velo: option 'cache.file' is required: a local "
                   "file for the persistent extent cache (created if "
                   "missing); or cache-node, a block node that holds it");
        goto out;
    }
    s->cache_path = g_strdup(str);
    s->ram_size = qemu_opt_get_size(opts, "ram-size", VELO_DEFAULT_RAM);
    s->readahead_max = qemu_opt_get_size(opts, "readahead-max",
                                         VELO_DEFAULT_READAHEAD);
    n = qemu_opt_get_number(opts, "max-inflight", VELO_DEFAULT_INFLIGHT);
    if (n < 1 || n > 1024) {
        error_setg(errp, "velo: max-inflight must be from 1 to 1024, not %"
                   PRIu64, n);
        goto out;
    }
    s->max_inflight_opt = n;
    n = qemu_opt_get_number(opts, "reconnect-delay", VELO_DEFAULT_RECONNECT);
    if (n > 86400) {
        error_setg(errp, "velo: reconnect-delay must be at most 86400 s");
        goto out;
    }
    s->reconnect_delay = n;
    n = qemu_opt_get_number(opts, "reply-timeout", VELO_DEFAULT_REPLY_TIMEOUT);
    if (n > 86400) {
        error_setg(errp, "velo: reply-timeout must be at most 86400 s");
        goto out;
    }
    s->reply_timeout = n;
    n = qemu_opt_get_number(opts, "open-timeout", 0);
    if (n > 86400) {
        error_setg(errp, "velo: open-timeout must be at most 86400 s");
        goto out;
    }
    s->open_timeout = n;
    str = qemu_opt_get(opts, "write-mode");
    s->write_mode = qapi_enum_parse(&VeloWriteMode_lookup, str,
                                    VELO_WRITE_MODE_CLOUD_PERSIST, &local_err);
    if (local_err) {
        error_propagate_prepend(errp, local_err, "velo: bad write-mode "
                                "(use read-only, cloud-persist or "
                                "write-back): ");
        goto out;
    }
    if (s->readahead_max > 256 * MiB) {
        error_setg(errp, "velo: readahead-max must be at most 256 MiB");
        goto out;
    }
    if (!velo_parse_tls(s, opts, errp)) {
        goto out;
    }
    s->want_features = (qemu_opt_get_bool(opts, "compress", true) ?
                        VELO_F_ZSTD : 0) | VELO_F_WRITE | VELO_F_PRIO;
    str = qemu_opt_get(opts, "dedup-store");
    if (str && qemu_opt_get(opts, "key-secret")) {
        error_setg(errp, "velo: dedup-store keeps extents unencrypted in a "
                   "directory that the host's disks share, so it can't go "
                   "with key-secret (encryption at rest): drop one of them");
        goto out;
    }
    if (str) {
        const char *why;

        s->cas = velo_cas_open(str, &why);
        if (!s->cas) {
            error_setg_errno(errp, errno, "velo: dedup-store '%s': %s", str,
                             why);
            goto out;
        }
        s->want_features |= VELO_F_HASH;
    }
    s->cache_compress = qemu_opt_get_bool(opts, "cache-compress", false);
    str = qemu_opt_get(opts, "key-secret");
    if (str) {
        if (qcrypto_secret_lookup(str, &s->secret, &s->secret_len, errp) < 0) {
            error_prepend(errp, "velo: key-secret: ");
            goto out;
        }
        if (s->secret_len != 16 && s->secret_len != 32) {
            error_setg(errp, "velo: key-secret '%s' holds %zu bytes; the "
                       "cache key must be 16 or 32 bytes (AES-128 or "
                       "AES-256; use format=base64 for binary keys)", str,
                       s->secret_len);
            goto out;
        }
    }
    ret = 0;
out:
    qemu_opts_del(opts);
    return ret;
}

typedef struct VeloOpenCo {
    BDRVVeloState *s;
    bool done;
    bool connected;
    int ret;
    Error *err;
} VeloOpenCo;

static void coroutine_fn velo_open_connect_entry(void *opaque)
{
    VeloOpenCo *o = opaque;

    o->connected = velo_co_wait_connected(o->s, o->s->open_timeout);
    o->done = true;
    aio_wait_kick();
}

static void coroutine_fn velo_open_map_entry(void *opaque)
{
    VeloOpenCo *o = opaque;

    o->ret = velo_co_load_map(o->s, &o->err);
    o->done = true;
    aio_wait_kick();
}

static void coroutine_fn velo_open_journal_entry(void *opaque)
{
    VeloOpenCo *o = opaque;

    o->ret = velo_co_journal_start(o->s, &o->err);
    o->done = true;
    aio_wait_kick();
}

static void velo_run_co(BlockDriverState *bs, CoroutineEntry *entry,
                        VeloOpenCo *o)
{
    o->done = false;
    aio_co_enter(bdrv_get_aio_context(bs), qemu_coroutine_create(entry, o));
    BDRV_POLL_WHILE(bs, !o->done);
}

static void velo_free_state(BDRVVeloState *s)
{
    /* Background coroutines hold in_flight; none may outlive the node. */
    s->closing = true;
    if (s->bs) {
        BDRV_POLL_WHILE(s->bs, s->tier.running || s->jseg.running ||
                        s->wb_jobs ||
                        (s->jrn && (s->jrn->passes ||
                                    s->jrn->resync_running)));
    }
    velo_drain_detach(s);
    velo_profile_close(s);
    velo_conn_stop(s);
    velo_fetch_cleanup(s);
    velo_cache_close(s);
    velo_extmap_free(s->map);
    s->map = NULL;
    qapi_free_SocketAddress(s->saddr);
    g_free(s->export_name);
    g_free(s->cache_path);
    if (s->tlscreds) {
        object_unref(OBJECT(s->tlscreds));
        s->tlscreds = NULL;
    }
    g_free(s->tlshostname);
    velo_cas_close(s->cas);
    s->cas = NULL;
    velo_tier_close(s);
    velo_jseg_close(s);
    velo_jseg_free_config(s);
    velo_journal_free(s);
    if (s->secret) {
        memset(s->secret, 0, s->secret_len);
        g_free(s->secret);
        s->secret = NULL;
    }
}

static int velo_open(BlockDriverState *bs, QDict *options, int flags,
                     Error **errp)
{
    BDRVVeloState *s = bs->opaque;
    VeloOpenCo o = { .s = s };
    int ret;

    s->bs = bs;
    s->ctx = bdrv_get_aio_context(bs);
    ret = velo_parse_opts(s, options, errp);
    if (ret == 0) {
        ret = velo_profile_parse_opts(s, options, errp);
    }
    if (ret == 0) {
        ret = velo_jseg_parse_opts(s, options, errp);
    }
    if (ret < 0) {
        goto fail;
    }
    if (s->write_mode == VELO_WRITE_MODE_READ_ONLY) {
        ret = bdrv_apply_auto_read_only(bs, "velo: write-mode=read-only "
                                        "needs read-only=on (or "
                                        "auto-read-only=on)", errp);
        if (ret < 0) {
            goto fail;
        }
    }

    ret = velo_journal_open_child(bs, options, errp);
    if (ret < 0) {
        goto fail;
    }

    velo_conn_start(s);
    velo_run_co(bs, velo_open_connect_entry, &o);
    if (!o.connected) {
        if (!s->cache_node && access(s->cache_path, F_OK) != 0) {
            g_autofree char *within = s->open_timeout ?
                g_strdup_printf(" within %u s (open-timeout)", s->open_timeout) :
                g_strdup("");
            error_setg(errp, "cannot connect to velo server for export '%s'%s: "
                       "%s", s->export_name, within,
                       s->last_error ? s->last_error : "not connected");
            ret = -EIO;
            goto fail;
        }
        warn_report("velo: server for export '%s' unreachable (%s); serving "
                    "from cache file '%s' and reconnecting", s->export_name,
                    s->last_error ? s->last_error : "?",
                    s->cache_path ? s->cache_path : "(cache-node)");
    }

    ret = velo_cache_open(s, options, errp);
    if (ret < 0) {
        goto fail;
    }
    velo_fetch_init(s);

    if (s->connected) {
        velo_run_co(bs, velo_open_map_entry, &o);
        if (o.ret < 0) {
            error_propagate_prepend(errp, o.err, "cannot load the allocation "
                                    "map: ");
            ret = o.ret;
            goto fail;
        }
    }
    ret = velo_jseg_start(s, errp);
    if (ret < 0) {
        goto fail;
    }
    if (s->jrn) {
        velo_run_co(bs, velo_open_journal_entry, &o);
        if (o.ret < 0) {
            error_propagate(errp, o.err);
            ret = o.ret;
            goto fail;
        }
        velo_drain_attach(s, s->ctx);
    }
    velo_profile_start(s);
    bs->supported_write_flags = BDRV_REQ_FUA;
    bs->supported_zero_flags = BDRV_REQ_FUA;
    trace_velo_open(s, s->export_name, s->disk_size, s->extent_size,
                    s->connected);
    return 0;

fail:
    velo_free_state(s);
    return ret;
}

static void velo_close(BlockDriverState *bs)
{
    velo_free_state(bs->opaque);
}

static int64_t velo_getlength(BlockDriverState *bs)
{
    BDRVVeloState *s = bs->opaque;

    return s->disk_size;
}

static void velo_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BDRVVeloState *s = bs->opaque;

    bs->bl.request_alignment = 1;
    bs->bl.opt_transfer = s->extent_size;
    bs->bl.max_pwrite_zeroes = 64 * MiB;
}

static int coroutine_fn velo_co_block_status(BlockDriverState *bs,
                                             bool want_zero, int64_t offset,
                                             int64_t bytes, int64_t *pnum,
                                             int64_t *map,
                                             BlockDriverState **file)
{
    BDRVVeloState *s = bs->opaque;
    uint64_t idx = offset >> s->map->extent_shift;
    uint64_t max = ((offset + bytes - 1) >> s->map->extent_shift) - idx + 1;
    uint64_t run = velo_extmap_run(s->map, idx, max);
    uint64_t end = MIN((idx + run) << s->map->extent_shift, s->disk_size);

    *pnum = MIN(end, (uint64_t)(offset + bytes)) - offset;
    return velo_extmap_get(s->map, idx) == VELO_EXT_ZERO ?
           BDRV_BLOCK_ZERO : BDRV_BLOCK_DATA;
}

static int coroutine_fn velo_co_flush(BlockDriverState *bs)
{
    BDRVVeloState *s = bs->opaque;

    return s->jrn ? velo_co_journal_flush(s) : velo_cache_flush(s);
}

static BlockStatsSpecific *velo_get_specific_stats(BlockDriverState *bs)
{
    BDRVVeloState *s = bs->opaque;
    BlockStatsSpecific *st = g_new0(BlockStatsSpecific, 1);
    BlockStatsSpecificVelo *v = &st->u.velo;

    st->driver = BLOCKDEV_DRIVER_VELO;
    v->bytes_fetched = s->stats.bytes_fetched;
    v->bytes_fetched_raw = s->stats.bytes_fetched_raw;
    v->dedup_extents = s->stats.dedup_refs;
    v->dedup_bytes = s->stats.dedup_bytes;
    v->dedup_misses = s->stats.ref_misses;
    v->corrupt_entries = s->stats.corrupt_entries;
    v->bytes_wire = s->stats.bytes_wire;
    v->ram_hits = s->stats.ram_hits;
    v->cache_hits = s->stats.cache_hits;
    v->misses = s->stats.misses;
    v->zero_reads = s->stats.zero_reads;
    v->fetches = s->stats.fetches;
    v->readahead_fetches = s->stats.readahead_fetches;
    v->fetches_in_flight = s->inflight;
    v->fetch_latency_avg_us = s->stats.fetch_count ?
        s->stats.fetch_ns_total / s->stats.fetch_count / 1000 : 0;
    v->fetch_latency_max_us = s->stats.fetch_ns_max / 1000;
    v->extents_cached = s->map->count[VELO_EXT_CACHED] +
                        s->map->count[VELO_EXT_DIRTY];
    v->extents_pinned = s->map->count[VELO_EXT_DIRTY];
    v->extents_total = s->map->n_extents;
    v->extent_size = s->extent_size;
    v->ram_bytes = s->ram_count * s->extent_size;
    v->reconnects = s->stats.reconnects;
    v->connected = s->connected;
    velo_profile_stats(s, v);
    v->tier_hits = s->tier.hits;
    v->tier_misses = s->tier.misses;
    v->tier_evictions = s->tier.evictions;
    v->tier_bytes_put = s->tier.bytes_put;
    v->tier_put_errors = s->tier.put_errors;
    velo_journal_stats(s, v);
    return st;
}

/*
 * blockdev-reopen may change write-mode at run time (read-only,
 * cloud-persist, write-back: the latter needs the journal child, and
 * switching to it starts the drain, away from it pauses it); every other
 * velo option must stay as it is.  An omitted
 * write-mode means the default, as for any reopened option.
 */
static int velo_reopen_prepare(BDRVReopenState *state,
                               BlockReopenQueue *queue, Error **errp)
{
    BDRVVeloState *s = state->bs->opaque;
    const char *str = qdict_get_try_str(state->options, "write-mode");
    Error *local_err = NULL;
    VeloWriteMode mode;

    mode = qapi_enum_parse(&VeloWriteMode_lookup, str,
                           VELO_WRITE_MODE_CLOUD_PERSIST, &local_err);
    if (local_err) {
        error_propagate_prepend(errp, local_err, "velo: bad write-mode "
                                "(use read-only, cloud-persist or "
                                "write-back): ");
        return -EINVAL;
    }
    if (mode != VELO_WRITE_MODE_READ_ONLY && !(state->flags & BDRV_O_RDWR)) {
        error_setg(errp, "velo: write-mode=%s needs read-only=off",
                   VeloWriteMode_str(mode));
        return -EINVAL;
    }
    if (mode == VELO_WRITE_MODE_WRITE_BACK && !s->jrn) {
        error_setg(errp, "velo: write-mode=write-back needs a journal node "
                   "(option journal), given when the node is opened");
        return -EINVAL;
    }
    if (mode == VELO_WRITE_MODE_READ_ONLY && (state->flags & BDRV_O_RDWR)) {
        error_setg(errp, "velo: write-mode=read-only needs read-only=on");
        return -EINVAL;
    }
    qdict_del(state->options, "write-mode");
    state->opaque = g_new(VeloWriteMode, 1);
    *(VeloWriteMode *)state->opaque = mode;
    return 0;
}

static void velo_reopen_commit(BDRVReopenState *state)
{
    BDRVVeloState *s = state->bs->opaque;

    s->write_mode = *(VeloWriteMode *)state->opaque;
    trace_velo_write_mode(s, VeloWriteMode_str(s->write_mode));
    velo_drain_kick(s);
    g_free(state->opaque);
    state->opaque = NULL;
}

static void velo_reopen_abort(BDRVReopenState *state)
{
    g_free(state->opaque);
    state->opaque = NULL;
}

/*
 * The cache child is written whatever the write mode (fetched extents go
 * there), and resized when created; no one else may write or resize it.
 * The journal child follows the default rules for metadata.
 */
static void velo_child_perm(BlockDriverState *bs, BdrvChild *c,
                            BdrvChildRole role, BlockReopenQueue *reopen_queue,
                            uint64_t perm, uint64_t shared,
                            uint64_t *nperm, uint64_t *nshared)
{
    bdrv_default_perms(bs, c, role, reopen_queue, perm, shared, nperm,
                       nshared);
    if (c && (!strcmp(c->name, "cache-file") ||
              !strcmp(c->name, "cache-node"))) {
        *nperm |= BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                  BLK_PERM_RESIZE;
        *nshared &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
    }
}

static void velo_attach_aio_context(BlockDriverState *bs, AioContext *ctx)
{
    BDRVVeloState *s = bs->opaque;

    velo_conn_attach(s, ctx);
    velo_profile_attach(s, ctx);
    velo_drain_attach(s, ctx);
}

static void coroutine_fn velo_co_drain_begin(BlockDriverState *bs)
{
    velo_conn_drain_begin(bs->opaque);
}

static void coroutine_fn velo_co_drain_end(BlockDriverState *bs)
{
    BDRVVeloState *s = bs->opaque;

    velo_conn_drain_end(s);
    if (!s->drained) {
        /* Only once the last of nested drained sections ends. */
        velo_profile_kick(s);
        velo_drain_kick(s);
        velo_tier_kick(s);
    }
}

static void velo_detach_aio_context(BlockDriverState *bs)
{
    velo_drain_detach(bs->opaque);
    velo_profile_detach(bs->opaque);
    velo_conn_detach(bs->opaque);
}

static const char *const velo_strong_runtime_opts[] = {
    "server.",
    "export",
    "cache.file",
    "cache-node",
    NULL
};

/* One driver per URI scheme; everything but the protocol name is shared. */
#define VELO_DRIVER_COMMON                                      \
    .format_name                = "velo",                       \
    .instance_size              = sizeof(BDRVVeloState),        \
    .bdrv_parse_filename        = velo_parse_filename,          \
    .bdrv_file_open             = velo_open,                    \
    .bdrv_close                 = velo_close,                   \
    .bdrv_reopen_prepare        = velo_reopen_prepare,          \
    .bdrv_reopen_commit         = velo_reopen_commit,           \
    .bdrv_reopen_abort          = velo_reopen_abort,            \
    .bdrv_getlength             = velo_getlength,               \
    .bdrv_refresh_limits        = velo_refresh_limits,          \
    .bdrv_co_preadv             = velo_co_preadv,               \
    .bdrv_co_pwritev            = velo_co_pwritev,              \
    .bdrv_co_pwrite_zeroes      = velo_co_pwrite_zeroes,        \
    .bdrv_co_flush_to_disk      = velo_co_flush,                \
    .bdrv_co_block_status       = velo_co_block_status,         \
    .bdrv_get_specific_stats    = velo_get_specific_stats,      \
    .bdrv_attach_aio_context    = velo_attach_aio_context,      \
    .bdrv_detach_aio_context    = velo_detach_aio_context,      \
    .bdrv_co_drain_begin        = velo_co_drain_begin,          \
    .bdrv_co_drain_end          = velo_co_drain_end,            \
    .bdrv_child_perm            = velo_child_perm,              \
    .strong_runtime_opts        = velo_strong_runtime_opts

static BlockDriver bdrv_velo = {
    .protocol_name              = "velo",
    VELO_DRIVER_COMMON,
};

static BlockDriver bdrv_velo_unix = {
    .protocol_name              = "velo+unix",
    VELO_DRIVER_COMMON,
};

static void bdrv_velo_init(void)
{
    bdrv_register(&bdrv_velo);
    bdrv_register(&bdrv_velo_unix);
}

block_init(bdrv_velo_init);
