/*
 * Velo object store: the "s3" backend's operations, an S3 bucket with
 * path-style URLs (ENDPOINT/BUCKET/KEY) on top of the request layer in
 * s3-http.c (signing, bounds, retries, errors, the handle pool):
 *
 *   put     PUT    /B/KEY                       body, its SHA-256
 *   get     GET    /B/KEY    Range: bytes=a-b   206 checked against Range
 *   head    HEAD   /B/KEY                       size from Content-Length
 *   delete  DELETE /B/KEY                       204 also when missing
 *   list    GET    /B?list-type=2&...           pages of <= 1000 keys
 *   open    GET    /B?list-type=2&max-keys=1    (PUT /B if create)
 *
 * A reply is checked before it is believed: a 206 must carry the range
 * asked for, listed keys must ascend, follow start_after and match the
 * prefix, and a truncated page must carry keys and a token, so a broken
 * server can neither overrun a buffer nor make a caller loop.
 *
 * Threads: any number may call at once (see s3-http.c); the handle's
 * configuration is immutable after open.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>
#include "s3-int.h"
#include "s3-xml.h"

static int s3_put(VeloObjStore *s, const char *key, const void *buf,
                  size_t len, GError **errp)
{
    Req r = {
        .method = "PUT", .op = "put", .key = key, .body = buf,
        .body_len = len, .text_max = ERROR_BODY_MAX,
    };
    int ret = s3_perform_ok(s, &r, errp);

    if (ret == -ENOENT) {
        /* A 404 on PUT can only be the bucket. */
        ret = velo_obj_fail(errp, -ENXIO, s, "put", key, "HTTP 404: the "
                            "bucket is gone; create it again");
    }
    s3_req_done(s, &r);
    return ret;
}

static ssize_t s3_get(VeloObjStore *s, const char *key, uint64_t offset,
                      size_t len, void *buf, GError **errp)
{
    Req r = {
        .method = "GET", .op = "get", .key = key, .range_off = offset,
        .range_len = len, .dst = buf, .text_max = ERROR_BODY_MAX,
    };
    ssize_t ret = s3_perform(s, &r, errp);

    if (ret < 0) {
        goto out;
    }
    if (r.status == 416) {
        ret = 0;                /* the range starts at or past the end */
    } else if (r.status == 206) {
        if (!r.have_cr || r.cr_start != offset ||
            r.cr_end - r.cr_start + 1 != r.dst_got) {
            ret = velo_obj_fail(errp, -EPROTO, s, "get", key,
                                "HTTP 206 with a Content-Range that does "
                                "not match the %zu bytes at %"
                                G_GUINT64_FORMAT " asked for: a broken "
                                "server or proxy", len, offset);
        } else {
            ret = r.dst_got;
        }
    } else if (r.status == 200) {
        ret = r.dst_got;        /* the server ignored Range: we skipped */
    } else {
        ret = s3_http_fail(s, &r, errp);
    }
 out:
    s3_req_done(s, &r);
    return ret;
}

static int s3_head(VeloObjStore *s, const char *key, VeloObjInfo *info,
                   GError **errp)
{
    Req r = {
        .method = "HEAD", .op = "head", .key = key,
        .text_max = ERROR_BODY_MAX,
    };
    curl_off_t cl = -1;
    int ret = s3_perform_ok(s, &r, errp);

    if (ret == 0) {
        curl_easy_getinfo(r.h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl < 0) {
            ret = velo_obj_fail(errp, -EPROTO, s, "head", key, "HTTP %ld "
                                "without Content-Length: a broken server",
                                r.status);
        }
        info->size = cl;
    }
    s3_req_done(s, &r);
    return ret;
}

static int s3_del(VeloObjStore *s, const char *key, GError **errp)
{
    Req r = {
        .method = "DELETE", .op = "delete", .key = key,
        .text_max = ERROR_BODY_MAX,
    };
    int ret = s3_perform_ok(s, &r, errp);

    s3_req_done(s, &r);
    return ret == -ENOENT ? 0 : ret;
}

/*
 * Read one ListObjectsV2 page into @out (at most @room keys).  Checks that
 * it is one, that keys ascend, follow *@lastp (the last key seen on earlier
 * pages, listed or skipped; updated here) and match @prefix, since a
 * hostile reply must not make the caller loop or skip.  Sets *@token to the
 * continuation token when the page is truncated.
 */
static int parse_page(VeloObjStore *s, const GString *xml, const char *prefix,
                      char **lastp, unsigned room, VeloObjList *out,
                      char **token, GError **errp)
{
    g_autofree char *trunc = s3_xml_get(xml->str, xml->len, "IsTruncated",
                                        true);
    const char *blk;
    size_t blen, pos = 0;
    unsigned n = 0;
    char *last = *lastp;

    /* Else an HTML page or an empty body would read as "no keys". */
    if (!g_strstr_len(xml->str, xml->len, "<ListBucketResult") ||
        !g_strstr_len(xml->str, xml->len, "</ListBucketResult>")) {
        return velo_obj_fail(errp, -EPROTO, s, "list", NULL,
                             "the reply is not a whole ListBucketResult: "
                             "not an S3 server, or a cut-short reply");
    }

    while (s3_xml_next(xml->str, xml->len, &pos, "Contents", &blk, &blen)) {
        g_autofree char *key = s3_xml_get(blk, blen, "Key", false);
        g_autofree char *size = s3_xml_get(blk, blen, "Size", true);
        const char *why;
        guint64 sz;

        if (!key || !size || !g_ascii_string_to_unsigned(size, 10, 0,
                                                         G_MAXINT64, &sz,
                                                         NULL)) {
            return velo_obj_fail(errp, -EPROTO, s, "list", NULL,
                                 "a <Contents> entry without a readable "
                                 "<Key> or <Size>: a broken server");
        }
        if (++n > room || (last && strcmp(key, last) <= 0) ||
            !g_str_has_prefix(key, prefix)) {
            return velo_obj_fail(errp, -EPROTO, s, "list", NULL,
                                 "the server listed more keys than asked "
                                 "for, or out of order, or outside the "
                                 "prefix: a broken server");
        }
        if (velo_obj_key_check(key, &why)) {
            velo_obj_list_add(out, key, sz);
        }   /* else: written by another client; not ours to list */
        /* The next page must go past it, listed or not. */
        g_free(last);
        last = *lastp = g_steal_pointer(&key);
    }
    *token = NULL;
    if (trunc && strcmp(trunc, "true") == 0) {
        *token = s3_xml_get(xml->str, xml->len, "NextContinuationToken",
                            false);
        if (!*token || !**token || n == 0) {
            g_free(*token);
            *token = NULL;
            return velo_obj_fail(errp, -EPROTO, s, "list", NULL,
                                 "a truncated page without keys or "
                                 "NextContinuationToken: a broken server");
        }
    }
    return 0;
}

static int s3_list(VeloObjStore *s, const char *prefix,
                   const char *start_after, unsigned max, VeloObjList *out,
                   GError **errp)
{
    g_autofree char *token = NULL;
    g_autofree char *seen = g_strdup(start_after);   /* last key seen */
    unsigned room;
    bool more = false;
    int ret = 0;

    while ((room = max - out->items->len) > 0) {
        char mk[16];
        g_autofree char *query = NULL;
        g_autofree char *next = NULL;
        const char *kv[] = {
            "continuation-token", token,
            "list-type", "2",
            "max-keys", mk,
            "prefix", *prefix ? prefix : NULL,
            "start-after", token ? NULL : start_after,
        };
        Req r = {
            .method = "GET", .op = "list", .query = NULL,
            .text_max = LIST_BODY_MAX,
        };

        g_snprintf(mk, sizeof(mk), "%u", MIN(room, LIST_PAGE_MAX));
        query = s3_build_query(kv, G_N_ELEMENTS(kv) / 2);
        r.query = query;
        ret = s3_perform_ok(s, &r, errp);
        if (ret == 0 && r.text && r.text->len >= LIST_BODY_MAX) {
            ret = velo_obj_fail(errp, -EPROTO, s, "list", NULL,
                                "the reply is over %d bytes: a broken "
                                "server", LIST_BODY_MAX);
        }
        if (ret == 0) {
            static const GString empty;
            ret = parse_page(s, r.text ? r.text : &empty, prefix, &seen,
                             MIN(room, LIST_PAGE_MAX), out, &next, errp);
        }
        s3_req_done(s, &r);
        more = next != NULL;
        if (ret == 0 && next && token && strcmp(next, token) == 0) {
            ret = velo_obj_fail(errp, -EPROTO, s, "list", NULL,
                                "the same continuation token twice: a "
                                "broken server");
        }
        if (ret < 0 || !next) {
            break;
        }
        g_free(token);
        token = g_steal_pointer(&next);
    }
    /* Keys are left: out is full and the last page said so. */
    out->truncated = ret == 0 && more;
    return ret;
}

/* ---- open and close ---------------------------------------------------- */

static bool bucket_name_ok(const char *b)
{
    size_t n = strlen(b), i;

    if (n < 3 || n > 63 || !g_ascii_isalnum(b[0]) ||
        !g_ascii_isalnum(b[n - 1])) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!g_ascii_islower(b[i]) && !g_ascii_isdigit(b[i]) &&
            b[i] != '-' && b[i] != '.') {
            return false;
        }
    }
    return true;
}

static void s3_close(VeloObjStore *s)
{
    S3Store *d = s->priv;

    if (!d) {
        return;
    }
    s3_conn_cleanup(d);
    g_free(d->endpoint);
    g_free(d->bucket);
    g_free(d->sigv4);
    g_free(d->access_key);
    if (d->secret_key) {
        memset(d->secret_key, 0, strlen(d->secret_key));
    }
    g_free(d->secret_key);
    g_free(d->ca_file);
    g_free(d);
    s->priv = NULL;
}

/* Check the bucket answers to these credentials, creating it if asked. */
static int check_bucket(VeloObjStore *s, bool create, GError **errp)
{
    Req r = {
        .method = "GET", .op = "open", .query = "list-type=2&max-keys=1",
        .text_max = ERROR_BODY_MAX,
    };
    Req mk = {
        .method = "PUT", .op = "create bucket", .body = "",
        .text_max = ERROR_BODY_MAX,
    };
    g_autoptr(GError) err = NULL;
    int ret = s3_perform_ok(s, &r, &err);

    if (ret == 0 && (!r.text ||
                     !g_strstr_len(r.text->str, r.text->len,
                                   "<ListBucketResult"))) {
        /* A web server or a captive proxy answers 200 too. */
        ret = velo_obj_fail(&err, -EPROTO, s, "open", NULL,
                            "the endpoint's answer to a bucket listing is "
                            "not a ListBucketResult: is it an S3 server?");
    }
    s3_req_done(s, &r);
    if (ret == -ENXIO && create) {
        ret = s3_perform_ok(s, &mk, errp);
        s3_req_done(s, &mk);
    } else if (ret < 0) {
        g_propagate_error(errp, g_steal_pointer(&err));
    }
    return ret;
}

static int s3_open(VeloObjStore *s, const VeloObjConfig *cfg, GError **errp)
{
    static gsize curl_once;
    S3Store *d;
    int ret;

    if (g_once_init_enter(&curl_once)) {
        /* Not thread-safe in libcurl 7.88: done once, before any use. */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        g_once_init_leave(&curl_once, 1);
    }
    s->desc = g_strdup_printf("s3:%s/%s", cfg->endpoint ? cfg->endpoint : "?",
                              cfg->bucket ? cfg->bucket : "?");
    if (!cfg->endpoint || (!g_str_has_prefix(cfg->endpoint, "http://") &&
                           !g_str_has_prefix(cfg->endpoint, "https://"))) {
        return velo_obj_fail(errp, -EINVAL, s, "open", NULL, "the endpoint "
                             "must be an http:// or https:// URL");
    }
    if (!cfg->bucket || !bucket_name_ok(cfg->bucket)) {
        return velo_obj_fail(errp, -EINVAL, s, "open", NULL, "bucket names "
                             "are 3-63 lowercase letters, digits, '-' and "
                             "'.', starting and ending with a letter or "
                             "digit");
    }
    if (!cfg->access_key || !*cfg->access_key || !cfg->secret_key ||
        !*cfg->secret_key) {
        return velo_obj_fail(errp, -EINVAL, s, "open", NULL, "the s3 "
                             "backend needs an access key and a secret key");
    }
    d = g_new0(S3Store, 1);
    s->priv = d;
    d->endpoint = g_strdup(cfg->endpoint);
    while (g_str_has_suffix(d->endpoint, "/")) {
        d->endpoint[strlen(d->endpoint) - 1] = '\0';
    }
    d->bucket = g_strdup(cfg->bucket);
    d->sigv4 = g_strdup_printf("aws:amz:%s:s3",
                               cfg->region && *cfg->region ? cfg->region
                               : "us-east-1");
    d->access_key = g_strdup(cfg->access_key);
    d->secret_key = g_strdup(cfg->secret_key);
    d->ca_file = g_strdup(cfg->ca_file);
    d->insecure = cfg->insecure;
    d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 30000;
    d->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
                            : 5000;
    d->retries = cfg->retries == VELO_OBJ_RETRIES_NONE ? 0 :
                 cfg->retries ? cfg->retries : 2;
    if (!s3_conn_init(d)) {
        s3_close(s);
        return velo_obj_fail(errp, -ENOMEM, s, "open", NULL,
                             "curl_share_init failed: free memory");
    }
    ret = check_bucket(s, cfg->create, errp);
    if (ret < 0) {
        s3_close(s);
    }
    return ret;
}

const VeloObjOps velo_obj_s3_ops = {
    .name = "s3",
    .open = s3_open,
    .close = s3_close,
    .put = s3_put,
    .get = s3_get,
    .head = s3_head,
    .del = s3_del,
    .list = s3_list,
};
