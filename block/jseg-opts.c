/*
 * Velo write-back and object store options: objstore.* (the store),
 * rpo-local (journal segments, jseg.c), drain-lag-ms (drain.c) and
 * cache-size (the cold-extent tier, tier.c), parsed when the node opens;
 * and the store, opened once the disk's identity is known.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/option.h"
#include "crypto/secret_common.h"
#include "block/block_int.h"
#include "velo-int.h"
#include "objstore.h"

#define VELO_DEFAULT_RPO_LOCAL  30
#define VELO_DEFAULT_DRAIN_LAG_MS 1000    /* drain.c */

static QemuOptsList velo_jseg_opts = {
    .name = "velo-objstore",
    .head = QTAILQ_HEAD_INITIALIZER(velo_jseg_opts.head),
    .desc = {
        { .name = "objstore.backend", .type = QEMU_OPT_STRING,
          .help = "Object store backend: dir or s3" },
        { .name = "objstore.path", .type = QEMU_OPT_STRING,
          .help = "dir: the root directory" },
        { .name = "objstore.endpoint", .type = QEMU_OPT_STRING,
          .help = "s3: http(s)://host[:port]" },
        { .name = "objstore.bucket", .type = QEMU_OPT_STRING,
          .help = "s3: the bucket" },
        { .name = "objstore.region", .type = QEMU_OPT_STRING,
          .help = "s3: the region (default us-east-1)" },
        { .name = "objstore.access-key", .type = QEMU_OPT_STRING,
          .help = "s3: the access key id" },
        { .name = "objstore.secret-key-secret", .type = QEMU_OPT_STRING,
          .help = "s3: ID of the secret object holding the secret key" },
        { .name = "objstore.ca-file", .type = QEMU_OPT_STRING,
          .help = "s3: PEM bundle of trusted CAs" },
        { .name = "objstore.insecure", .type = QEMU_OPT_BOOL,
          .help = "s3: skip TLS checks (tests only)" },
        { .name = "objstore.timeout", .type = QEMU_OPT_NUMBER,
          .help = "s3: seconds a request may take (default 30)" },
        { .name = "objstore.retries", .type = QEMU_OPT_NUMBER,
          .help = "s3: extra tries of a failed request (default 2)" },
        { .name = "cache-size", .type = QEMU_OPT_SIZE,
          .help = "Most clean bytes in the cache; colder ones are evicted" },
        { .name = "rpo-local", .type = QEMU_OPT_NUMBER,
          .help = "Seconds a write may exist on this host only" },
        { .name = "drain-lag-ms", .type = QEMU_OPT_NUMBER,
          .help = "Most ms the drain holds writes back while the guest "
                  "writes" },
        { /* end of list */ }
    },
};

int velo_jseg_parse_opts(BDRVVeloState *s, QDict *options, Error **errp)
{
    QemuOpts *opts = qemu_opts_create(&velo_jseg_opts, NULL, 0, &error_abort);
    VeloJSegConfig *c = &s->jseg.cfg;
    const char *str;
    uint64_t n;
    int ret = -EINVAL;

    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        goto out;
    }
    n = qemu_opt_get_number(opts, "rpo-local", VELO_DEFAULT_RPO_LOCAL);
    if (n < 3 || n > 86400) {
        error_setg(errp, "velo: rpo-local must be from 3 to 86400 s");
        goto out;
    }
    s->jseg.rpo_local = n;
    n = qemu_opt_get_number(opts, "drain-lag-ms", VELO_DEFAULT_DRAIN_LAG_MS);
    if (n > 60000) {
        error_setg(errp, "velo: drain-lag-ms must be from 0 to 60000 ms");
        goto out;
    }
    s->drain_lag_ns = n * SCALE_MS;
    s->tier.limit = qemu_opt_get_size(opts, "cache-size", 0);
    if (s->tier.limit && s->tier.limit < 16 * 1024 * 1024) {
        error_setg(errp, "velo: cache-size must be 0 (no limit) or at least "
                   "16 MiB");
        goto out;
    }
    str = qemu_opt_get(opts, "objstore.backend");
    if (!str) {
        if (qemu_opt_get(opts, "objstore.path") ||
            qemu_opt_get(opts, "objstore.endpoint")) {
            error_setg(errp, "velo: objstore needs objstore.backend (dir or "
                       "s3)");
            goto out;
        }
        ret = 0;
        goto out;
    }
    if (strcmp(str, "dir") && strcmp(str, "s3")) {
        error_setg(errp, "velo: objstore.backend must be dir or s3, not "
                   "'%s'", str);
        goto out;
    }
    c->backend = g_strdup(str);
    c->path = g_strdup(qemu_opt_get(opts, "objstore.path"));
    c->endpoint = g_strdup(qemu_opt_get(opts, "objstore.endpoint"));
    c->bucket = g_strdup(qemu_opt_get(opts, "objstore.bucket"));
    c->region = g_strdup(qemu_opt_get(opts, "objstore.region"));
    c->access_key = g_strdup(qemu_opt_get(opts, "objstore.access-key"));
    c->ca_file = g_strdup(qemu_opt_get(opts, "objstore.ca-file"));
    c->insecure = qemu_opt_get_bool(opts, "objstore.insecure", false);
    /*
     * A drain of the node (and closing it) waits for an upload under way:
     * up to timeout x (retries + 1) when the store hangs.
     */
    n = qemu_opt_get_number(opts, "objstore.timeout", 0);
    if (n > 3600 || (n == 0 && qemu_opt_get(opts, "objstore.timeout"))) {
        error_setg(errp, "velo: objstore.timeout must be from 1 to 3600 s");
        goto out;
    }
    c->timeout_ms = n * 1000;
    if (qemu_opt_get(opts, "objstore.retries")) {
        n = qemu_opt_get_number(opts, "objstore.retries", 0);
        if (n > 10) {
            error_setg(errp, "velo: objstore.retries must be from 0 to 10");
            goto out;
        }
        c->retries = n ? n : VELO_OBJ_RETRIES_NONE;
    }   /* else 0: the library's default */
    str = qemu_opt_get(opts, "objstore.secret-key-secret");
    if (str) {
        c->secret_key = qcrypto_secret_lookup_as_utf8(str, errp);
        if (!c->secret_key) {
            error_prepend(errp, "velo: objstore.secret-key-secret: ");
            goto out;
        }
    }
    ret = 0;
out:
    qemu_opts_del(opts);
    return ret;
}

int velo_jseg_start(BDRVVeloState *s, Error **errp)
{
    VeloJSegConfig *c = &s->jseg.cfg;
    VeloObjConfig cfg = {
        .backend = c->backend, .create = true, .path = c->path,
        .endpoint = c->endpoint, .bucket = c->bucket, .region = c->region,
        .access_key = c->access_key, .secret_key = c->secret_key,
        .ca_file = c->ca_file, .insecure = c->insecure,
        .timeout_ms = c->timeout_ms, .retries = c->retries,
    };
    int ret;

    if (c->backend) {
        ret = velo_jseg_open(s, &cfg, s->jseg.rpo_local, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return velo_tier_open(s, errp);
}

void velo_jseg_free_config(BDRVVeloState *s)
{
    VeloJSegConfig *c = &s->jseg.cfg;

    g_free(c->backend);
    g_free(c->path);
    g_free(c->endpoint);
    g_free(c->bucket);
    g_free(c->region);
    g_free(c->access_key);
    g_free(c->ca_file);
    if (c->secret_key) {
        memset(c->secret_key, 0, strlen(c->secret_key));
        g_free(c->secret_key);
    }
    memset(c, 0, sizeof(*c));
}
