/*
 * Unit tests for the Velo extent map (block/extmap.c): geometry, state
 * counts, applying allocation-map entries at byte granularity, and runs.
 */
#include "extmap.h"

static void test_geometry(void)
{
    VeloExtMap *m = velo_extmap_new(1000000, 65536);

    g_assert_cmpuint(m->n_extents, ==, 16);
    g_assert_cmpuint(velo_extmap_extent_len(m, 0), ==, 65536);
    g_assert_cmpuint(velo_extmap_extent_len(m, 15), ==, 1000000 - 15 * 65536);
    g_assert_cmpuint(velo_extmap_index(m, 65535), ==, 0);
    g_assert_cmpuint(velo_extmap_index(m, 65536), ==, 1);
    g_assert_cmpuint(m->count[VELO_EXT_UNKNOWN], ==, 16);
    g_assert_true(velo_extmap_check(m));
    velo_extmap_free(m);

    m = velo_extmap_new(0, 4096);
    g_assert_cmpuint(m->n_extents, ==, 0);
    g_assert_true(velo_extmap_check(m));
    velo_extmap_free(m);
}

static void test_counts(void)
{
    VeloExtMap *m = velo_extmap_new(10 * 4096, 4096);

    velo_extmap_set(m, 0, VELO_EXT_CACHED);
    velo_extmap_set(m, 1, VELO_EXT_DIRTY);
    velo_extmap_set(m, 1, VELO_EXT_DIRTY);
    velo_extmap_set(m, 2, VELO_EXT_ZERO);
    g_assert_cmpuint(m->count[VELO_EXT_CACHED], ==, 1);
    g_assert_cmpuint(m->count[VELO_EXT_DIRTY], ==, 1);
    g_assert_cmpuint(m->count[VELO_EXT_ZERO], ==, 1);
    g_assert_cmpuint(m->count[VELO_EXT_UNKNOWN], ==, 7);
    g_assert_true(velo_extmap_check(m));
    velo_extmap_free(m);
}

static void test_apply(void)
{
    VeloExtMap *m = velo_extmap_new(8 * 4096, 4096);

    /* Zero covering extents 0-1 fully and half of 2; then data in 2's rest. */
    g_assert_cmpuint(velo_extmap_apply(m, 0, 2 * 4096 + 2048, true), ==, 2);
    g_assert_cmpint(velo_extmap_get(m, 0), ==, VELO_EXT_ZERO);
    g_assert_cmpint(velo_extmap_get(m, 1), ==, VELO_EXT_ZERO);
    g_assert_cmpint(velo_extmap_get(m, 2), ==, VELO_EXT_UNKNOWN);
    g_assert_true(velo_extmap_check(m));
    velo_extmap_apply(m, 2 * 4096 + 2048, 2048, false);
    g_assert_cmpint(velo_extmap_get(m, 2), ==, VELO_EXT_DATA);

    /* Zero in two pieces becomes ZERO once complete. */
    velo_extmap_apply(m, 3 * 4096, 1024, true);
    g_assert_cmpint(velo_extmap_get(m, 3), ==, VELO_EXT_UNKNOWN);
    velo_extmap_apply(m, 3 * 4096 + 1024, 3072 + 4096, true);
    g_assert_cmpint(velo_extmap_get(m, 3), ==, VELO_EXT_ZERO);
    g_assert_cmpint(velo_extmap_get(m, 4), ==, VELO_EXT_ZERO);

    /* Data then zero within one extent: DATA wins. */
    velo_extmap_apply(m, 5 * 4096, 100, false);
    velo_extmap_apply(m, 5 * 4096 + 100, 3996, true);
    g_assert_cmpint(velo_extmap_get(m, 5), ==, VELO_EXT_DATA);

    /* Known extents are never downgraded by the map. */
    velo_extmap_set(m, 6, VELO_EXT_DIRTY);
    velo_extmap_apply(m, 6 * 4096, 8192, true);
    g_assert_cmpint(velo_extmap_get(m, 6), ==, VELO_EXT_DIRTY);
    g_assert_cmpint(velo_extmap_get(m, 7), ==, VELO_EXT_ZERO);

    /* Entries past the end are clipped. */
    velo_extmap_apply(m, 7 * 4096, 1 << 20, false);
    g_assert_true(velo_extmap_check(m));
    velo_extmap_free(m);
}

static void test_run(void)
{
    VeloExtMap *m = velo_extmap_new(16 * 4096, 4096);

    velo_extmap_apply(m, 0, 4 * 4096, true);
    velo_extmap_apply(m, 4 * 4096, 12 * 4096, false);
    g_assert_cmpuint(velo_extmap_run(m, 0, 100), ==, 4);
    g_assert_cmpuint(velo_extmap_run(m, 1, 2), ==, 2);
    g_assert_cmpuint(velo_extmap_run(m, 4, 100), ==, 12);
    g_assert_cmpuint(velo_extmap_run(m, 15, 100), ==, 1);
    velo_extmap_free(m);
}

/* Random operations keep the counts consistent. */
static void test_random(void)
{
    GRand *r = g_rand_new_with_seed(7);
    VeloExtMap *m = velo_extmap_new(1000 * 4096 + 123, 4096);
    int i;

    for (i = 0; i < 100000; i++) {
        if (g_rand_boolean(r)) {
            velo_extmap_set(m, g_rand_int_range(r, 0, m->n_extents),
                            g_rand_int_range(r, 0, VELO_EXT__MAX));
        } else {
            uint64_t off = g_rand_int_range(r, 0, m->disk_size);
            velo_extmap_apply(m, off, g_rand_int_range(r, 1, 20000),
                              g_rand_boolean(r));
        }
    }
    g_assert_true(velo_extmap_check(m));
    velo_extmap_free(m);
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/extmap/geometry", test_geometry);
    g_test_add_func("/extmap/counts", test_counts);
    g_test_add_func("/extmap/apply", test_apply);
    g_test_add_func("/extmap/run", test_run);
    g_test_add_func("/extmap/random", test_random);
    return g_test_run();
}
