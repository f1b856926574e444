/*
 * Velo object store: the s3 backend's request layer.  One S3 request over
 * libcurl, signed with AWS SigV4 (CURLOPT_AWS_SIGV4, libcurl >= 7.75; tested
 * with 7.88 against radosgw); bounded reply bodies; retries; the mapping of
 * HTTP, S3 and libcurl errors to -errno and messages; the easy handle pool.
 *
 * The four SigV4 rules that libcurl 7.88 needs (every request gets 403
 * without them):
 *   1. curl does not send x-amz-content-sha256: we add it, with the
 *      SHA-256 of the body (of "" for bodiless requests), and curl signs it.
 *   2. curl signs the query string as given: we build it sorted and
 *      percent-encoded (s3_build_query).
 *   3. curl signs every custom header, removal entries ("Expect:") too,
 *      which are then not sent: we add none.
 *   4. Credentials go in CURLOPT_USERNAME/PASSWORD, never USERPWD (access
 *      keys may contain ':').
 *
 * Bounds: a GET's body goes only into the caller's buffer (a 206 bringing
 * more than the range asked for is an error; a 200 that ignored the range is
 * skipped to the offset and cut when the buffer is full); any other body is
 * capped at Req.text_max.
 *
 * Threads: each request takes an easy handle from the pool (a handle keeps
 * its own connection cache, so connections are reused) and gives it back.
 * The share object holds the DNS cache and TLS sessions.  libcurl's shared
 * connection cache is not used: it is not safe between concurrent threads in
 * libcurl 7.88.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>
#include <openssl/evp.h>
#include "bytes.h"
#include "s3-int.h"
#include "s3-xml.h"

#define EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- encoding ---------------------------------------------------------- */

void s3_uri_encode(GString *out, const char *s, bool keep_slash)
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

char *s3_build_query(const char *const *kv, size_t n)
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
        s3_uri_encode(q, kv[i + 1], false);
    }
    return g_string_free(q, FALSE);
}

static void sha256_hex(const void *buf, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != 32) {
        g_error("EVP_Digest(sha256) failed");   /* only out of memory */
    }
    velo_hex(hex, md, 32);
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

int s3_http_fail(VeloObjStore *s, Req *r, GError **errp)
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

    pthread_mutex_lock(&d->share_lock[data]);
}

static void share_unlock_cb(CURL *h G_GNUC_UNUSED, curl_lock_data data,
                            void *opaque)
{
    S3Store *d = opaque;

    pthread_mutex_unlock(&d->share_lock[data]);
}

static CURL *pool_take(S3Store *d)
{
    CURL *h = NULL;

    pthread_mutex_lock(&d->pool_lock);
    if (d->idle->len) {
        h = g_ptr_array_steal_index_fast(d->idle, d->idle->len - 1);
    }
    pthread_mutex_unlock(&d->pool_lock);
    if (h) {
        curl_easy_reset(h);     /* keeps its live connections */
    }
    return h ? h : curl_easy_init();
}

static void pool_give(S3Store *d, CURL *h)
{
    pthread_mutex_lock(&d->pool_lock);
    if (d->idle->len < POOL_MAX) {
        g_ptr_array_add(d->idle, h);
        h = NULL;
    }
    pthread_mutex_unlock(&d->pool_lock);
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

int s3_perform(VeloObjStore *s, Req *r, GError **errp)
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
        s3_uri_encode(url, r->key, true);
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
        return s3_http_fail(s, r, errp);   /* 5xx after the last retry */
    }
    return 0;
}

void s3_req_done(VeloObjStore *s, Req *r)
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

int s3_perform_ok(VeloObjStore *s, Req *r, GError **errp)
{
    int ret = s3_perform(s, r, errp);

    if (ret == 0 && (r->status < 200 || r->status > 299)) {
        ret = s3_http_fail(s, r, errp);
    }
    return ret;
}

bool s3_conn_init(S3Store *d)
{
    guint i;

    for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        pthread_mutex_init(&d->share_lock[i], NULL);
    }
    pthread_mutex_init(&d->pool_lock, NULL);
    d->idle = g_ptr_array_new();
    d->share = curl_share_init();
    return d->share &&
        !curl_share_setopt(d->share, CURLSHOPT_LOCKFUNC, share_lock_cb) &&
        !curl_share_setopt(d->share, CURLSHOPT_UNLOCKFUNC, share_unlock_cb) &&
        !curl_share_setopt(d->share, CURLSHOPT_USERDATA, d) &&
        !curl_share_setopt(d->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) &&
        !curl_share_setopt(d->share, CURLSHOPT_SHARE,
                           CURL_LOCK_DATA_SSL_SESSION);
}

void s3_conn_cleanup(S3Store *d)
{
    guint i;

    if (!d->idle) {
        return;                 /* never initialised */
    }
    for (i = 0; i < d->idle->len; i++) {
        curl_easy_cleanup(g_ptr_array_index(d->idle, i));
    }
    g_ptr_array_free(d->idle, TRUE);
    if (d->share) {
        curl_share_cleanup(d->share);
    }
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        pthread_mutex_destroy(&d->share_lock[i]);
    }
    pthread_mutex_destroy(&d->pool_lock);
}
