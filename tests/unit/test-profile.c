/*
 * Unit tests of the boot profile format (block/profile.c): round trips,
 * run merging, and hostile files (corrupt, truncated, huge, out of range).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include "bytes.h"
#include "cachefmt.h"
#include "profile.h"

#define MiB (1u << 20)

static const uint8_t id[16] = "0123456789abcdef";

static VeloProfile *sample(void)
{
    VeloProfile *p = velo_profile_new(64 * MiB, 65536, id, "deb12", 0);

    g_assert_true(velo_profile_append(p, 10, 0));
    g_assert_true(velo_profile_append(p, 11, 1));
    g_assert_true(velo_profile_append(p, 12, 2));
    g_assert_true(velo_profile_append(p, 3, 50));
    g_assert_true(velo_profile_append(p, 1023, 900));
    p->recorded = 1700000000;
    return p;
}

static void test_roundtrip(void)
{
    g_autoptr(VeloProfile) p = sample();
    g_autoptr(VeloProfile) q = NULL;
    g_autofree uint8_t *buf = NULL;
    const char *why = NULL;
    size_t len;

    g_assert_cmpuint(p->n_runs, ==, 3);
    g_assert_cmpuint(p->n_extents, ==, 5);
    g_assert_cmpuint(p->runs[0].count, ==, 3);
    g_assert_cmpuint(p->duration_ms, ==, 900);
    g_assert_cmpuint(velo_profile_bytes(p), ==, 5 * 65536);
    buf = velo_profile_encode(p, &len);
    g_assert_cmpuint(len, ==, VELO_PROFILE_HDR_SIZE + 3 * 16 + 4);
    q = velo_profile_decode(buf, len, &why);
    g_assert_nonnull(q);
    g_assert_cmpuint(q->n_runs, ==, 3);
    g_assert_cmpuint(q->n_extents, ==, 5);
    g_assert_cmpuint(q->disk_size, ==, 64 * MiB);
    g_assert_cmpuint(q->extent_size, ==, 65536);
    g_assert_cmpuint(q->recorded, ==, 1700000000);
    g_assert_cmpuint(q->duration_ms, ==, 900);
    g_assert_cmpstr(q->template_name, ==, "deb12");
    g_assert_cmpmem(q->disk_id, 16, id, 16);
    g_assert_cmpuint(q->runs[1].first, ==, 3);
    g_assert_cmpuint(q->runs[1].time_ms, ==, 50);
    g_assert_cmpuint(q->runs[2].first, ==, 1023);
}

static void test_append_limits(void)
{
    g_autoptr(VeloProfile) p = velo_profile_new(64 * MiB + 1, 65536, id,
                                                NULL, 0);
    g_autoptr(VeloProfile) c = NULL;

    /* The last, partial extent is in the disk; the one after is not. */
    g_assert_true(velo_profile_append(p, 1024, 0));
    g_assert_false(velo_profile_append(p, 1025, 0));
    g_assert_false(velo_profile_append(p, UINT64_MAX, 0));
    g_assert_cmpuint(p->n_extents, ==, 1);
    g_assert_cmpuint(velo_profile_bytes(p), ==, 1);     /* the partial tail */
    c = velo_profile_copy(p, VELO_PROFILE_F_TEMPLATE);
    g_assert_cmpuint(c->n_runs, ==, 1);
    g_assert_cmpuint(c->flags, ==, VELO_PROFILE_F_TEMPLATE);
}

static void test_empty(void)
{
    g_autoptr(VeloProfile) p = velo_profile_new(MiB, 4096, id, NULL, 0);
    g_autoptr(VeloProfile) q = NULL;
    g_autofree uint8_t *buf = NULL;
    const char *why = NULL;
    size_t len;

    buf = velo_profile_encode(p, &len);
    q = velo_profile_decode(buf, len, &why);
    g_assert_nonnull(q);
    g_assert_cmpuint(q->n_runs, ==, 0);
}

/* Decoding must fail with a reason containing @what. */
static void expect_bad(const uint8_t *buf, size_t len, const char *what)
{
    const char *why = NULL;
    VeloProfile *q = velo_profile_decode(buf, len, &why);

    g_assert_null(q);
    g_assert_nonnull(why);
    if (!strstr(why, what)) {
        g_error("expected '%s', got '%s'", what, why);
    }
}

/* Re-seal the header CRC after tampering with it. */
static void reseal_header(uint8_t *buf)
{
    velo_put32(buf + VELO_PROFILE_HDR_SIZE - 4,
               velo_cache_crc(buf, VELO_PROFILE_HDR_SIZE - 4));
}

static void reseal_runs(uint8_t *buf, size_t len)
{
    velo_put32(buf + len - 4, velo_cache_crc(buf + VELO_PROFILE_HDR_SIZE,
                                             len - 4 - VELO_PROFILE_HDR_SIZE));
}

/* A field set to a bad value in a sample profile, CRCs recomputed. */
typedef struct SealedCase {
    size_t offset;
    unsigned width;             /* bytes; 0: write "../etc" */
    uint64_t value;
    const char *why;
} SealedCase;

#define RUN0    VELO_PROFILE_HDR_SIZE       /* first run entry */
#define RUN2    (VELO_PROFILE_HDR_SIZE + 32)

static const SealedCase sealed[] = {
    { 20, 4, 65537, "bad extent size" },
    { 24, 8, 0, "bad disk size" },
    { 32, 4, UINT32_MAX, "too many runs" },
    { 32, 4, VELO_PROFILE_MAX_RUNS, "truncated" },
    { 40, 8, UINT64_MAX, "more extents than the disk" },
    { 40, 8, 6, "do not add up" },
    { 16, 4, 0x80, "unknown flags" },
    { 72, 0, 0, "bad template name" },
    { 72 + 10, 1, 'x', "padding" },             /* garbage after the NUL */
    { 140, 1, 1, "reserved" },
    { RUN2, 8, 1024, "outside the disk" },      /* the disk has 1024 */
    { RUN0, 8, UINT64_MAX - 1, "outside the disk" },
    { RUN0 + 8, 4, UINT32_MAX, "outside the disk" },
    { RUN0 + 8, 4, 0, "outside the disk" },     /* an empty run */
};

static void test_hostile(void)
{
    g_autoptr(VeloProfile) p = sample();
    g_autofree uint8_t *good = NULL;
    g_autofree uint8_t *buf = NULL;
    size_t len, i;

    good = velo_profile_encode(p, &len);
    buf = g_malloc(len + 64);

    /* Every truncation is refused. */
    for (i = 0; i < len; i++) {
        const char *why = NULL;
        g_assert_null(velo_profile_decode(good, i, &why));
        g_assert_nonnull(why);
    }
    expect_bad(good, 4, "not a velo profile");
    expect_bad(good, 100, "truncated header");
    expect_bad(good, len - 1, "truncated");

    memcpy(buf, good, len);
    memset(buf + len, 0, 64);
    expect_bad(buf, len + 1, "trailing bytes");

    /* Any flipped bit is caught. */
    for (i = 0; i < len * 8; i += 7) {
        const char *why = NULL;
        memcpy(buf, good, len);
        buf[i / 8] ^= 1 << (i % 8);
        g_assert_null(velo_profile_decode(buf, len, &why));
    }

    memcpy(buf, good, len);
    buf[0] = 'X';
    expect_bad(buf, len, "bad magic");

    memcpy(buf, good, len);
    velo_put32(buf + 8, 2);
    expect_bad(buf, len, "unsupported profile version");

    memcpy(buf, good, len);
    buf[VELO_PROFILE_HDR_SIZE + 3] ^= 1;
    expect_bad(buf, len, "run list checksum");

    /* Sealed (CRCs recomputed) but inconsistent fields. */
    for (i = 0; i < G_N_ELEMENTS(sealed); i++) {
        const SealedCase *c = &sealed[i];
        uint8_t *f = buf + c->offset;

        memcpy(buf, good, len);
        switch (c->width) {
        case 1: *f = c->value; break;
        case 4: velo_put32(f, c->value); break;
        case 8: velo_put64(f, c->value); break;
        default: memcpy(f, "../etc", 6); break;     /* 0: a path as name */
        }
        if (c->offset < VELO_PROFILE_HDR_SIZE) {
            reseal_header(buf);
        } else {
            reseal_runs(buf, len);
        }
        expect_bad(buf, len, c->why);
    }
}

static void test_names(void)
{
    g_assert_true(velo_profile_name_valid("deb12-base_v1.2"));
    g_assert_false(velo_profile_name_valid(""));
    g_assert_false(velo_profile_name_valid(NULL));
    g_assert_false(velo_profile_name_valid(".hidden"));
    g_assert_false(velo_profile_name_valid("a/b"));
    g_assert_false(velo_profile_name_valid("a b"));
    g_assert_false(velo_profile_name_valid(
        "01234567890123456789012345678901234567890123456789012345678901234"));
}

static void test_files(void)
{
    g_autofree char *dir = g_dir_make_tmp("velo-profile-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "d.profile", NULL);
    g_autofree char *other = g_build_filename(dir, "other", NULL);
    g_autoptr(VeloProfile) p = sample();
    g_autoptr(VeloProfile) q = NULL;
    g_autofree char *err = NULL;
    g_autofree uint8_t *buf = NULL;
    size_t len;

    g_assert_cmpint(velo_profile_load(path, &q, &err), ==, -ENOENT);
    g_clear_pointer(&err, g_free);
    g_assert_cmpint(velo_profile_save(path, p, &err), ==, 0);
    g_assert_cmpint(velo_profile_load(path, &q, &err), ==, 0);
    g_assert_cmpuint(q->n_extents, ==, 5);

    /* A torn profile is ours (-EINVAL); a foreign file is not (-ENOTSUP). */
    buf = velo_profile_encode(p, &len);
    g_assert_true(g_file_set_contents(path, (char *)buf, len - 3, NULL));
    g_clear_pointer(&q, velo_profile_free);
    g_assert_cmpint(velo_profile_load(path, &q, &err), ==, -EINVAL);
    g_assert_nonnull(strstr(err, "truncated"));
    g_clear_pointer(&err, g_free);
    g_assert_true(g_file_set_contents(other, "hello world, not a profile",
                                      -1, NULL));
    g_assert_cmpint(velo_profile_load(other, &q, &err), ==, -ENOTSUP);
    g_clear_pointer(&err, g_free);
    g_assert_cmpint(velo_profile_unlink(other, &err), ==, -ENOTSUP);
    g_clear_pointer(&err, g_free);
    g_assert_true(g_file_test(other, G_FILE_TEST_EXISTS));
    g_assert_cmpint(velo_profile_unlink(path, &err), ==, 0);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    unlink(other);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/profile/roundtrip", test_roundtrip);
    g_test_add_func("/profile/append-limits", test_append_limits);
    g_test_add_func("/profile/empty", test_empty);
    g_test_add_func("/profile/hostile", test_hostile);
    g_test_add_func("/profile/names", test_names);
    g_test_add_func("/profile/files", test_files);
    return g_test_run();
}
