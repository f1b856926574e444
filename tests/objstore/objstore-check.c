/*
 * objstore-check: the conformance checks every object-store backend must
 * pass, as GLib tests (TAP with --tap), run against the store the
 * environment names:
 *
 *   VELO_OBJ_BACKEND     "dir" or "s3"
 *   VELO_OBJ_DIR         dir: the root (created)
 *   VELO_S3_ENDPOINT, VELO_S3_REGION, VELO_S3_ACCESS_KEY,
 *   VELO_S3_SECRET_KEY   s3: as radosgw.sh writes them
 *   VELO_S3_BUCKET       s3: the bucket (created; default velo-check)
 *   VELO_S3_TLS_ENDPOINT, VELO_S3_CA_FILE   s3: the same over HTTPS
 *   VELO_OBJ_BENCH=1     also print latency and throughput (no assertion)
 *
 * Each run works under a fresh "run-RANDOM/" prefix, so runs do not meet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "objstore.h"

static VeloObjStore *store;
static VeloObjConfig cfg;
static char run[32];            /* "run-XXXXXXXX/" */

static char *K(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static char *K(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *tail = NULL;

    va_start(ap, fmt);
    tail = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return g_strconcat(run, tail, NULL);
}

/* Deterministic bytes: object @seed's byte at @off. */
static guint8 pat(guint seed, guint64 off)
{
    return (guint8)((off * 2654435761u) >> 13) ^ (guint8)seed;
}

static guint8 *pattern(guint seed, size_t len)
{
    guint8 *p = g_malloc(len ? len : 1);
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = pat(seed, i);
    }
    return p;
}

static void put_ok(const char *key, const void *buf, size_t len)
{
    g_autoptr(GError) err = NULL;

    g_assert_cmpint(velo_obj_put(store, key, buf, len, &err), ==, 0);
    g_assert_no_error(err);
}

/* get @len at @off and compare with pattern @seed; expect @want bytes. */
static void get_check(const char *key, guint seed, guint64 off, size_t len,
                      ssize_t want)
{
    g_autoptr(GError) err = NULL;
    g_autofree guint8 *buf = g_malloc(len + 16);
    ssize_t n, i;

    memset(buf, 0xa5, len + 16);
    n = velo_obj_get(store, key, off, len, buf, &err);
    g_assert_no_error(err);
    g_assert_cmpint(n, ==, want);
    for (i = 0; i < n; i++) {
        if (buf[i] != pat(seed, off + i)) {
            g_error("%s: byte %" G_GUINT64_FORMAT " differs", key, off + i);
        }
    }
    for (i = len; i < (ssize_t)len + 16; i++) {
        g_assert_cmphex(buf[i], ==, 0xa5);      /* nothing past the end */
    }
}

static void test_put_get(void)
{
    g_autofree char *k = K("basic/one");
    g_autofree guint8 *a = pattern(1, 1000), *b = pattern(2, 10);
    VeloObjInfo info;

    put_ok(k, a, 1000);
    get_check(k, 1, 0, 2000, 1000);
    g_assert_cmpint(velo_obj_head(store, k, &info, NULL), ==, 0);
    g_assert_cmpuint(info.size, ==, 1000);
    /* Overwrite: the new object whole. */
    put_ok(k, b, 10);
    get_check(k, 2, 0, 1000, 10);
    g_assert_cmpint(velo_obj_head(store, k, &info, NULL), ==, 0);
    g_assert_cmpuint(info.size, ==, 10);
}

static void test_range(void)
{
    g_autofree char *k = K("range/obj"), *e = K("range/empty");
    g_autofree guint8 *a = pattern(3, 100000);
    VeloObjInfo info;

    put_ok(k, a, 100000);
    get_check(k, 3, 0, 1, 1);
    get_check(k, 3, 99999, 1, 1);
    get_check(k, 3, 50000, 1000, 1000);
    get_check(k, 3, 99000, 5000, 1000);         /* short at the end */
    get_check(k, 3, 100000, 10, 0);             /* at the end */
    get_check(k, 3, 200000, 10, 0);             /* past it */
    put_ok(e, "", 0);
    g_assert_cmpint(velo_obj_head(store, e, &info, NULL), ==, 0);
    g_assert_cmpuint(info.size, ==, 0);
    get_check(e, 0, 0, 10, 0);
}

static void test_large(void)
{
    g_autofree char *k = K("large/8m");
    size_t len = 8 << 20;
    g_autofree guint8 *a = pattern(4, len);

    put_ok(k, a, len);
    get_check(k, 4, 0, len, len);
    get_check(k, 4, 3 << 20, 1 << 20, 1 << 20);
    get_check(k, 4, len - 100, 4096, 100);
}

static void test_not_found(void)
{
    g_autofree char *k = K("nf/missing"), *p = K("nf/dir/x");
    g_autofree char *prefix_only = K("nf/dir");
    GError *err = NULL;
    VeloObjInfo info;
    char buf[8];

    g_assert_cmpint(velo_obj_get(store, k, 0, 8, buf, &err), ==, -ENOENT);
    g_assert_null(err);
    g_assert_cmpint(velo_obj_head(store, k, &info, &err), ==, -ENOENT);
    g_assert_null(err);
    g_assert_cmpint(velo_obj_get(store, k, 0, 0, buf, &err), ==, -ENOENT);
    g_assert_null(err);
    g_assert_cmpint(velo_obj_delete(store, k, &err), ==, 0);
    g_assert_null(err);
    /* A prefix of a key is no object. */
    put_ok(p, "x", 1);
    g_assert_cmpint(velo_obj_get(store, prefix_only, 0, 8, buf, &err), ==,
                    -ENOENT);
    g_assert_null(err);
    g_assert_cmpint(velo_obj_delete(store, prefix_only, &err), ==, 0);
    g_assert_null(err);
    g_assert_cmpint(velo_obj_head(store, p, &info, NULL), ==, 0);
}

static void test_delete(void)
{
    g_autofree char *k = K("del/a");
    g_autofree char *pre = K("del/");
    g_autoptr(VeloObjList) l = NULL;
    VeloObjInfo info;

    put_ok(k, "abc", 3);
    g_assert_cmpint(velo_obj_delete(store, k, NULL), ==, 0);
    g_assert_cmpint(velo_obj_head(store, k, &info, NULL), ==, -ENOENT);
    g_assert_cmpint(velo_obj_list(store, pre, NULL, 10, &l, NULL), ==, 0);
    g_assert_cmpuint(l->items->len, ==, 0);
    g_assert_false(l->truncated);
}

#define NLIST 1100

static void test_list_paging(void)
{
    g_autofree char *pre = K("list/");
    g_autofree char *p100 = K("list/k001");
    g_autofree char *after = NULL;
    g_autoptr(VeloObjList) all = NULL, part = NULL, sub = NULL;
    unsigned i, seen = 0, pages = 0;

    for (i = 0; i < NLIST; i++) {
        g_autofree char *k = K("list/k%05u", i);
        put_ok(k, &i, i % 5);
    }
    /* A key just outside the prefix on each side. */
    {
        g_autofree char *lo = K("lis"), *hi = K("lisu");
        put_ok(lo, "", 0);
        put_ok(hi, "", 0);
    }
    /* All at once (> 1000: the s3 backend follows continuation tokens). */
    g_assert_cmpint(velo_obj_list(store, pre, NULL, 5000, &all, NULL), ==, 0);
    g_assert_cmpuint(all->items->len, ==, NLIST);
    g_assert_false(all->truncated);
    for (i = 0; i < NLIST; i++) {
        VeloObjInfo *e = &g_array_index(all->items, VeloObjInfo, i);
        g_autofree char *k = K("list/k%05u", i);
        g_assert_cmpstr(e->key, ==, k);
        g_assert_cmpuint(e->size, ==, i % 5);
    }
    /* Exactly full: 1050 of 1100 is truncated. */
    g_assert_cmpint(velo_obj_list(store, pre, NULL, 1050, &part, NULL), ==,
                    0);
    g_assert_cmpuint(part->items->len, ==, 1050);
    g_assert_true(part->truncated);
    /* Pages of 7 by start_after, in order, each key once. */
    for (;;) {
        g_autoptr(VeloObjList) pg = NULL;

        g_assert_cmpint(velo_obj_list(store, pre, after, 7, &pg, NULL), ==,
                        0);
        pages++;
        for (i = 0; i < pg->items->len; i++) {
            g_autofree char *k = K("list/k%05u", seen++);
            g_assert_cmpstr(g_array_index(pg->items, VeloObjInfo, i).key,
                            ==, k);
        }
        if (!pg->truncated) {
            break;
        }
        g_assert_cmpuint(pg->items->len, ==, 7);
        g_free(after);
        after = g_strdup(g_array_index(pg->items, VeloObjInfo, 6).key);
    }
    g_assert_cmpuint(seen, ==, NLIST);
    g_assert_cmpuint(pages, ==, (NLIST + 6) / 7);
    /* A prefix that is not a whole segment. */
    g_assert_cmpint(velo_obj_list(store, p100, NULL, 1000, &sub, NULL), ==,
                    0);
    g_assert_cmpuint(sub->items->len, ==, 100);
}

/* Keys whose characters need percent-encoding in a URL or escaping in
 * XML: each goes in and comes back, by get and by list. */
static const char *const odd_keys[] = {
    "a b", "plus+sign", "pct%20not-a-space", "q?uery=1&x=2", "hash#frag",
    "amp&lt;not-an-entity", "<tag>\"quoted\"'", "semi;colon:at@dollar$",
    "brackets[]{}()", "tilde~star*bang!comma,", "back\\slash|pipe^`",
    "sub dir/with space/x", "UPPER/lower/0123",
};

static gint str_ptr_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_key_encoding(void)
{
    g_autofree char *pre = K("enc/");
    g_autoptr(VeloObjList) l = NULL;
    g_autoptr(GPtrArray) want = g_ptr_array_new_with_free_func(g_free);
    guint i;

    for (i = 0; i < G_N_ELEMENTS(odd_keys); i++) {
        g_autofree char *k = K("enc/%s", odd_keys[i]);
        put_ok(k, odd_keys[i], strlen(odd_keys[i]));
        {
            char buf[64] = "";
            g_assert_cmpint(velo_obj_get(store, k, 0, sizeof(buf), buf,
                                         NULL), ==, strlen(odd_keys[i]));
            g_assert_cmpmem(buf, strlen(odd_keys[i]), odd_keys[i],
                            strlen(odd_keys[i]));
        }
        g_ptr_array_add(want, g_steal_pointer(&k));
    }
    g_ptr_array_sort(want, str_ptr_cmp);
    g_assert_cmpint(velo_obj_list(store, pre, NULL, 100, &l, NULL), ==, 0);
    g_assert_cmpuint(l->items->len, ==, want->len);
    for (i = 0; i < want->len; i++) {
        g_assert_cmpstr(g_array_index(l->items, VeloObjInfo, i).key, ==,
                        g_ptr_array_index(want, i));
    }
    /* A long key: 1024 bytes in segments of 200. */
    {
        GString *k = g_string_new(run);
        g_autofree char *lk = NULL;

        while (k->len < VELO_OBJ_KEY_MAX) {
            g_string_append_c(k, k->len % 201 == 200 ? '/' : 'a' + k->len % 26);
        }
        g_string_truncate(k, VELO_OBJ_KEY_MAX);
        if (k->str[k->len - 1] == '/') {
            k->str[k->len - 1] = 'z';
        }
        lk = g_string_free(k, FALSE);
        put_ok(lk, "long", 4);
        {
            VeloObjInfo info;
            g_assert_cmpint(velo_obj_head(store, lk, &info, NULL), ==, 0);
            g_assert_cmpuint(info.size, ==, 4);
        }
    }
}

/* Keys every backend must refuse, before any request. */
static void test_bad_keys(void)
{
    static const char *const bad[] = {
        "", "/abs", "trail/", "a//b", "..", "../escape", "a/../../b",
        "a/./b", ".hidden", "a/.tmp", "new\nline", "tab\tkey", "del\x7f",
        "utf8-\xc3\xa9",
    };
    g_autofree char *longkey = g_strnfill(VELO_OBJ_KEY_MAX + 1, 'k');
    g_autofree char *longseg = g_strnfill(VELO_OBJ_SEGMENT_MAX + 1, 's');
    guint i;

    for (i = 0; i < G_N_ELEMENTS(bad) + 2; i++) {
        const char *k = i < G_N_ELEMENTS(bad) ? bad[i]
                        : i == G_N_ELEMENTS(bad) ? longkey : longseg;
        GError *err = NULL;
        VeloObjInfo info;
        char buf[4];

        g_assert_cmpint(velo_obj_put(store, k, "x", 1, &err), ==, -EINVAL);
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(err->message, "invalid key"));
        g_clear_error(&err);
        g_assert_cmpint(velo_obj_get(store, k, 0, 4, buf, &err), ==,
                        -EINVAL);
        g_clear_error(&err);
        g_assert_cmpint(velo_obj_head(store, k, &info, &err), ==, -EINVAL);
        g_clear_error(&err);
        g_assert_cmpint(velo_obj_delete(store, k, &err), ==, -EINVAL);
        g_clear_error(&err);
    }
}

/* 4 threads at once: each puts, reads back, heads, lists and deletes its
 * own keys, and all read one shared object. */
#define NTHREADS 4
#define NITER 40

/* Whether listing @key's directory (its prefix up to the last '/') shows
 * @key. */
static bool list_has(const char *key, GError **errp)
{
    g_autofree char *dir = g_strndup(key, strrchr(key, '/') - key + 1);
    g_autoptr(VeloObjList) l = NULL;
    guint i;

    if (velo_obj_list(store, dir, NULL, 100, &l, errp) < 0) {
        return false;
    }
    for (i = 0; i < l->items->len; i++) {
        if (strcmp(g_array_index(l->items, VeloObjInfo, i).key, key) == 0) {
            return true;
        }
    }
    return false;
}

static gpointer worker(gpointer opaque)
{
    guint t = GPOINTER_TO_UINT(opaque), i;
    g_autofree char *shared = K("mt/shared");
    guint bad = 0;

    for (i = 0; i < NITER; i++) {
        g_autofree char *k = K("mt/t%u/k%u", t, i % 8);
        size_t len = 1000 + 997 * i;
        g_autofree guint8 *a = pattern(t * 100 + i, len);
        g_autofree guint8 *b = g_malloc(len);
        guint8 sb[4096];
        VeloObjInfo info;
        GError *err = NULL;

        if (velo_obj_put(store, k, a, len, &err) < 0 ||
            velo_obj_get(store, k, 0, len, b, &err) != (ssize_t)len ||
            memcmp(a, b, len) != 0 ||
            velo_obj_head(store, k, &info, &err) < 0 || info.size != len ||
            velo_obj_get(store, shared, i, sizeof(sb), sb, &err) !=
                sizeof(sb) ||
            sb[0] != pat(9, i) || sb[sizeof(sb) - 1] != pat(9, i + 4095) ||
            !list_has(k, &err) ||
            (i % 8 == 7 && velo_obj_delete(store, k, &err) < 0)) {
            g_printerr("thread %u iteration %u: %s\n", t, i,
                       err ? err->message : "wrong data");
            g_clear_error(&err);
            bad++;
        }
    }
    return GUINT_TO_POINTER(bad);
}

static void test_threads(void)
{
    g_autofree char *shared = K("mt/shared");
    g_autofree guint8 *a = pattern(9, 1 << 20);
    GThread *th[NTHREADS];
    guint i, bad = 0;

    put_ok(shared, a, 1 << 20);
    for (i = 0; i < NTHREADS; i++) {
        th[i] = g_thread_new("objstore-check", worker, GUINT_TO_POINTER(i));
    }
    for (i = 0; i < NTHREADS; i++) {
        bad += GPOINTER_TO_UINT(g_thread_join(th[i]));
    }
    g_assert_cmpuint(bad, ==, 0);
}

/* Opening with a wrong root, bucket or secret fails with a clear message. */
static void expect_open_error(const VeloObjConfig *c, int code,
                              const char *const *words)
{
    GError *err = NULL;
    VeloObjStore *s = velo_obj_open(c, &err);

    g_assert_null(s);
    g_assert_nonnull(err);
    g_test_message("expected error: %s", err->message);
    g_assert_cmpint(err->code, ==, code);
    for (; *words; words++) {
        if (!strstr(err->message, *words)) {
            g_error("error message \"%s\" lacks \"%s\"", err->message,
                    *words);
        }
    }
    g_error_free(err);
}

static void test_open_errors(void)
{
    VeloObjConfig c = cfg;

    c.create = false;
    if (strcmp(cfg.backend, "dir") == 0) {
        g_autofree char *missing = g_strconcat(cfg.path, "/no/such/dir",
                                               NULL);
        const char *const w[] = { "dir:", "does not exist", "create", NULL };

        c.path = missing;
        expect_open_error(&c, ENXIO, w);
        return;
    }
    {
        const char *const w[] = { "403", "SignatureDoesNotMatch",
                                  "secret key", NULL };
        c.secret_key = "not-the-secret";
        expect_open_error(&c, EACCES, w);
    }
    {
        const char *const w[] = { "403", "InvalidAccessKeyId", NULL };
        c = cfg;
        c.access_key = "NOSUCHKEY";
        expect_open_error(&c, EACCES, w);
    }
    {
        const char *const w[] = { "404", "NoSuchBucket", "create", NULL };
        c = cfg;
        c.create = false;
        c.bucket = "velo-no-such-bucket";
        expect_open_error(&c, ENXIO, w);
    }
    {
        const char *const w[] = { "127.0.0.1:1", "running", NULL };
        c = cfg;
        c.endpoint = "http://127.0.0.1:1";
        c.retries = 1;
        expect_open_error(&c, ECONNREFUSED, w);
    }
}

/* HTTPS: verified against the CA file; refused without it, and refused by
 * a name the certificate does not carry. */
static void test_tls(void)
{
    const char *ep = g_getenv("VELO_S3_TLS_ENDPOINT");
    const char *ca = g_getenv("VELO_S3_CA_FILE");
    g_autofree char *k = K("tls/obj");
    g_autofree char *byname = NULL;
    g_autoptr(GError) err = NULL;
    VeloObjConfig c = cfg;
    VeloObjStore *s;
    char buf[8];

    if (strcmp(cfg.backend, "s3") != 0 || !ep || !ca) {
        g_test_skip("no HTTPS endpoint (VELO_S3_TLS_ENDPOINT, "
                    "VELO_S3_CA_FILE)");
        return;
    }
    c.endpoint = ep;
    c.ca_file = ca;
    s = velo_obj_open(&c, &err);
    g_assert_no_error(err);
    g_assert_cmpint(velo_obj_put(s, k, "secure", 6, &err), ==, 0);
    g_assert_cmpint(velo_obj_get(s, k, 0, 8, buf, &err), ==, 6);
    g_assert_cmpmem(buf, 6, "secure", 6);
    velo_obj_close(s);
    {
        const char *const w[] = { "certificate", "CA file", NULL };
        c.ca_file = NULL;           /* the system's CAs don't know it */
        expect_open_error(&c, EPROTO, w);
    }
    {
        const char *const w[] = { "localhost", NULL };
        byname = g_strdup_printf("https://localhost:%s",
                                 strrchr(ep, ':') + 1);
        c.endpoint = byname;
        c.ca_file = ca;
        expect_open_error(&c, EPROTO, w);
    }
    c.endpoint = ep;
    c.ca_file = NULL;
    c.insecure = true;              /* tests only: no verification at all */
    s = velo_obj_open(&c, &err);
    g_assert_no_error(err);
    velo_obj_close(s);
}

/* ---- figures, for information only ------------------------------------- */

static int dbl_cmp(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

typedef struct Bench {
    const char *key;
    gint64 until;
    guint ops;
} Bench;

static gpointer bench_worker(gpointer opaque)
{
    Bench *b = opaque;
    guint8 *buf = g_malloc(65536);

    while (g_get_monotonic_time() < b->until) {
        g_assert_cmpint(velo_obj_get(store, b->key, 0, 65536, buf, NULL), ==,
                        65536);
        b->ops++;
    }
    g_free(buf);
    return NULL;
}

static void bench(void)
{
    enum { N = 100 };
    g_autofree guint8 *a = pattern(7, 65536), *b = g_malloc(65536);
    double put_ms[N], get_ms[N];
    guint i, t, nt;

    for (i = 0; i < N; i++) {
        g_autofree char *k = K("bench/k%u", i);
        gint64 t0 = g_get_monotonic_time();

        put_ok(k, a, 65536);
        put_ms[i] = (g_get_monotonic_time() - t0) / 1000.0;
        t0 = g_get_monotonic_time();
        g_assert_cmpint(velo_obj_get(store, k, 0, 65536, b, NULL), ==, 65536);
        get_ms[i] = (g_get_monotonic_time() - t0) / 1000.0;
    }
    qsort(put_ms, N, sizeof(double), dbl_cmp);
    qsort(get_ms, N, sizeof(double), dbl_cmp);
    printf("# figure %s: 64 KiB PUT median %.2f ms (p90 %.2f), GET median "
           "%.2f ms (p90 %.2f)\n", cfg.backend, put_ms[N / 2],
           put_ms[N * 9 / 10], get_ms[N / 2], get_ms[N * 9 / 10]);
    for (nt = 1; nt <= 4; nt *= 4) {
        Bench w[4];
        GThread *th[4];
        guint ops = 0;
        gint64 t0 = g_get_monotonic_time();

        for (t = 0; t < nt; t++) {
            w[t] = (Bench) { .key = NULL, .until = t0 + 2 * G_USEC_PER_SEC };
            w[t].key = K("bench/k%u", t);
            th[t] = g_thread_new("bench", bench_worker, &w[t]);
        }
        for (t = 0; t < nt; t++) {
            g_thread_join(th[t]);
            ops += w[t].ops;
            g_free((char *)w[t].key);
        }
        printf("# figure %s: 64 KiB GET with %u thread%s: %.0f ops/s, "
               "%.1f MiB/s\n", cfg.backend, nt, nt > 1 ? "s" : "",
               ops / ((g_get_monotonic_time() - t0) / 1e6),
               ops / 16.0 / ((g_get_monotonic_time() - t0) / 1e6));
    }
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    const char *backend = g_getenv("VELO_OBJ_BACKEND");

    g_test_init(&argc, &argv, NULL);
    cfg = (VeloObjConfig) {
        .backend = backend ? backend : "dir",
        .create = true,
        .path = g_getenv("VELO_OBJ_DIR"),
        .no_sync = false,
        .endpoint = g_getenv("VELO_S3_ENDPOINT"),
        .region = g_getenv("VELO_S3_REGION"),
        .access_key = g_getenv("VELO_S3_ACCESS_KEY"),
        .secret_key = g_getenv("VELO_S3_SECRET_KEY"),
        .bucket = g_getenv("VELO_S3_BUCKET") ? g_getenv("VELO_S3_BUCKET")
                  : "velo-check",
    };
    store = velo_obj_open(&cfg, &err);
    if (!store) {
        g_printerr("objstore-check: %s\n", err->message);
        return 1;
    }
    g_snprintf(run, sizeof(run), "run-%08x/", g_random_int());

    g_test_add_func("/objstore/put-get", test_put_get);
    g_test_add_func("/objstore/range", test_range);
    g_test_add_func("/objstore/large", test_large);
    g_test_add_func("/objstore/not-found", test_not_found);
    g_test_add_func("/objstore/delete", test_delete);
    g_test_add_func("/objstore/list-paging", test_list_paging);
    g_test_add_func("/objstore/key-encoding", test_key_encoding);
    g_test_add_func("/objstore/bad-keys", test_bad_keys);
    g_test_add_func("/objstore/threads", test_threads);
    g_test_add_func("/objstore/open-errors", test_open_errors);
    g_test_add_func("/objstore/tls", test_tls);
    if (g_strcmp0(g_getenv("VELO_OBJ_BENCH"), "1") == 0) {
        g_test_add_func("/objstore/bench", bench);
    }
    {
        int r = g_test_run();
        velo_obj_close(store);
        return r;
    }
}
