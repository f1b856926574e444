/*
 * Velo object store: what the s3 backend's two files share: the handle's
 * state, one request, and the request layer's functions (s3-http.c) that
 * the operations (objstore-s3.c) use.  Internal to the s3 backend.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_S3_INT_H
#define VELO_S3_INT_H

#include <pthread.h>
#include <curl/curl.h>
#include "objstore.h"

#define ERROR_BODY_MAX  (64 * 1024)
#define LIST_BODY_MAX   (8 * 1024 * 1024)
#define LIST_PAGE_MAX   1000
#define POOL_MAX        32

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

    /* pthread mutexes, not GMutex: GLib's are futexes that ThreadSanitizer
     * cannot see, and the tests run it. */
    /* share_lock[i] protects libcurl's shared data of kind i (DNS cache,
     * TLS sessions); libcurl takes them through share_lock_cb. */
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];

    /* Protects idle: the easy handles not in use (at most POOL_MAX). */
    pthread_mutex_t pool_lock;
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

/* s3-http.c */

/* Append @s percent-encoded as SigV4 wants (unreserved kept, hex upper). */
void s3_uri_encode(GString *out, const char *s, bool keep_slash);

/* "name=value&..." from @n (name, value) pairs already sorted by name;
 * pairs with a NULL value are left out. */
char *s3_build_query(const char *const *kv, size_t n);

/* Map a failed HTTP reply to -errno and a message.  A NoSuchKey (or a bare
 * 404 on an object) is the -ENOENT result, without a message. */
int s3_http_fail(VeloObjStore *s, Req *r, GError **errp);

/*
 * Run @r, retrying transport errors and 5xx replies up to d->retries times
 * (every request here is idempotent).  Returns 0 with r->status set when an
 * HTTP reply came (of any status), or a negative errno with @errp set.
 * Blocks.  Call s3_req_done afterwards in every case.
 */
int s3_perform(VeloObjStore *s, Req *r, GError **errp);

/* s3_perform, and anything but a 2xx becomes the error. */
int s3_perform_ok(VeloObjStore *s, Req *r, GError **errp);

/* Give back r's easy handle and free its body. */
void s3_req_done(VeloObjStore *s, Req *r);

/* Set up and tear down d's share (and its locks) and handle pool.
 * s3_conn_init returns false when libcurl is out of memory. */
bool s3_conn_init(S3Store *d);
void s3_conn_cleanup(S3Store *d);

#endif
