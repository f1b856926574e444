/*
 * Unit tests of the content-addressed store (block/cas.c): objects round
 * trip, every kind of damage reads as a miss (and the bad object goes),
 * the store id persists, and nothing follows a planted symlink.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "cas.h"

#define EXT 65536

static char *tmpdir(void)
{
    return g_dir_make_tmp("velo-cas-XXXXXX", NULL);
}

static void rm_rf(const char *dir)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    g_assert_cmpint(system(cmd), ==, 0);
}

static char *object_path(const char *dir, const uint8_t *hash)
{
    GString *s = g_string_new(dir);
    int i;

    g_string_append_printf(s, "/%02x/", hash[0]);
    for (i = 0; i < VELO_CAS_HASH_SIZE; i++) {
        g_string_append_printf(s, "%02x", hash[i]);
    }
    return g_string_free(s, FALSE);
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    GRand *r = g_rand_new_with_seed(seed);
    size_t i;

    for (i = 0; i < len; i++) {
        buf[i] = g_rand_int(r);
    }
    g_rand_free(r);
}

static void test_roundtrip(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree uint8_t *a = g_malloc(EXT), *b = g_malloc(EXT);
    uint8_t h[VELO_CAS_HASH_SIZE];
    const char *why;
    VeloCas *cas = velo_cas_open(dir, &why);

    g_assert_nonnull(cas);
    fill(a, EXT, 1);
    velo_cas_hash(a, EXT, h);
    g_assert_false(velo_cas_get(cas, h, b, EXT));
    g_assert_cmpint(velo_cas_put(cas, h, a, EXT), ==, 0);
    g_assert_cmpint(velo_cas_put(cas, h, a, EXT), ==, 0);     /* again: ok */
    g_assert_true(velo_cas_get(cas, h, b, EXT));
    g_assert_cmpmem(a, EXT, b, EXT);
    /* The wrong size is a miss, and does not destroy the object. */
    g_assert_false(velo_cas_get(cas, h, b, 4096));
    g_assert_true(velo_cas_get(cas, h, b, EXT));
    velo_cas_close(cas);
    rm_rf(dir);
}

static void test_damage(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree uint8_t *a = g_malloc(EXT), *b = g_malloc(EXT);
    uint8_t h[VELO_CAS_HASH_SIZE];
    const char *why;
    VeloCas *cas = velo_cas_open(dir, &why);
    g_autofree char *path = NULL;
    int i;

    fill(a, EXT, 2);
    velo_cas_hash(a, EXT, h);
    path = object_path(dir, h);
    for (i = 0; i < 200; i++) {
        int fd;
        uint8_t byte;
        off_t at = g_random_int_range(0, EXT);

        g_assert_cmpint(velo_cas_put(cas, h, a, EXT), ==, 0);
        fd = open(path, O_RDWR);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(pread(fd, &byte, 1, at), ==, 1);
        byte ^= 1 << g_random_int_range(0, 8);
        g_assert_cmpint(pwrite(fd, &byte, 1, at), ==, 1);
        close(fd);
        g_assert_false(velo_cas_get(cas, h, b, EXT));
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    }
    /* Truncated, and empty: a miss, and the next put replaces it. */
    g_assert_cmpint(velo_cas_put(cas, h, a, EXT), ==, 0);
    g_assert_cmpint(truncate(path, EXT - 1), ==, 0);
    g_assert_false(velo_cas_get(cas, h, b, EXT));
    g_assert_cmpint(velo_cas_put(cas, h, a, EXT), ==, 0);
    g_assert_true(velo_cas_get(cas, h, b, EXT));
    g_assert_cmpint(truncate(path, 0), ==, 0);
    g_assert_cmpint(velo_cas_put(cas, h, a, EXT), ==, 0);
    g_assert_true(velo_cas_get(cas, h, b, EXT));
    g_assert_cmpmem(a, EXT, b, EXT);
    velo_cas_close(cas);
    rm_rf(dir);
}

static void test_symlink(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree char *outside = g_strdup_printf("%s.outside", dir);
    g_autofree uint8_t *a = g_malloc(EXT), *b = g_malloc(EXT);
    uint8_t h[VELO_CAS_HASH_SIZE];
    g_autofree char *path = NULL, *sub = NULL;
    const char *why;
    VeloCas *cas = velo_cas_open(dir, &why);

    fill(a, EXT, 3);
    velo_cas_hash(a, EXT, h);
    g_assert_true(g_file_set_contents(outside, (char *)a, EXT, NULL));
    path = object_path(dir, h);
    sub = g_path_get_dirname(path);
    g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
    g_assert_cmpint(symlink(outside, path), ==, 0);
    /* Even with the right content behind it, a symlink is not an object. */
    g_assert_false(velo_cas_get(cas, h, b, EXT));
    velo_cas_close(cas);
    rm_rf(dir);
    g_unlink(outside);
}

static void test_store_id(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree char *file = g_strdup_printf("%s/file", dir);
    uint8_t id[VELO_CAS_ID_SIZE];
    const char *why;
    VeloCas *cas = velo_cas_open(dir, &why);

    memcpy(id, velo_cas_id(cas), sizeof(id));
    velo_cas_close(cas);
    cas = velo_cas_open(dir, &why);
    g_assert_cmpmem(id, sizeof(id), velo_cas_id(cas), sizeof(id));
    velo_cas_close(cas);
    g_assert_true(g_file_set_contents(file, "x", 1, NULL));
    g_assert_null(velo_cas_open(file, &why));
    g_assert_nonnull(why);
    rm_rf(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cas/roundtrip", test_roundtrip);
    g_test_add_func("/cas/damage", test_damage);
    g_test_add_func("/cas/symlink", test_symlink);
    g_test_add_func("/cas/store-id", test_store_id);
    return g_test_run();
}
