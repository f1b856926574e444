/*
 * Unit tests of the link estimator (block/linkest.c): the delivery rate's
 * decaying maximum, the round trip's expiring minimum, and the windows
 * they give, including hostile and overflowing input.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include "linkest.h"

#define MS 1000000LL
#define S  1000000000LL

/* 12.5 MB/s (100 Mbit/s) and 50 ms: the bench link. */
static void test_rate_and_rtt(void)
{
    VeloLinkEst l = { 0 };

    velo_link_est_sample(&l, 1250000, 100 * MS, 60 * MS, 1 * S);
    g_assert_cmpuint(l.bps, ==, 12500000);
    g_assert_cmpint(l.rtt_ns, ==, 60 * MS);
    /* A slower sample does not lower the rate at once; a shorter fetch
     * lowers the round trip. */
    velo_link_est_sample(&l, 125000, 100 * MS, 50 * MS, 2 * S);
    g_assert_cmpuint(l.bps, ==, 12500000 - 12500000 / 1024);
    g_assert_cmpint(l.rtt_ns, ==, 50 * MS);
    /* A longer fetch within the window does not raise it. */
    velo_link_est_sample(&l, 1250000, 100 * MS, 80 * MS, 5 * S);
    g_assert_cmpint(l.rtt_ns, ==, 50 * MS);
}

/* The rate follows a link that slows down: 1/1024 a sample. */
static void test_rate_decays(void)
{
    VeloLinkEst l = { 0 };
    int i;

    velo_link_est_sample(&l, 12500000, 1 * S, 50 * MS, 0);
    for (i = 0; i < 5000; i++) {
        velo_link_est_sample(&l, 2500000, 1 * S, 50 * MS, i * MS);
    }
    g_assert_cmpuint(l.bps, ==, 2500000);
}

/* A route that got longer is learnt once the minimum is 10 s old. */
static void test_rtt_expires(void)
{
    VeloLinkEst l = { 0 };

    velo_link_est_sample(&l, 65536, 50 * MS, 50 * MS, 0);
    velo_link_est_sample(&l, 65536, 200 * MS, 200 * MS, 9 * S);
    g_assert_cmpint(l.rtt_ns, ==, 50 * MS);
    velo_link_est_sample(&l, 65536, 210 * MS, 210 * MS, 10 * S + 1);
    g_assert_cmpint(l.rtt_ns, ==, 210 * MS);
    g_assert_cmpint(l.rtt_at_ns, ==, 10 * S + 1);
    /* ... and the new minimum then holds for its own 10 s. */
    velo_link_est_sample(&l, 65536, 205 * MS, 205 * MS, 11 * S);
    g_assert_cmpint(l.rtt_ns, ==, 205 * MS);
    velo_link_est_sample(&l, 65536, 300 * MS, 300 * MS, 20 * S);
    g_assert_cmpint(l.rtt_ns, ==, 205 * MS);
}

/* Bad samples change nothing; huge ones saturate. */
static void test_hostile(void)
{
    VeloLinkEst l = { 0 };

    g_assert_false(velo_link_est_sample(&l, 1000, 0, 50 * MS, 0));
    g_assert_false(velo_link_est_sample(&l, 1000, -5, 50 * MS, 0));
    g_assert_false(velo_link_est_sample(&l, 1000, 50 * MS, 0, 0));
    g_assert_false(velo_link_est_sample(&l, 1000, 50 * MS, -1, 0));
    g_assert_cmpuint(l.bps, ==, 0);
    g_assert_cmpint(l.rtt_ns, ==, 0);
    g_assert_true(velo_link_est_sample(&l, UINT64_MAX, 1, 1, 0));
    g_assert_cmpuint(l.bps, ==, UINT64_MAX);
    g_assert_cmpuint(velo_link_spec_window(&l, 100, 0, 0), ==,
                     VELO_SPEC_MAX);
}

static void test_wire_window(void)
{
    /* Until 1 MiB has crossed, or without compression: as asked. */
    g_assert_cmpuint(velo_link_wire_window(1 << 20, 1000, 3000), ==, 1 << 20);
    g_assert_cmpuint(velo_link_wire_window(1 << 20, 4 << 20, 4 << 20), ==,
                     1 << 20);
    /* 2.5x compression: 2.5x the raw bytes; 10x: capped at 4x. */
    g_assert_cmpuint(velo_link_wire_window(1 << 20, 4 << 20, 10 << 20), ==,
                     (5 << 20) / 2);
    g_assert_cmpuint(velo_link_wire_window(1 << 20, 1 << 20, 10 << 20), ==,
                     4 << 20);
    g_assert_cmpuint(velo_link_wire_window(UINT64_MAX, 1 << 20, 10 << 20),
                     ==, UINT64_MAX);
}

static void test_spec_window(void)
{
    VeloLinkEst l = { 0 };

    /* Not known yet: 1 MiB on the wire. */
    g_assert_cmpuint(velo_link_spec_window(&l, 3, 0, 0), ==,
                     VELO_RA_INFLIGHT);
    velo_link_est_sample(&l, 1250000, 100 * MS, 50 * MS, 0);
    g_assert_cmpuint(velo_link_spec_window(&l, 7, 0, 0), ==,
                     VELO_RA_INFLIGHT);
    /* 12.5 MB/s x 50 ms = 625000 B; 4 BDP = 2.5 MB. */
    g_assert_cmpuint(velo_link_spec_window(&l, 8, 0, 0), ==, 2500000);
    /* 2x compression doubles it on the raw side. */
    g_assert_cmpuint(velo_link_spec_window(&l, 8, 8 << 20, 16 << 20), ==,
                     5000000);
    /* A slow link: at least VELO_SPEC_MIN; a fast one: at most MAX. */
    l = (VeloLinkEst){ .bps = 100000, .rtt_ns = 50 * MS };
    g_assert_cmpuint(velo_link_spec_window(&l, 8, 0, 0), ==, VELO_SPEC_MIN);
    l = (VeloLinkEst){ .bps = 1250000000, .rtt_ns = 50 * MS };
    g_assert_cmpuint(velo_link_spec_window(&l, 8, 0, 0), ==, VELO_SPEC_MAX);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/linkest/rate-and-rtt", test_rate_and_rtt);
    g_test_add_func("/linkest/rate-decays", test_rate_decays);
    g_test_add_func("/linkest/rtt-expires", test_rtt_expires);
    g_test_add_func("/linkest/hostile", test_hostile);
    g_test_add_func("/linkest/wire-window", test_wire_window);
    g_test_add_func("/linkest/spec-window", test_spec_window);
    return g_test_run();
}
