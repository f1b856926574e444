/*
 * Velo object store: the "s3" backend, an S3 bucket over HTTP(S) with
 * path-style URLs (ENDPOINT/BUCKET/KEY), signed with AWS SigV4 by libcurl
 * (CURLOPT_AWS_SIGV4, libcurl >= 7.75; tested with 7.88 against radosgw).
 *
 * The four SigV4 rules that libcurl 7.88 needs (every request gets 403
 * without them):
 *   1. curl does not send x-amz-content-sha256: we add it, with the
 *      SHA-256 of the body (of "" for bodiless requests), and curl signs it.
 *   2. curl signs the query string as given: we build it sorted and
 *      percent-encoded (build_query).
 *   3. curl signs every custom header, removal entries ("Expect:") too,
 *      which are then not sent: we add none.
 *   4. Credentials go in CURLOPT_USERNAME/PASSWORD, never USERPWD (access
 *      keys may contain ':').
 *
 * Requests (one blocking curl_easy_perform each):
 *   put     PUT    /B/KEY                       body, its SHA-256
 *   get     GET    /B/KEY    Range: bytes=a-b   206 checked against Range
 *   head    HEAD   /B/KEY                       size from Content-Length
 *   delete  DELETE /B/KEY                       204 also when missing
 *   list    GET    /B?list-type=2&...           pages of <= 1000 keys
 *   open    GET    /B?list-type=2&max-keys=1    (PUT /B if create)
 *
 * Bounds: a GET never writes past the caller's buffer (a server sending more
 * than the range asked for is an error); XML bodies are capped (8 MiB for a
 * list page, 64 KiB for an error) and read by the bounded s3-xml.c.
 *
 * Threads: any number may call at once.  Each call takes an easy handle from
 * a pool (so connections are reused: a handle keeps its own connection cache)
 * and returns it after.  The share object holds the DNS cache and TLS
 * sessions.  libcurl's shared connection cache is not used: it is not safe
 * between concurrent threads in libcurl 7.88.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include "objstore.h"
#include "s3-xml.h"

#define ERROR_BODY_MAX  (64 * 1024)
#define LIST_BODY_MAX   (8 * 1024 * 1024)
#define LIST_PAGE_MAX   1000
#define POOL_MAX        32
#define EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct S3Store {
    /* Immutable after open. */
    char *endpoint;             /* no trailing '/' */
    char *bucket;
    char *sigv4;                /* "aws:amz:REGION:s3" */
    char *access_key;
    char *secret_key;
    char *ca_file;
    bool insecure;
    long timeout_ms;
    long connect_timeout_ms;
    unsigned retries;
    CURLSH *share;

    /* share_lock[i] protects libcurl's shared data of kind i (DNS cache,
     * TLS sessions); libcurl takes them through share_lock_cb. */
    GMutex share_lock[CURL_LOCK_DATA_LAST];

    /* Protects idle: the easy handles not in use (at most POOL_MAX). */
    GMutex pool_lock;
    GPtrArray *idle;
} S3Store;

/* One request and what its reply said. */
typedef struct Req {
    const char *method;         /* "GET", "PUT", "HEAD", "DELETE" */
    const char *op;             /* for messages: "get", "list", ... */
    const char *key;            /* NULL: a bucket request */
    const char *query;          /* canonical query string, or NULL */
    const char *body;           /* PUT */
    size_t body_len;
    size_t sent;
    uint64_t range_off;         /* GET with range_len > 0 */
    size_t range_len;

    CURL *h;
    long status;
    /* 2xx body of a ranged GET: into the caller's buffer. */
    char *dst;
    size_t dst_got;
    bool overflow;              /* a 206 brought more than asked for */
    bool enough;                /* a 200 filled the buffer: stop early */
    uint64_t skip;              /* bytes of a 200 before range_off */
    /* Any other body (XML): capped at text_max. */
    GString *text;
    size_t text_max;
    /* Content-Range: bytes START-END/TOTAL */
    bool have_cr;
    uint64_t cr_start, cr_end;
} Req;

/* ---- encoding ---------------------------------------------------------- */

/* Append @s percent-encoded as SigV4 wants (unreserved kept, hex upper). */
static void uri_encode(GString *out, const char *s, bool keep_slash)
{
    for (; *s; s++) {
        unsigned char c = *s;

        if (g_ascii_isalnum(c) || c == '-' || c == '.' || c == '_' ||
            c == '~' || (c == '/' && keep_slash)) {
            g_string_append_c(out, c);
        } else {
            g_string_append_printf(out, "%%%02X", c);
        }
    }
}

/* "name=value&..." from @n pairs already sorted by name; NULL values are
 * left out. */
static char *build_query(const char *const *kv, size_t n)
{
    GString *q = g_string_new(NULL);
    size_t i;

    for (i = 0; i + 1 < n * 2; i += 2) {
        if (!kv[i + 1]) {
            continue;
        }
        g_assert(i < 2 || strcmp(kv[i - 2], kv[i]) < 0);
        if (q->len) {
            g_string_append_c(q, '&');
        }
        g_string_append(q, kv[i]);
        g_string_append_c(q, '=');
        uri_encode(q, kv[i + 1], false);
    }
    return g_string_free(q, FALSE);
}

static void sha256_hex(const void *buf, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    int i;

    if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != 32) {
        g_error("EVP_Digest(sha256) failed");   /* only out of memory */
    }
    for (i = 0; i < 32; i++) {
        g_snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
}

/* ---- errors ------------------------------------------------------------ */

/* What an S3 error code means and what to do about it. */
static const struct {
    const char *code;
    int err;
    const char *todo;
} s3_codes[] = {
    { "NoSuchKey", ENOENT, "" },
    { "NoSuchBucket", ENXIO, "create the bucket or open with create=on, or "
      "fix the bucket name" },
    { "SignatureDoesNotMatch", EACCES, "check the secret key and the region" },
    { "InvalidAccessKeyId", EACCES, "check the access key" },
    { "AccessDenied", EACCES, "grant this user access to the bucket" },
    { "RequestTimeTooSkewed", EACCES, "fix this host's clock (NTP)" },
    { "InvalidBucketName", EINVAL, "bucket names are 3-63 lowercase "
      "letters, digits, '-' and '.'" },
    { "BucketAlreadyExists", EEXIST, "the name is another user's: pick "
      "another bucket name" },
    { "QuotaExceeded", ENOSPC, "raise the user's or the bucket's quota" },
    { "EntityTooLarge", EFBIG, "split the object" },
    { "XAmzContentSHA256Mismatch", EIO, "the body changed in transit; retry" },
    { "BadDigest", EIO, "the body changed in transit; retry" },
    { "SlowDown", EAGAIN, "the server is overloaded; retry later" },
    { "ServiceUnavailable", EAGAIN, "the server is overloaded; retry later" },
};

/* Fallbacks by HTTP status class. */
static int status_err(long status, const char **todo)
{
    if (status == 401 || status == 403) {
        *todo = "check the access key, the secret key and the region";
        return EACCES;
    }
    if (status == 404) {
        *todo = "check the endpoint and the bucket name";
        return ENOENT;
    }
    if (status == 409) {
        *todo = "retry after the conflicting request finished";
        return EBUSY;
    }
    if (status >= 500) {
        *todo = "the server failed; retry later or read its log";
        return status == 503 ? EAGAIN : EIO;
    }
    if (status >= 400) {
        *todo = "the server rejected the request; read its log";
        return EINVAL;
    }
    *todo = "the server sent an unexpected reply; read its log";
    return EPROTO;
}

/* Map a failed HTTP reply to -errno and a message.  A NoSuchKey (or a bare
 * 404 on an object) is the -ENOENT result, without a message. */
static int http_fail(VeloObjStore *s, Req *r, GError **errp)
{
    const char *xml = r->text ? r->text->str : "";
    size_t xlen = r->text ? r->text->len : 0;
    g_autofree char *code = s3_xml_get(xml, xlen, "Code", true);
    g_autofree char *msg = s3_xml_get(xml, xlen, "Message", true);
    g_autofree char *rid = s3_xml_get(xml, xlen, "RequestId", true);
    const char *todo = NULL;
    int err = 0;
    size_t i;

    for (i = 0; code && i < G_N_ELEMENTS(s3_codes); i++) {
        if (strcmp(code, s3_codes[i].code) == 0) {
            err = s3_codes[i].err;
            todo = s3_codes[i].todo;
        }
    }
    if (!todo) {
        err = status_err(r->status, &todo);
    }
    if (err == ENOENT && r->key) {
        return -ENOENT;
    }
    if (err == ENOENT) {
        err = ENXIO;            /* a bucket request: the bucket is missing */
    }
    return velo_obj_fail(errp, -err, s, r->op, r->key,
                         "HTTP %ld %s%s%s%s%s%s: %s", r->status,
                         code ? code : "(no error code)",
                         msg && *msg ? " (" : "", msg && *msg ? msg : "",
                         msg && *msg ? ")" : "", rid ? ", request " : "",
                         rid ? rid : "", todo);
}

static const struct {
    CURLcode code;
    int err;
    const char *todo;
} curl_codes[] = {
    { CURLE_URL_MALFORMAT, EINVAL, "check the endpoint URL" },
    { CURLE_UNSUPPORTED_PROTOCOL, EINVAL, "the endpoint must be http:// "
      "or https://" },
    { CURLE_COULDNT_RESOLVE_HOST, EHOSTUNREACH, "check the endpoint's host "
      "name" },
    { CURLE_COULDNT_CONNECT, ECONNREFUSED, "is the S3 server running at "
      "the endpoint?" },
    { CURLE_OPERATION_TIMEDOUT, ETIMEDOUT, "the server did not answer in "
      "time; check the network or raise the timeout" },
    { CURLE_PEER_FAILED_VERIFICATION, EPROTO, "the server's certificate "
      "failed verification; set the CA file" },
    { CURLE_SSL_CACERT_BADFILE, EINVAL, "the CA file cannot be read" },
    { CURLE_SSL_CONNECT_ERROR, EPROTO, "the TLS handshake failed; check "
      "that the endpoint speaks https" },
    { CURLE_SEND_ERROR, ECONNRESET, "the connection broke; retry" },
    { CURLE_RECV_ERROR, ECONNRESET, "the connection broke; retry" },
    { CURLE_GOT_NOTHING, ECONNRESET, "the server closed the connection; "
      "retry" },
    { CURLE_OUT_OF_MEMORY, ENOMEM, "free memory" },
};

/* Whether a transport failure may go away by itself (so retrying helps). */
static bool curl_transient(CURLcode c)
{
    return c == CURLE_COULDNT_CONNECT || c == CURLE_OPERATION_TIMEDOUT ||
           c == CURLE_SEND_ERROR || c == CURLE_RECV_ERROR ||
           c == CURLE_GOT_NOTHING || c == CURLE_PARTIAL_FILE;
}

static int curl_fail(VeloObjStore *s, Req *r, CURLcode c, const char *ebuf,
                     GError **errp)
{
    const char *todo = "check the endpoint and the network";
    int err = EIO;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(curl_codes); i++) {
        if (curl_codes[i].code == c) {
            err = curl_codes[i].err;
            todo = curl_codes[i].todo;
        }
    }
    return velo_obj_fail(errp, -err, s, r->op, r->key, "%s: %s",
                         ebuf[0] ? ebuf : curl_easy_strerror(c), todo);
}

/* ---- the easy handle pool and the share's locks ------------------------- */

static void share_lock_cb(CURL *h G_GNUC_UNUSED, curl_lock_data data,
                          curl_lock_access access G_GNUC_UNUSED,
                          void *opaque)
{
    S3Store *d = opaque;

    g_mutex_lock(&d->share_lock[data]);
}

static void share_unlock_cb(CURL *h G_GNUC_UNUSED, curl_lock_data data,
                            void *opaque)
{
    S3Store *d = opaque;

    g_mutex_unlock(&d->share_lock[data]);
}

static CURL *pool_take(S3Store *d)
{
    CURL *h = NULL;

    g_mutex_lock(&d->pool_lock);
    if (d->idle->len) {
        h = g_ptr_array_steal_index_fast(d->idle, d->idle->len - 1);
    }
    g_mutex_unlock(&d->pool_lock);
    if (h) {
        curl_easy_reset(h);     /* keeps its live connections */
    }
    return h ? h : curl_easy_init();
}

static void pool_give(S3Store *d, CURL *h)
{
    g_mutex_lock(&d->pool_lock);
    if (d->idle->len < POOL_MAX) {
        g_ptr_array_add(d->idle, h);
        h = NULL;
    }
    g_mutex_unlock(&d->pool_lock);
    if (h) {
        curl_easy_cleanup(h);
    }
}

/* ---- one request ------------------------------------------------------- */

static size_t read_cb(char *buf, size_t size, size_t n, void *opaque)
{
    Req *r = opaque;
    size_t k = MIN(size * n, r->body_len - r->sent);

    memcpy(buf, r->body + r->sent, k);
    r->sent += k;
    return k;
}

static int seek_cb(void *opaque, curl_off_t off, int origin)
{
    Req *r = opaque;

    if (origin != SEEK_SET || off < 0 || (size_t)off > r->body_len) {
        return CURL_SEEKFUNC_FAIL;
    }
    r->sent = off;
    return CURL_SEEKFUNC_OK;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *opaque)
{
    Req *r = opaque;
    size_t len = size * n;
    char line[128];
    guint64 a, b;

    if (len < sizeof(line) && g_ascii_strncasecmp(buf, "content-range:",
                                                  14) == 0) {
        memcpy(line, buf, len);
        line[len] = '\0';
        if (sscanf(line + 14, " bytes %" G_GUINT64_FORMAT "-%"
                   G_GUINT64_FORMAT "/", &a, &b) == 2 && a <= b) {
            r->have_cr = true;
            r->cr_start = a;
            r->cr_end = b;
        }
    }
    return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *opaque)
{
    Req *r = opaque;
    size_t len = size * n, k;

    if (!r->status) {
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
    }
    if (r->dst && r->status == 200) {
        /* The whole object: skip to the range, stop once the buffer is
         * full. */
        k = MIN(len, r->skip);
        r->skip -= k;
        buf += k;
        k = MIN(len - k, r->range_len - r->dst_got);
        memcpy(r->dst + r->dst_got, buf, k);
        r->dst_got += k;
        if (r->dst_got == r->range_len) {
            r->enough = true;
            return 0;           /* abort the transfer: we have it all */
        }
        return len;
    }
    if (r->dst && r->status == 206) {
        if (len > r->range_len - r->dst_got) {
            r->overflow = true;
            return 0;
        }
        memcpy(r->dst + r->dst_got, buf, len);
        r->dst_got += len;
        return len;
    }
    if (!r->text) {
        r->text = g_string_new(NULL);
    }
    k = MIN(len, r->text_max - r->text->len);
    g_string_append_len(r->text, buf, k);
    return len;     /* the rest of an oversized body is dropped */
}

static struct curl_slist *set_options(S3Store *d, Req *r, const char *url,
                                      char *ebuf)
{
    struct curl_slist *hdrs = NULL;
    char hex[65], line[128];

    curl_easy_setopt(r->h, CURLOPT_URL, url);
    curl_easy_setopt(r->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->h, CURLOPT_SHARE, d->share);
    curl_easy_setopt(r->h, CURLOPT_AWS_SIGV4, d->sigv4);
    curl_easy_setopt(r->h, CURLOPT_USERNAME, d->access_key);
    curl_easy_setopt(r->h, CURLOPT_PASSWORD, d->secret_key);
    curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, d->timeout_ms);
    curl_easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT_MS, d->connect_timeout_ms);
    curl_easy_setopt(r->h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(r->h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(r->h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
    if (d->ca_file) {
        curl_easy_setopt(r->h, CURLOPT_CAINFO, d->ca_file);
    }
    if (d->insecure) {
        curl_easy_setopt(r->h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(r->h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(r->method, "PUT") == 0) {
        sha256_hex(r->body, r->body_len, hex);
        curl_easy_setopt(r->h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(r->h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(r->h, CURLOPT_READDATA, r);
        curl_easy_setopt(r->h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(r->h, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(r->h, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)r->body_len);
    } else {
        memcpy(hex, EMPTY_SHA256, sizeof(hex));
    }
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(r->h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "DELETE") == 0) {
        curl_easy_setopt(r->h, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    g_snprintf(line, sizeof(line), "x-amz-content-sha256: %s", hex);
    hdrs = curl_slist_append(hdrs, line);
    if (r->range_len) {
        g_snprintf(line, sizeof(line), "Range: bytes=%" G_GUINT64_FORMAT
                   "-%" G_GUINT64_FORMAT, r->range_off,
                   r->range_off + r->range_len - 1);
        hdrs = curl_slist_append(hdrs, line);
    }
    curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, hdrs);
    return hdrs;
}

/*
 * Run @r, retrying transport errors and 5xx replies up to d->retries times
 * (every request here is idempotent).  Returns 0 with r->status set when an
 * HTTP reply came (of any status), or a negative errno with @errp set.
 */
static int perform(VeloObjStore *s, Req *r, GError **errp)
{
    S3Store *d = s->priv;
    g_autoptr(GString) url = g_string_new(d->endpoint);
    unsigned attempt;
    CURLcode c = CURLE_OK;
    char ebuf[CURL_ERROR_SIZE];

    g_string_append_c(url, '/');
    g_string_append(url, d->bucket);
    if (r->key) {
        g_string_append_c(url, '/');
        uri_encode(url, r->key, true);
    }
    if (r->query) {
        g_string_append_c(url, '?');
        g_string_append(url, r->query);
    }
    for (attempt = 0; attempt <= d->retries; attempt++) {
        struct curl_slist *hdrs;

        if (attempt) {
            g_usleep(50000u << (2 * MIN(attempt, 4u)));    /* 0.2 s, 0.8 s */
        }
        r->h = pool_take(d);
        if (!r->h) {
            return velo_obj_fail(errp, -ENOMEM, s, r->op, r->key,
                                 "curl_easy_init failed: free memory");
        }
        r->status = 0;
        r->sent = r->dst_got = 0;
        r->skip = r->range_off;
        r->overflow = r->enough = r->have_cr = false;
        if (r->text) {
            g_string_truncate(r->text, 0);
        }
        ebuf[0] = '\0';
        hdrs = set_options(d, r, url->str, ebuf);
        c = curl_easy_perform(r->h);
        if (c == CURLE_OK || (c == CURLE_WRITE_ERROR && r->enough)) {
            c = CURLE_OK;
            curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
        }
        curl_slist_free_all(hdrs);
        if (c == CURLE_OK && r->status < 500) {
            break;              /* keep r->h for getinfo; given back later */
        }
        pool_give(d, r->h);
        r->h = NULL;
        if (c != CURLE_OK && !curl_transient(c)) {
            break;
        }
    }
    if (c != CURLE_OK) {
        if (r->overflow) {
            return velo_obj_fail(errp, -EPROTO, s, r->op, r->key,
                                 "the server sent more than the %zu bytes "
                                 "asked for: a broken S3 server or proxy",
                                 r->range_len);
        }
        return curl_fail(s, r, c, ebuf, errp);
    }
    if (!r->h) {
        return http_fail(s, r, errp);   /* 5xx after the last retry */
    }
    return 0;
}

/* Give back r's handle and free its body. */
static void req_done(VeloObjStore *s, Req *r)
{
    if (r->h) {
        pool_give(s->priv, r->h);
        r->h = NULL;
    }
    if (r->text) {
        g_string_free(r->text, TRUE);
        r->text = NULL;
    }
}

/* Run @r and expect a 2xx; anything else is turned into the error. */
static int perform_ok(VeloObjStore *s, Req *r, GError **errp)
{
    int ret = perform(s, r, errp);

    if (ret == 0 && (r->status < 200 || r->status > 299)) {
        ret = http_fail(s, r, errp);
    }
    return ret;
}

/* ---- the operations ---------------------------------------------------- */

static int s3_put(VeloObjStore *s, const char *key, const void *buf,
                  size_t len, GError **errp)
{
    Req r = {
        .method = "PUT", .op = "put", .key = key, .body = buf,
        .body_len = len, .text_max = ERROR_BODY_MAX,
    };
    int ret = perform_ok(s, &r, errp);

    if (ret == -ENOENT) {
        /* A 404 on PUT can only be the bucket. */
        ret = velo_obj_fail(errp, -ENXIO, s, "put", key, "HTTP 404: the "
                            "bucket is gone; create it again");
    }
    req_done(s, &r);
    return ret;
}

static ssize_t s3_get(VeloObjStore *s, const char *key, uint64_t offset,
                      size_t len, void *buf, GError **errp)
{
    Req r = {
        .method = "GET", .op = "get", .key = key, .range_off = offset,
        .range_len = len, .dst = buf, .text_max = ERROR_BODY_MAX,
    };
    ssize_t ret = perform(s, &r, errp);

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
        ret = http_fail(s, &r, errp);
    }
 out:
    req_done(s, &r);
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
    int ret = perform_ok(s, &r, errp);

    if (ret == 0) {
        curl_easy_getinfo(r.h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl < 0) {
            ret = velo_obj_fail(errp, -EPROTO, s, "head", key, "HTTP %ld "
                                "without Content-Length: a broken server",
                                r.status);
        }
        info->size = cl;
    }
    req_done(s, &r);
    return ret;
}

static int s3_del(VeloObjStore *s, const char *key, GError **errp)
{
    Req r = {
        .method = "DELETE", .op = "delete", .key = key,
        .text_max = ERROR_BODY_MAX,
    };
    int ret = perform_ok(s, &r, errp);

    req_done(s, &r);
    return ret == -ENOENT ? 0 : ret;
}

/*
 * Read one ListObjectsV2 page into @out (at most @room keys).  Checks that
 * keys ascend, follow @after and match @prefix, since a hostile reply must
 * not make the caller loop or skip.  Sets *@token to the continuation token
 * when the page is truncated.
 */
static int parse_page(VeloObjStore *s, const GString *xml, const char *prefix,
                      const char *after, unsigned room, VeloObjList *out,
                      char **token, GError **errp)
{
    g_autofree char *trunc = s3_xml_get(xml->str, xml->len, "IsTruncated",
                                        true);
    const char *blk;
    size_t blen, pos = 0;
    unsigned n = 0;
    g_autofree char *last = g_strdup(after);

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
        g_free(last);
        last = g_steal_pointer(&key);
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
        query = build_query(kv, G_N_ELEMENTS(kv) / 2);
        r.query = query;
        ret = perform_ok(s, &r, errp);
        if (ret == 0 && r.text && r.text->len >= LIST_BODY_MAX) {
            ret = velo_obj_fail(errp, -EPROTO, s, "list", NULL,
                                "the reply is over %d bytes: a broken "
                                "server", LIST_BODY_MAX);
        }
        if (ret == 0) {
            const char *after = out->items->len
                ? g_array_index(out->items, VeloObjInfo,
                                out->items->len - 1).key : start_after;
            static const GString empty;
            ret = parse_page(s, r.text ? r.text : &empty, prefix, after,
                             MIN(room, LIST_PAGE_MAX), out, &next, errp);
        }
        req_done(s, &r);
        more = next != NULL;
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
    guint i;

    if (!d) {
        return;
    }
    if (d->idle) {
        for (i = 0; i < d->idle->len; i++) {
            curl_easy_cleanup(g_ptr_array_index(d->idle, i));
        }
        g_ptr_array_free(d->idle, TRUE);
    }
    if (d->share) {
        curl_share_cleanup(d->share);
    }
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        g_mutex_clear(&d->share_lock[i]);
    }
    g_mutex_clear(&d->pool_lock);
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
    int ret = perform_ok(s, &r, &err);

    req_done(s, &r);
    if (ret == -ENXIO && create) {
        ret = perform_ok(s, &mk, errp);
        req_done(s, &mk);
    } else if (ret < 0) {
        g_propagate_error(errp, g_steal_pointer(&err));
    }
    return ret;
}

static int s3_open(VeloObjStore *s, const VeloObjConfig *cfg, GError **errp)
{
    static gsize curl_once;
    S3Store *d;
    guint i;
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
    d->retries = cfg->retries ? cfg->retries : 2;
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        g_mutex_init(&d->share_lock[i]);
    }
    g_mutex_init(&d->pool_lock);
    d->idle = g_ptr_array_new();
    d->share = curl_share_init();
    if (!d->share ||
        curl_share_setopt(d->share, CURLSHOPT_LOCKFUNC, share_lock_cb) ||
        curl_share_setopt(d->share, CURLSHOPT_UNLOCKFUNC, share_unlock_cb) ||
        curl_share_setopt(d->share, CURLSHOPT_USERDATA, d) ||
        curl_share_setopt(d->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
        curl_share_setopt(d->share, CURLSHOPT_SHARE,
                          CURL_LOCK_DATA_SSL_SESSION)) {
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
