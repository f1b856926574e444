/*
 * Unit tests of the write-state file format (block/wstate.c): the slot
 * codec, the choice between the two slots, and hostile input.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "wstate.h"

static VeloWState state(uint64_t gen, uint64_t epoch, uint64_t seq)
{
    VeloWState st = { .gen = gen, .epoch = epoch, .seq = seq };
    int i;

    for (i = 0; i < VELO_DISK_ID_SIZE; i++) {
        st.disk_id[i] = 0xa0 + i;
    }
    return st;
}

static void test_roundtrip(void)
{
    uint8_t buf[VELO_WST_SLOT];
    VeloWState in = state(7, 3, 123456789012ull), out;

    velo_wst_encode(buf, &in);
    g_assert_true(velo_wst_decode(buf, &out));
    g_assert_cmpuint(out.gen, ==, 7);
    g_assert_cmpuint(out.epoch, ==, 3);
    g_assert_cmpuint(out.seq, ==, 123456789012ull);
    g_assert_cmpmem(out.disk_id, VELO_DISK_ID_SIZE, in.disk_id,
                    VELO_DISK_ID_SIZE);
}

/* Any single flipped bit spoils a slot. */
static void test_corrupt(void)
{
    uint8_t buf[VELO_WST_SLOT];
    VeloWState in = state(1, 1, 1), out;
    size_t i;

    velo_wst_encode(buf, &in);
    for (i = 0; i < VELO_WST_SLOT * 8; i += 7) {
        buf[i / 8] ^= 1 << (i % 8);
        g_assert_false(velo_wst_decode(buf, &out));
        buf[i / 8] ^= 1 << (i % 8);
    }
    g_assert_true(velo_wst_decode(buf, &out));
}

static void test_pick(void)
{
    uint8_t file[2 * VELO_WST_SLOT] = { 0 };
    VeloWState a = state(4, 2, 100), b = state(5, 2, 140), out;
    const char *why = NULL;

    /* Empty, or only zeros (a crash in the first save): a new file. */
    g_assert_cmpint(velo_wst_pick(file, 0, &out, &why), ==, 0);
    g_assert_cmpint(velo_wst_pick(file, sizeof(file), &out, &why), ==, 0);

    /* A seq of 2^64-1 has no next one: not a valid slot. */
    {
        VeloWState m = state(6, 2, UINT64_MAX);
        velo_wst_encode(file, &m);
        g_assert_false(velo_wst_decode(file, &out));
        g_assert_cmpint(velo_wst_pick(file, sizeof(file), &out, &why), ==,
                        -1);
        memset(file, 0, sizeof(file));
    }

    /* The higher generation wins, in either slot. */
    velo_wst_encode(file, &a);
    velo_wst_encode(file + VELO_WST_SLOT, &b);
    g_assert_cmpint(velo_wst_pick(file, sizeof(file), &out, &why), ==, 1);
    g_assert_cmpuint(out.seq, ==, 140);
    velo_wst_encode(file, &b);
    velo_wst_encode(file + VELO_WST_SLOT, &a);
    g_assert_cmpint(velo_wst_pick(file, sizeof(file), &out, &why), ==, 1);
    g_assert_cmpuint(out.seq, ==, 140);

    /* A torn newer slot leaves the older one. */
    file[20] ^= 0xff;
    g_assert_cmpint(velo_wst_pick(file, sizeof(file), &out, &why), ==, 1);
    g_assert_cmpuint(out.gen, ==, 4);

    /* Only the first slot written so far (a file of one slot). */
    velo_wst_encode(file, &a);
    g_assert_cmpint(velo_wst_pick(file, VELO_WST_SLOT, &out, &why), ==, 1);
    g_assert_cmpuint(out.gen, ==, 4);

    /* Both bad, or too short: corrupt, with a reason. */
    memset(file, 0x5a, sizeof(file));
    g_assert_cmpint(velo_wst_pick(file, sizeof(file), &out, &why), ==, -1);
    g_assert_nonnull(why);
    g_assert_cmpint(velo_wst_pick(file, 100, &out, &why), ==, -1);
}

/* Random bytes never decode (the CRC must match by chance: 2^-32). */
static void test_random(void)
{
    uint8_t file[2 * VELO_WST_SLOT];
    VeloWState out;
    const char *why;
    uint32_t seed = 99;
    int round;
    size_t i;

    for (round = 0; round < 2000; round++) {
        for (i = 0; i < sizeof(file); i++) {
            seed = seed * 1103515245 + 12345;
            file[i] = seed >> 16;
        }
        g_assert_cmpint(velo_wst_pick(file, sizeof(file), &out, &why), ==,
                        -1);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/wstate/roundtrip", test_roundtrip);
    g_test_add_func("/wstate/corrupt", test_corrupt);
    g_test_add_func("/wstate/pick", test_pick);
    g_test_add_func("/wstate/random", test_random);
    return g_test_run();
}
