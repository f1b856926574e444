/*
 * Unit tests of the object store's dir backend (block/objstore-dir.c) and
 * its dispatch (block/objstore.c): the basic operations, key order across
 * directories, and confinement: traversal keys, symlinks and a FIFO planted
 * in the root, temporary files, a key colliding with a prefix.
 * (tests/objstore/objstore-check runs the common conformance checks against
 * both backends.)
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include "objstore.h"

typedef struct Fixture {
    char *top;          /* a temporary directory holding the two below */
    char *root;         /* the store's root: TOP/store */
    char *outside;      /* TOP/outside, holding "secret" */
    VeloObjStore *s;
} Fixture;

static void setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    VeloObjConfig c = { .backend = "dir", .create = true, .no_sync = true };

    f->top = g_dir_make_tmp("test-objstore-dir-XXXXXX", &err);
    g_assert_no_error(err);
    f->root = g_build_filename(f->top, "store", NULL);
    f->outside = g_build_filename(f->top, "outside", NULL);
    g_assert_cmpint(g_mkdir(f->outside, 0755), ==, 0);
    {
        g_autofree char *secret = g_build_filename(f->outside, "secret",
                                                   NULL);
        g_file_set_contents(secret, "SECRET", 6, &err);
        g_assert_no_error(err);
    }
    c.path = f->root;
    f->s = velo_obj_open(&c, &err);
    g_assert_no_error(err);
}

static void rm_rf(const char *path)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", path);

    g_assert_cmpint(system(cmd), ==, 0);
}

static void teardown(Fixture *f, gconstpointer data)
{
    velo_obj_close(f->s);
    rm_rf(f->top);
    g_free(f->top);
    g_free(f->root);
    g_free(f->outside);
}

/* Read what "outside/secret" holds now. */
static char *secret(Fixture *f)
{
    g_autofree char *p = g_build_filename(f->outside, "secret", NULL);
    char *text = NULL;

    g_assert_true(g_file_get_contents(p, &text, NULL, NULL));
    return text;
}

static void test_roundtrip(Fixture *f, gconstpointer data)
{
    char buf[16];
    VeloObjInfo info;
    GError *err = NULL;

    g_assert_cmpint(velo_obj_put(f->s, "d1/ext/aa", "0123456789", 10, &err),
                    ==, 0);
    g_assert_cmpint(velo_obj_get(f->s, "d1/ext/aa", 3, 4, buf, &err), ==, 4);
    g_assert_cmpmem(buf, 4, "3456", 4);
    g_assert_cmpint(velo_obj_get(f->s, "d1/ext/aa", 8, 16, buf, &err), ==, 2);
    g_assert_cmpint(velo_obj_head(f->s, "d1/ext/aa", &info, &err), ==, 0);
    g_assert_cmpuint(info.size, ==, 10);
    {
        /* Guest data: readable by the owner only. */
        g_autofree char *file = g_build_filename(f->root, "d1", "ext", "aa",
                                                 NULL);
        g_autofree char *dir = g_build_filename(f->root, "d1", NULL);
        struct stat st;

        g_assert_cmpint(stat(file, &st), ==, 0);
        g_assert_cmphex(st.st_mode & 07777, ==, 0600);
        g_assert_cmpint(stat(dir, &st), ==, 0);
        g_assert_cmphex(st.st_mode & 07777, ==, 0700);
    }
    g_assert_cmpint(velo_obj_delete(f->s, "d1/ext/aa", &err), ==, 0);
    g_assert_cmpint(velo_obj_get(f->s, "d1/ext/aa", 0, 4, buf, &err), ==,
                    -ENOENT);
    g_assert_cmpint(velo_obj_get(f->s, "d2/none", 0, 4, buf, &err), ==,
                    -ENOENT);
    g_assert_no_error(err);
}

/* Keys in byte order although '-' and '.' sort before '/' and '0' after:
 * the walk must not list directory "a" as a block before or after "a-c". */
static void test_list_order(Fixture *f, gconstpointer data)
{
    static const char *const keys[] = {     /* sorted */
        "p/a-c", "p/a.x", "p/a/b/c", "p/a/b0", "p/a0", "p/b", "q",
    };
    static const char *const puts[] = {     /* not sorted */
        "p/a/b/c", "q", "p/a0", "p/a-c", "p/b", "p/a/b0", "p/a.x",
    };
    g_autofree char *after = NULL;
    guint i, n = 0;

    for (i = 0; i < G_N_ELEMENTS(puts); i++) {
        g_assert_cmpint(velo_obj_put(f->s, puts[i], "x", 1, NULL), ==, 0);
    }
    for (;;) {
        g_autoptr(VeloObjList) l = NULL;

        g_assert_cmpint(velo_obj_list(f->s, "p", after, 2, &l, NULL), ==, 0);
        for (i = 0; i < l->items->len; i++, n++) {
            g_assert_cmpstr(g_array_index(l->items, VeloObjInfo, i).key, ==,
                            keys[n]);
        }
        if (!l->truncated) {
            break;
        }
        g_free(after);
        after = g_strdup(g_array_index(l->items, VeloObjInfo, 1).key);
    }
    g_assert_cmpuint(n, ==, G_N_ELEMENTS(keys) - 1);   /* all but "q" */
}

static void test_collision(Fixture *f, gconstpointer data)
{
    GError *err = NULL;

    g_assert_cmpint(velo_obj_put(f->s, "c", "x", 1, NULL), ==, 0);
    g_assert_cmpint(velo_obj_put(f->s, "c/d", "x", 1, &err), ==, -ENOTDIR);
    g_assert_nonnull(strstr(err->message, "collide"));
    g_clear_error(&err);
    g_assert_cmpint(velo_obj_put(f->s, "e/f", "x", 1, NULL), ==, 0);
    g_assert_cmpint(velo_obj_put(f->s, "e", "x", 1, &err), ==, -EISDIR);
    g_clear_error(&err);
}

/* Keys that would leave the root never reach the filesystem. */
static void test_traversal(Fixture *f, gconstpointer data)
{
    static const char *const keys[] = {
        "../outside/secret", "a/../../outside/secret", "/etc/passwd",
        "./x", "..", "a/./b",
    };
    g_autofree char *s = NULL;
    guint i;

    for (i = 0; i < G_N_ELEMENTS(keys); i++) {
        GError *err = NULL;
        char buf[8];

        g_assert_cmpint(velo_obj_put(f->s, keys[i], "PWNED!", 6, &err), ==,
                        -EINVAL);
        g_assert_nonnull(strstr(err->message, "invalid key"));
        g_clear_error(&err);
        g_assert_cmpint(velo_obj_get(f->s, keys[i], 0, 8, buf, &err), ==,
                        -EINVAL);
        g_clear_error(&err);
        g_assert_cmpint(velo_obj_delete(f->s, keys[i], &err), ==, -EINVAL);
        g_clear_error(&err);
    }
    s = secret(f);
    g_assert_cmpstr(s, ==, "SECRET");
}

/* A symlink planted in the root is refused, never followed. */
static void test_symlink(Fixture *f, gconstpointer data)
{
    g_autofree char *dlink = g_build_filename(f->root, "evil", NULL);
    g_autofree char *flink = g_build_filename(f->root, "link", NULL);
    g_autofree char *target = g_build_filename(f->outside, "secret", NULL);
    g_autofree char *created = g_build_filename(f->outside, "new", NULL);
    g_autoptr(VeloObjList) l = NULL;
    g_autoptr(VeloObjList) l2 = NULL;
    g_autofree char *s = NULL;
    VeloObjInfo info;
    GError *err = NULL;
    char buf[8];

    g_assert_cmpint(symlink(f->outside, dlink), ==, 0);
    g_assert_cmpint(symlink(target, flink), ==, 0);

    /* A directory on the path is a symlink. */
    g_assert_cmpint(velo_obj_get(f->s, "evil/secret", 0, 8, buf, &err), ==,
                    -ELOOP);
    g_assert_nonnull(strstr(err->message, "symlink"));
    g_clear_error(&err);
    g_assert_cmpint(velo_obj_put(f->s, "evil/new", "x", 1, &err), ==, -ELOOP);
    g_clear_error(&err);
    g_assert_false(g_file_test(created, G_FILE_TEST_EXISTS));
    g_assert_cmpint(velo_obj_delete(f->s, "evil/secret", &err), ==, -ELOOP);
    g_clear_error(&err);

    /* The object itself is a symlink. */
    g_assert_cmpint(velo_obj_get(f->s, "link", 0, 8, buf, &err), ==, -ELOOP);
    g_clear_error(&err);
    g_assert_cmpint(velo_obj_head(f->s, "link", &info, &err), ==, -ELOOP);
    g_clear_error(&err);
    g_assert_cmpint(velo_obj_list(f->s, "", NULL, 10, &l, NULL), ==, 0);
    g_assert_cmpuint(l->items->len, ==, 0);
    /* A put replaces the link, not its target. */
    g_assert_cmpint(velo_obj_put(f->s, "link", "mine", 4, NULL), ==, 0);
    g_assert_cmpint(velo_obj_get(f->s, "link", 0, 8, buf, NULL), ==, 4);
    s = secret(f);
    g_assert_cmpstr(s, ==, "SECRET");
    /* Listing under it fails; listing across it skips it. */
    g_assert_cmpint(velo_obj_list(f->s, "evil/", NULL, 10, &l2, &err), ==,
                    -ELOOP);
    g_assert_null(l2);
    g_clear_error(&err);
    g_assert_cmpint(velo_obj_list(f->s, "evil", NULL, 10, &l2, &err), ==, 0);
    g_assert_cmpuint(l2->items->len, ==, 0);
}

/* A FIFO planted in the root fails at once instead of hanging a reader. */
static void test_fifo(Fixture *f, gconstpointer data)
{
    g_autofree char *p = g_build_filename(f->root, "fifo", NULL);
    GError *err = NULL;
    char buf[8];

    g_assert_cmpint(mkfifo(p, 0600), ==, 0);
    g_assert_cmpint(velo_obj_get(f->s, "fifo", 0, 8, buf, &err), ==, -EINVAL);
    g_assert_nonnull(strstr(err->message, "not a regular file"));
    g_clear_error(&err);
}

/* Temporary files never show, whether left by a crash or by a put. */
static void test_temp_files(Fixture *f, gconstpointer data)
{
    g_autofree char *stray = g_build_filename(f->root, "t",
                                              ".velo-tmp-deadbeef", NULL);
    g_autofree char *tdir = g_build_filename(f->root, "t", NULL);
    g_autoptr(VeloObjList) l = NULL;
    g_autoptr(GDir) d = NULL;
    const char *name;
    guint n = 0;

    g_assert_cmpint(velo_obj_put(f->s, "t/obj", "x", 1, NULL), ==, 0);
    g_assert_true(g_file_set_contents(stray, "partial", 7, NULL));
    g_assert_cmpint(velo_obj_list(f->s, "t/", NULL, 10, &l, NULL), ==, 0);
    g_assert_cmpuint(l->items->len, ==, 1);
    g_assert_cmpstr(g_array_index(l->items, VeloObjInfo, 0).key, ==, "t/obj");
    d = g_dir_open(tdir, 0, NULL);
    while ((name = g_dir_read_name(d))) {
        n++;                    /* "obj" and the stray, no leftover */
    }
    g_assert_cmpuint(n, ==, 2);
}

static void test_open(void)
{
    g_autofree char *tmp = g_dir_make_tmp("test-objstore-open-XXXXXX", NULL);
    g_autofree char *missing = g_build_filename(tmp, "a", "b", NULL);
    VeloObjConfig c = { .backend = "dir", .path = missing };
    GError *err = NULL;
    VeloObjStore *s;

    g_assert_null(velo_obj_open(&c, &err));
    g_assert_cmpint(err->code, ==, ENXIO);
    g_assert_nonnull(strstr(err->message, "create=on"));
    g_clear_error(&err);
    c.create = true;
    s = velo_obj_open(&c, &err);
    g_assert_no_error(err);
    g_assert_true(g_file_test(missing, G_FILE_TEST_IS_DIR));
    velo_obj_close(s);
    c.backend = "nfs";
    g_assert_null(velo_obj_open(&c, &err));
    g_assert_nonnull(strstr(err->message, "unknown backend 'nfs'"));
    g_clear_error(&err);
    rm_rf(tmp);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) \
    g_test_add("/objstore-dir/" name, Fixture, NULL, setup, fn, teardown)
    ADD("roundtrip", test_roundtrip);
    ADD("list-order", test_list_order);
    ADD("collision", test_collision);
    ADD("traversal", test_traversal);
    ADD("symlink", test_symlink);
    ADD("fifo", test_fifo);
    ADD("temp-files", test_temp_files);
    g_test_add_func("/objstore-dir/open", test_open);
    return g_test_run();
}
