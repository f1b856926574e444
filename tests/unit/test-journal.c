/*
 * Unit tests of the write journal format (block/journal.c): superblock
 * round trip, every check that refuses a copy, picking between the two
 * copies; record header round trip, corruption and range checks, the data
 * CRC; and the ring arithmetic, by hand at its edges and against a model
 * of the live records over thousands of random reserves and releases.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <glib.h>
#include "bytes.h"
#include "cachefmt.h"
#include "journal.h"

#define BLK VELO_JREC_ALIGN

static const uint8_t id[16] = "0123456789abcdef";

static VeloJournalSb sample_sb(void)
{
    VeloJournalSb sb = {
        .gen = 5,
        .flags = 0,
        .disk_size = 10ull << 30,
        .ring_end = 2 * (uint64_t)VELO_JOURNAL_MIN_SIZE,
        .epoch = 3,
        .head_off = VELO_JRING_START + 7 * BLK,
        .head_seq = 42,
        .resync_next = 0,
    };

    memcpy(sb.disk_id, id, 16);
    return sb;
}

/* Recompute the CRC after patching a field, so a later check is reached. */
static void reseal(uint8_t *buf)
{
    velo_put32(buf + VELO_JSB_SIZE - 4, velo_cache_crc(buf, VELO_JSB_SIZE - 4));
}

/* Encode @sb and expect decode to refuse it with a reason naming @what. */
static void sb_refused(const VeloJournalSb *sb, const char *what)
{
    uint8_t buf[VELO_JSB_SIZE];
    VeloJournalSb out;
    const char *why = NULL;

    velo_jsb_encode(buf, sb);
    g_assert_false(velo_jsb_decode(buf, &out, &why));
    g_assert_nonnull(why);
    g_assert_nonnull(strstr(why, what));
}

static void sb_accepted(const VeloJournalSb *sb)
{
    uint8_t buf[VELO_JSB_SIZE];
    VeloJournalSb out;
    const char *why = NULL;

    velo_jsb_encode(buf, sb);
    g_assert_true(velo_jsb_decode(buf, &out, &why));
}

static void test_sb_roundtrip(void)
{
    uint8_t buf[VELO_JSB_SIZE];
    VeloJournalSb sb = sample_sb(), out;
    const char *why = NULL;

    sb.flags = VELO_JSB_F_RESYNC;
    sb.resync_next = 123456789;
    velo_jsb_encode(buf, &sb);
    g_assert_cmpuint(velo_get64(buf), ==, VELO_JSB_MAGIC);
    g_assert_true(velo_jsb_decode(buf, &out, &why));
    g_assert_cmpuint(out.gen, ==, sb.gen);
    g_assert_cmpuint(out.flags, ==, VELO_JSB_F_RESYNC);
    g_assert_cmpmem(out.disk_id, 16, id, 16);
    g_assert_cmpuint(out.disk_size, ==, sb.disk_size);
    g_assert_cmpuint(out.ring_end, ==, sb.ring_end);
    g_assert_cmpuint(out.epoch, ==, sb.epoch);
    g_assert_cmpuint(out.head_off, ==, sb.head_off);
    g_assert_cmpuint(out.head_seq, ==, sb.head_seq);
    g_assert_cmpuint(out.resync_next, ==, sb.resync_next);

    /* Large values survive (no field is truncated). */
    sb.gen = UINT64_MAX - 1;
    sb.epoch = UINT64_MAX;
    sb.head_seq = UINT64_MAX - 7;
    sb.disk_size = UINT64_MAX;
    sb.ring_end = (UINT64_MAX / 2) & ~(uint64_t)(BLK - 1);
    sb.head_off = sb.ring_end - BLK;
    velo_jsb_encode(buf, &sb);
    g_assert_true(velo_jsb_decode(buf, &out, &why));
    g_assert_cmpuint(out.gen, ==, sb.gen);
    g_assert_cmpuint(out.disk_size, ==, sb.disk_size);
    g_assert_cmpuint(out.ring_end, ==, sb.ring_end);
    g_assert_cmpuint(out.epoch, ==, sb.epoch);
    g_assert_cmpuint(out.head_off, ==, sb.head_off);
    g_assert_cmpuint(out.head_seq, ==, sb.head_seq);
}

static void test_sb_checks(void)
{
    uint8_t buf[VELO_JSB_SIZE], good[VELO_JSB_SIZE];
    VeloJournalSb sb = sample_sb(), out;
    const char *why;
    int i;

    velo_jsb_encode(good, &sb);

    /* Any flipped byte is caught, with the magic or the CRC. */
    for (i = 0; i < VELO_JSB_SIZE; i++) {
        memcpy(buf, good, sizeof(buf));
        buf[i] ^= 0x01;
        why = NULL;
        g_assert_false(velo_jsb_decode(buf, &out, &why));
        g_assert_nonnull(why);
        if (i >= 8) {
            g_assert_nonnull(strstr(why, "checksum"));
        }
    }

    /* Bad magic, with or without a matching CRC. */
    memcpy(buf, good, sizeof(buf));
    velo_put64(buf, VELO_JSB_MAGIC ^ 1);
    g_assert_false(velo_jsb_decode(buf, &out, &why));
    g_assert_nonnull(strstr(why, "magic"));
    reseal(buf);
    g_assert_false(velo_jsb_decode(buf, &out, &why));
    g_assert_nonnull(strstr(why, "magic"));
    memset(buf, 0, sizeof(buf));
    g_assert_false(velo_jsb_decode(buf, &out, &why));
    g_assert_nonnull(strstr(why, "magic"));

    /* Bad version. */
    memcpy(buf, good, sizeof(buf));
    velo_put32(buf + 8, VELO_JSB_VERSION + 1);
    reseal(buf);
    g_assert_false(velo_jsb_decode(buf, &out, &why));
    g_assert_nonnull(strstr(why, "version"));
    velo_put32(buf + 8, 0);
    reseal(buf);
    g_assert_false(velo_jsb_decode(buf, &out, &why));
    g_assert_nonnull(strstr(why, "version"));

    /* Unknown flags. */
    sb = sample_sb();
    sb.flags = 2;
    sb_refused(&sb, "flags");
    sb.flags = VELO_JSB_F_RESYNC | 0x80000000u;
    sb_refused(&sb, "flags");

    /* Ring end too small or unaligned; the minimum itself is fine. */
    sb = sample_sb();
    sb.ring_end = VELO_JOURNAL_MIN_SIZE;
    sb_accepted(&sb);
    sb.ring_end = VELO_JOURNAL_MIN_SIZE - BLK;
    sb_refused(&sb, "ring size");
    sb.ring_end = 0;
    sb.head_off = 0;
    sb_refused(&sb, "ring size");
    sb = sample_sb();
    sb.ring_end = VELO_JOURNAL_MIN_SIZE + 1;
    sb_refused(&sb, "ring size");
    sb.ring_end = VELO_JOURNAL_MIN_SIZE + BLK / 2;
    sb_refused(&sb, "ring size");

    /* Head outside the ring or unaligned; the ring's edges are fine. */
    sb = sample_sb();
    sb.head_off = VELO_JRING_START;
    sb_accepted(&sb);
    sb.head_off = sb.ring_end - BLK;
    sb_accepted(&sb);
    sb.head_off = sb.ring_end;
    sb_refused(&sb, "head offset");
    sb.head_off = sb.ring_end + BLK;
    sb_refused(&sb, "head offset");
    sb.head_off = UINT64_MAX & ~(uint64_t)(BLK - 1);
    sb_refused(&sb, "head offset");
    sb.head_off = VELO_JRING_START - BLK;
    sb_refused(&sb, "head offset");
    sb.head_off = 0;
    sb_refused(&sb, "head offset");
    sb.head_off = VELO_JSB_SLOT;
    sb_refused(&sb, "head offset");
    sb.head_off = VELO_JRING_START + 1;
    sb_refused(&sb, "head offset");
    sb.head_off = VELO_JRING_START + BLK + 8;
    sb_refused(&sb, "head offset");

    /* Zero epoch or sequence number. */
    sb = sample_sb();
    sb.epoch = 0;
    sb_refused(&sb, "zero");
    sb = sample_sb();
    sb.head_seq = 0;
    sb_refused(&sb, "zero");
}

static void test_sb_pick(void)
{
    uint8_t a[VELO_JSB_SIZE], b[VELO_JSB_SIZE];
    VeloJournalSb sa = sample_sb(), sbb = sample_sb(), out;
    const char *why;
    int r;

    sa.gen = 10;
    sa.head_seq = 100;
    sbb.gen = 11;
    sbb.head_seq = 200;
    velo_jsb_encode(a, &sa);
    velo_jsb_encode(b, &sbb);

    /* Both valid: the higher generation wins, whichever slot it is in. */
    g_assert_cmpint(velo_jsb_pick(a, b, &out, &why), ==, 1);
    g_assert_cmpuint(out.gen, ==, 11);
    g_assert_cmpuint(out.head_seq, ==, 200);
    g_assert_cmpint(velo_jsb_pick(b, a, &out, &why), ==, 0);
    g_assert_cmpuint(out.gen, ==, 11);
    sa.gen = 12;
    velo_jsb_encode(a, &sa);
    g_assert_cmpint(velo_jsb_pick(a, b, &out, &why), ==, 0);
    g_assert_cmpuint(out.gen, ==, 12);
    g_assert_cmpuint(out.head_seq, ==, 100);

    /* Equal generations: either, but consistently with what it returns. */
    sa.gen = 11;
    velo_jsb_encode(a, &sa);
    r = velo_jsb_pick(a, b, &out, &why);
    g_assert_true(r == 0 || r == 1);
    g_assert_cmpuint(out.head_seq, ==, r == 0 ? 100 : 200);

    /* Only A valid: B torn (even though its generation is higher). */
    sa.gen = 10;
    velo_jsb_encode(a, &sa);
    b[100] ^= 0xff;
    g_assert_cmpint(velo_jsb_pick(a, b, &out, &why), ==, 0);
    g_assert_cmpuint(out.gen, ==, 10);
    g_assert_cmpuint(out.head_seq, ==, 100);
    memset(b, 0, sizeof(b));
    g_assert_cmpint(velo_jsb_pick(a, b, &out, &why), ==, 0);
    g_assert_cmpuint(out.gen, ==, 10);

    /* Only B valid. */
    velo_jsb_encode(b, &sbb);
    a[200] ^= 0x10;
    g_assert_cmpint(velo_jsb_pick(a, b, &out, &why), ==, 1);
    g_assert_cmpuint(out.gen, ==, 11);
    g_assert_cmpuint(out.head_seq, ==, 200);
    memset(a, 0, sizeof(a));
    g_assert_cmpint(velo_jsb_pick(a, b, &out, &why), ==, 1);
    g_assert_cmpuint(out.head_seq, ==, 200);

    /* Neither: -1, and @why says why A failed. */
    memset(a, 0, sizeof(a));
    b[0] ^= 1;
    why = NULL;
    g_assert_cmpint(velo_jsb_pick(a, b, &out, &why), ==, -1);
    g_assert_nonnull(why);
    g_assert_nonnull(strstr(why, "magic"));
    sa.epoch = 0;
    velo_jsb_encode(a, &sa);
    why = NULL;
    g_assert_cmpint(velo_jsb_pick(a, b, &out, &why), ==, -1);
    g_assert_nonnull(why);
    g_assert_nonnull(strstr(why, "zero"));
}

static VeloJRec sample_rec(uint16_t type)
{
    VeloJRec r = {
        .type = type,
        .epoch = 3,
        .seq = 1000,
        .offset = 1ull << 30,
        .length = type == VELO_JREC_WRAP ? 0 : 65536,
        .data_crc = type == VELO_JREC_WRITE ? 0x12345678 : 0,
        .time_ns = 1700000000123456789ull,
    };

    return r;
}

static void test_rec_roundtrip(void)
{
    static const uint16_t types[] = {
        VELO_JREC_WRITE, VELO_JREC_ZERO, VELO_JREC_WRAP,
    };
    uint8_t buf[VELO_JREC_HDR_SIZE];
    VeloJRec r, out;
    const char *why;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(types); i++) {
        r = sample_rec(types[i]);
        velo_jrec_encode(buf, &r);
        g_assert_cmpuint(velo_get32(buf), ==, VELO_JREC_MAGIC);
        g_assert_true(velo_jrec_decode(buf, 10ull << 30, &out, &why));
        g_assert_cmpuint(out.type, ==, r.type);
        g_assert_cmpuint(out.epoch, ==, r.epoch);
        g_assert_cmpuint(out.seq, ==, r.seq);
        g_assert_cmpuint(out.offset, ==, r.offset);
        g_assert_cmpuint(out.length, ==, r.length);
        g_assert_cmpuint(out.data_crc, ==, r.data_crc);
        g_assert_cmpuint(out.time_ns, ==, r.time_ns);
    }
    r = sample_rec(VELO_JREC_WRITE);
    g_assert_cmpuint(velo_jrec_data_len(&r), ==, 65536);
    r = sample_rec(VELO_JREC_ZERO);
    g_assert_cmpuint(velo_jrec_data_len(&r), ==, 0);
    r = sample_rec(VELO_JREC_WRAP);
    g_assert_cmpuint(velo_jrec_data_len(&r), ==, 0);

    /* The largest record, ending exactly at the end of the disk. */
    r = sample_rec(VELO_JREC_WRITE);
    r.length = VELO_JREC_MAX_DATA;
    r.offset = (10ull << 30) - VELO_JREC_MAX_DATA;
    r.seq = UINT64_MAX;
    r.epoch = UINT64_MAX;
    velo_jrec_encode(buf, &r);
    g_assert_true(velo_jrec_decode(buf, 10ull << 30, &out, &why));
    g_assert_cmpuint(out.length, ==, VELO_JREC_MAX_DATA);
    g_assert_cmpuint(out.offset, ==, r.offset);
    g_assert_cmpuint(out.seq, ==, UINT64_MAX);
    g_assert_cmpuint(out.epoch, ==, UINT64_MAX);
}

static void rec_refused(const VeloJRec *r, uint64_t disk_size,
                        const char *what)
{
    uint8_t buf[VELO_JREC_HDR_SIZE];
    VeloJRec out;
    const char *why = NULL;

    velo_jrec_encode(buf, r);
    g_assert_false(velo_jrec_decode(buf, disk_size, &out, &why));
    g_assert_nonnull(why);
    g_assert_nonnull(strstr(why, what));
}

static void test_rec_checks(void)
{
    const uint64_t disk = 10ull << 30;
    uint8_t buf[VELO_JREC_HDR_SIZE], good[VELO_JREC_HDR_SIZE];
    VeloJRec r = sample_rec(VELO_JREC_WRITE), out;
    const char *why;
    int bit, i;

    /* Every single-bit flip of the header is caught. */
    velo_jrec_encode(good, &r);
    for (bit = 0; bit < VELO_JREC_HDR_SIZE * 8; bit++) {
        memcpy(buf, good, sizeof(buf));
        buf[bit / 8] ^= 1 << (bit % 8);
        why = NULL;
        g_assert_false(velo_jrec_decode(buf, disk, &out, &why));
        g_assert_nonnull(why);
        if (bit >= 32) {
            g_assert_nonnull(strstr(why, "checksum"));
        } else {
            g_assert_nonnull(strstr(why, "magic"));
        }
    }
    /* So is a wrong magic with a matching CRC, and zeros (unwritten ring). */
    memcpy(buf, good, sizeof(buf));
    velo_put32(buf, VELO_JSB_MAGIC >> 32);
    velo_put32(buf + 60, velo_cache_crc(buf, 60));
    g_assert_false(velo_jrec_decode(buf, disk, &out, &why));
    g_assert_nonnull(strstr(why, "magic"));
    memset(buf, 0, sizeof(buf));
    g_assert_false(velo_jrec_decode(buf, disk, &out, &why));
    /* A superblock is not a record. */
    {
        uint8_t sbuf[VELO_JSB_SIZE];
        VeloJournalSb sb = sample_sb();

        velo_jsb_encode(sbuf, &sb);
        g_assert_false(velo_jrec_decode(sbuf, disk, &out, &why));
    }

    /* Unknown types. */
    for (i = 0; i < 8; i++) {
        if (i == VELO_JREC_WRITE || i == VELO_JREC_ZERO ||
            i == VELO_JREC_WRAP) {
            continue;
        }
        r = sample_rec(VELO_JREC_WRITE);
        r.type = i;
        rec_refused(&r, disk, "type");
    }
    r.type = 0xffff;
    rec_refused(&r, disk, "type");

    for (i = 0; i < 2; i++) {
        uint16_t type = i ? VELO_JREC_ZERO : VELO_JREC_WRITE;

        /* Length 0 and above the maximum. */
        r = sample_rec(type);
        r.length = 0;
        rec_refused(&r, disk, "outside");
        r.length = VELO_JREC_MAX_DATA + 1;
        rec_refused(&r, disk, "outside");
        r.length = UINT32_MAX;
        rec_refused(&r, disk, "outside");

        /* Range outside the disk, including offset + length overflowing. */
        r = sample_rec(type);
        r.offset = disk;
        rec_refused(&r, disk, "outside");
        r.offset = disk + BLK;
        rec_refused(&r, disk, "outside");
        r.offset = disk - r.length + 1;
        rec_refused(&r, disk, "outside");
        r.offset = UINT64_MAX - 10;
        rec_refused(&r, disk, "outside");
        r.offset = UINT64_MAX;
        rec_refused(&r, UINT64_MAX, "outside");
        r.offset = 0;
        rec_refused(&r, r.length - 1, "outside");
        rec_refused(&r, 0, "outside");

        /* ... and just inside. */
        r.offset = disk - r.length;
        velo_jrec_encode(buf, &r);
        g_assert_true(velo_jrec_decode(buf, disk, &out, &why));
        r.offset = 0;
        velo_jrec_encode(buf, &r);
        g_assert_true(velo_jrec_decode(buf, r.length, &out, &why));
        r.offset = UINT64_MAX - r.length;
        velo_jrec_encode(buf, &r);
        g_assert_true(velo_jrec_decode(buf, UINT64_MAX, &out, &why));
    }
}

static void test_rec_data(void)
{
    enum { LEN = 12345 };
    g_autofree uint8_t *data = g_malloc(LEN);
    VeloJRec r = sample_rec(VELO_JREC_WRITE);
    int i;

    for (i = 0; i < LEN; i++) {
        data[i] = i * 31 + 7;
    }
    r.length = LEN;
    r.data_crc = velo_cache_crc(data, LEN);
    g_assert_true(velo_jrec_check_data(&r, data));
    for (i = 0; i < LEN; i += 101) {
        data[i] ^= 0x20;
        g_assert_false(velo_jrec_check_data(&r, data));
        data[i] ^= 0x20;
    }
    data[LEN - 1] ^= 1;
    g_assert_false(velo_jrec_check_data(&r, data));
    data[LEN - 1] ^= 1;
    g_assert_true(velo_jrec_check_data(&r, data));
    r.data_crc ^= 1;
    g_assert_false(velo_jrec_check_data(&r, data));

    /* ZERO and WRAP records carry no data: nothing to check. */
    r = sample_rec(VELO_JREC_ZERO);
    r.data_crc = 0xdeadbeef;
    g_assert_true(velo_jrec_check_data(&r, NULL));
    r = sample_rec(VELO_JREC_WRAP);
    g_assert_true(velo_jrec_check_data(&r, NULL));
}

static void test_rec_size(void)
{
    uint32_t len;

    g_assert_cmpuint(velo_jrec_size(0), ==, BLK);
    g_assert_cmpuint(velo_jrec_size(1), ==, BLK);
    g_assert_cmpuint(velo_jrec_size(BLK - VELO_JREC_HDR_SIZE), ==, BLK);
    g_assert_cmpuint(velo_jrec_size(BLK - VELO_JREC_HDR_SIZE + 1), ==, 2 * BLK);
    g_assert_cmpuint(velo_jrec_size(4096), ==, 4096 + BLK);
    g_assert_cmpuint(velo_jrec_size(VELO_JREC_MAX_DATA), ==,
                     VELO_JREC_MAX_DATA + BLK);
    g_assert_cmpuint(velo_jrec_size(UINT32_MAX), ==,
                     (uint64_t)UINT32_MAX + 1 + BLK);
    for (len = 0; len <= 3 * BLK; len++) {
        uint64_t n = velo_jrec_size(len);

        g_assert_cmpuint(n % BLK, ==, 0);
        g_assert_cmpuint(n, >=, (uint64_t)VELO_JREC_HDR_SIZE + len);
        g_assert_cmpuint(n, <, (uint64_t)VELO_JREC_HDR_SIZE + len + BLK);
    }
    /* The minimum journal holds four of the largest records. */
    g_assert_cmpuint(VELO_JOURNAL_MIN_SIZE - VELO_JRING_START, ==,
                     4 * velo_jrec_size(VELO_JREC_MAX_DATA));
}

/* The ring at its edges, by hand. */
static void test_ring_edges(void)
{
    const uint64_t S = VELO_JRING_START, E = S + 16 * BLK;
    VeloJRing r = { .end = E, .head = S, .tail = S };
    bool wrap;
    uint64_t at;

    /* Empty; a record filling the whole ring would make it look empty. */
    g_assert_cmpuint(velo_jring_used(&r), ==, 0);
    g_assert_cmpuint(velo_jring_reserve(&r, 16 * BLK, &wrap), ==, 0);
    g_assert_cmpuint(velo_jring_reserve(&r, 17 * BLK, &wrap), ==, 0);
    g_assert_cmpuint(r.tail, ==, S);
    at = velo_jring_reserve(&r, 15 * BLK, &wrap);
    g_assert_cmpuint(at, ==, S);
    g_assert_false(wrap);
    g_assert_cmpuint(r.tail, ==, S + 15 * BLK);
    g_assert_cmpuint(velo_jring_used(&r), ==, 15 * BLK);
    g_assert_cmpuint(velo_jring_reserve(&r, BLK, &wrap), ==, 0);

    /* A record ending exactly at the end: the tail goes to the start. */
    r.head = S + 4 * BLK;
    g_assert_cmpuint(velo_jring_cost(&r, BLK), ==, BLK);
    at = velo_jring_reserve(&r, BLK, &wrap);
    g_assert_cmpuint(at, ==, S + 15 * BLK);
    g_assert_false(wrap);
    g_assert_cmpuint(r.tail, ==, S);
    g_assert_cmpuint(velo_jring_used(&r), ==, 12 * BLK);
    g_assert_cmpuint(velo_jring_next(&r, at, BLK), ==, S);

    /* Tail below head: it may come up to one block short of the head. */
    g_assert_cmpuint(velo_jring_reserve(&r, 4 * BLK, &wrap), ==, 0);
    at = velo_jring_reserve(&r, 3 * BLK, &wrap);
    g_assert_cmpuint(at, ==, S);
    g_assert_false(wrap);
    g_assert_cmpuint(velo_jring_used(&r), ==, 15 * BLK);
    g_assert_cmpuint(velo_jring_reserve(&r, BLK, &wrap), ==, 0);

    /* Wrap: the WRAP record at the tail, the record at the start. */
    r.head = S + 8 * BLK;
    r.tail = S + 13 * BLK;
    g_assert_cmpuint(velo_jring_cost(&r, 4 * BLK), ==, 7 * BLK);
    at = velo_jring_reserve(&r, 4 * BLK, &wrap);
    g_assert_cmpuint(at, ==, S);
    g_assert_true(wrap);
    g_assert_cmpuint(r.tail, ==, S + 4 * BLK);
    g_assert_cmpuint(velo_jring_used(&r), ==, 12 * BLK);

    /* Wrap refused when the record would reach the head. */
    r.head = S + 5 * BLK;
    r.tail = S + 13 * BLK;
    g_assert_cmpuint(velo_jring_reserve(&r, 5 * BLK, &wrap), ==, 0);
    g_assert_false(wrap);
    g_assert_cmpuint(r.tail, ==, S + 13 * BLK);
    g_assert_cmpuint(velo_jring_reserve(&r, 6 * BLK, &wrap), ==, 0);
    at = velo_jring_reserve(&r, 4 * BLK, &wrap);
    g_assert_cmpuint(at, ==, S);
    g_assert_true(wrap);
    g_assert_cmpuint(r.tail, ==, S + 4 * BLK);
    g_assert_cmpuint(velo_jring_used(&r), ==, 15 * BLK);

    /* Wrap of an empty ring whose head is near the end. */
    r.head = r.tail = S + 14 * BLK;
    at = velo_jring_reserve(&r, 3 * BLK, &wrap);
    g_assert_cmpuint(at, ==, S);
    g_assert_true(wrap);
    g_assert_cmpuint(velo_jring_used(&r), ==, 5 * BLK);
    r.head = r.tail = S + 15 * BLK;
    at = velo_jring_reserve(&r, BLK, &wrap);
    g_assert_cmpuint(at, ==, S + 15 * BLK);
    g_assert_false(wrap);
    g_assert_cmpuint(r.tail, ==, S);

    g_assert_cmpuint(velo_jring_next(&r, S, BLK), ==, S + BLK);
    g_assert_cmpuint(velo_jring_next(&r, S + 14 * BLK, 2 * BLK), ==, S);
}

/*
 * The model: a FIFO of live records (a WRAP marker owns the bytes from the
 * old tail to the ring end) and a map of which 512-byte blocks they occupy.
 */
typedef struct Live {
    uint64_t off;
    uint64_t size;
    bool wrap;
} Live;

typedef struct Model {
    VeloJRing r;
    GQueue fifo;
    uint8_t *busy;              /* per block of the ring */
    uint64_t nblk;
    uint64_t live_bytes;
} Model;

static uint64_t blk(const Model *m, uint64_t off)
{
    return (off - VELO_JRING_START) / BLK;
}

static bool range_free(const Model *m, uint64_t off, uint64_t size)
{
    uint64_t i;

    if (off < VELO_JRING_START || off + size > m->r.end) {
        return false;
    }
    for (i = blk(m, off); i < blk(m, off + size); i++) {
        if (m->busy[i]) {
            return false;
        }
    }
    return true;
}

static void range_mark(Model *m, uint64_t off, uint64_t size, uint8_t v)
{
    uint64_t i;

    for (i = blk(m, off); i < blk(m, off + size); i++) {
        g_assert_cmpuint(m->busy[i], ==, !v);
        m->busy[i] = v;
    }
}

static void model_push(Model *m, uint64_t off, uint64_t size, bool wrap)
{
    Live *l = g_new(Live, 1);

    l->off = off;
    l->size = size;
    l->wrap = wrap;
    g_queue_push_tail(&m->fifo, l);
    range_mark(m, off, size, 1);
    m->live_bytes += size;
}

/*
 * Whether a record may go at @off with @size, the tail then at @next: its
 * blocks free and, the ring never looking empty while it holds records,
 * the new tail not on a live record (which could only be the head).
 * @wrap_at/@wrap_size: the WRAP marker's bytes, also free, also placed.
 */
static bool placement_ok(Model *m, uint64_t off, uint64_t size, uint64_t next,
                         uint64_t wrap_at, uint64_t wrap_size)
{
    bool ok = false;

    if (wrap_size) {
        if (!range_free(m, wrap_at, wrap_size)) {
            return false;
        }
        range_mark(m, wrap_at, wrap_size, 1);
    }
    if (range_free(m, off, size)) {
        range_mark(m, off, size, 1);
        ok = next < m->r.end && !m->busy[blk(m, next)];
        range_mark(m, off, size, 0);
    }
    if (wrap_size) {
        range_mark(m, wrap_at, wrap_size, 0);
    }
    return ok;
}

static void model_check(Model *m)
{
    VeloJRing *r = &m->r;
    Live *oldest = g_queue_peek_head(&m->fifo);

    g_assert_cmpuint(r->head, >=, VELO_JRING_START);
    g_assert_cmpuint(r->head, <, r->end);
    g_assert_cmpuint(r->tail, >=, VELO_JRING_START);
    g_assert_cmpuint(r->tail, <, r->end);
    g_assert_cmpuint(r->head % BLK, ==, 0);
    g_assert_cmpuint(r->tail % BLK, ==, 0);
    g_assert_cmpuint(velo_jring_used(r), ==, m->live_bytes);
    g_assert_cmpuint(velo_jring_used(r), <, r->end - VELO_JRING_START);
    if (oldest) {
        g_assert_cmpuint(r->head, ==, oldest->off);
        g_assert_cmpuint(r->head, !=, r->tail);
        g_assert_true(m->busy[blk(m, r->head)]);
        g_assert_false(m->busy[blk(m, r->tail)]);
    } else {
        g_assert_cmpuint(r->head, ==, r->tail);
        g_assert_cmpuint(m->live_bytes, ==, 0);
    }
}

typedef struct Stats {
    unsigned reserved, refused, wraps, at_end, released;
} Stats;

static void model_reserve(Model *m, uint64_t size, Stats *st)
{
    VeloJRing *r = &m->r;
    VeloJRing before = *r;
    uint64_t used = velo_jring_used(r), cost = velo_jring_cost(r, size);
    uint64_t t = r->tail, at;
    bool here, there, wrap = true;

    /* Where it may go: at the tail, or at the start after a WRAP. */
    here = t + size <= r->end &&
           placement_ok(m, t, size,
                        t + size == r->end ? VELO_JRING_START : t + size,
                        0, 0);
    there = t + size > r->end &&
            placement_ok(m, VELO_JRING_START, size, VELO_JRING_START + size,
                         t, r->end - t);

    at = velo_jring_reserve(r, size, &wrap);
    if (!here && !there) {
        g_assert_cmpuint(at, ==, 0);
        g_assert_false(wrap);
        g_assert_cmpmem(r, sizeof(*r), &before, sizeof(before));
        /* Flow control by used + cost agrees. */
        g_assert_cmpuint(used + cost, >=, r->end - VELO_JRING_START);
        st->refused++;
        return;
    }
    g_assert_cmpuint(at, !=, 0);
    g_assert_cmpuint(at % BLK, ==, 0);
    g_assert_cmpuint(at, >=, VELO_JRING_START);
    g_assert_cmpuint(at + size, <=, r->end);
    g_assert_cmpuint(used + cost, <, r->end - VELO_JRING_START);
    if (here) {
        g_assert_cmpuint(at, ==, t);
        g_assert_false(wrap);
        g_assert_cmpuint(cost, ==, size);
        g_assert_cmpuint(r->tail, ==, velo_jring_next(r, at, size));
        if (at + size == r->end) {
            st->at_end++;
        }
    } else {
        g_assert_cmpuint(at, ==, VELO_JRING_START);
        g_assert_true(wrap);
        g_assert_cmpuint(cost, ==, (r->end - t) + size);
        g_assert_cmpuint(r->tail, ==, VELO_JRING_START + size);
        /* The WRAP marker: the bytes from the old tail to the end. */
        model_push(m, t, r->end - t, true);
        st->wraps++;
    }
    model_push(m, at, size, false);
    g_assert_cmpuint(velo_jring_used(r), ==, used + cost);
    st->reserved++;
}

static void model_release(Model *m, Stats *st)
{
    Live *l = g_queue_pop_head(&m->fifo);

    if (!l) {
        return;
    }
    g_assert_cmpuint(m->r.head, ==, l->off);
    range_mark(m, l->off, l->size, 0);
    m->live_bytes -= l->size;
    if (l->wrap) {
        /* A drain reading the WRAP record goes on at the start. */
        g_assert_cmpuint(l->off + l->size, ==, m->r.end);
        m->r.head = VELO_JRING_START;
    } else {
        m->r.head = velo_jring_next(&m->r, l->off, l->size);
    }
    st->released++;
    g_free(l);
}

static uint64_t random_size(GRand *g, uint64_t cap)
{
    uint32_t max = MIN(VELO_JREC_MAX_DATA, cap);

    switch (g_rand_int_range(g, 0, 8)) {
    case 0:
        return velo_jrec_size(0);                           /* ZERO */
    case 1:
    case 2:
    case 3:
        return velo_jrec_size(g_rand_int_range(g, 1, 4097));
    case 4:
    case 5:
        return velo_jrec_size(g_rand_int_range(g, 1, 65537));
    case 6:
        return velo_jrec_size(g_rand_int_range(g, 1, max + 1));
    default:
        return velo_jrec_size(VELO_JREC_MAX_DATA);
    }
}

static void run_model(uint64_t end, uint64_t head, guint32 seed,
                      unsigned steps, unsigned reserve_pct, Stats *st)
{
    GRand *g = g_rand_new_with_seed(seed);
    Model m = { .r = { .end = end, .head = head, .tail = head } };
    unsigned i;
    Live *l;

    g_queue_init(&m.fifo);
    m.nblk = (end - VELO_JRING_START) / BLK;
    m.busy = g_malloc0(m.nblk);
    memset(st, 0, sizeof(*st));
    model_check(&m);
    for (i = 0; i < steps; i++) {
        if ((unsigned)g_rand_int_range(g, 0, 100) < reserve_pct) {
            model_reserve(&m, random_size(g, end - VELO_JRING_START), st);
        } else {
            model_release(&m, st);
        }
        model_check(&m);
    }
    /* Drain it all: empty again, head == tail. */
    while (!g_queue_is_empty(&m.fifo)) {
        model_release(&m, st);
        model_check(&m);
    }
    g_assert_cmpuint(m.r.head, ==, m.r.tail);
    while ((l = g_queue_pop_head(&m.fifo))) {
        g_free(l);
    }
    g_free(m.busy);
    g_rand_free(g);
}

static void test_ring_model(void)
{
    const uint64_t S = VELO_JRING_START, M = VELO_JOURNAL_MIN_SIZE;
    struct {
        uint64_t end, head;
        unsigned reserve_pct;
    } cfg[] = {
        { M, S, 60 },
        { M, S, 50 },
        { M, M - BLK, 70 },
        { M + 13 * BLK, S + 1000 * BLK, 55 },
        { 2 * M, S, 65 },
        /* Small rings (below the superblock's minimum): wraps galore. */
        { S + 64 * BLK, S, 55 },
        { S + 37 * BLK, S + 36 * BLK, 60 },
        { S + 300 * BLK, S + 123 * BLK, 50 },
    };
    unsigned wraps = 0, at_end = 0;
    size_t i;
    guint32 seed;

    for (i = 0; i < G_N_ELEMENTS(cfg); i++) {
        for (seed = 1; seed <= 3; seed++) {
            Stats st;

            run_model(cfg[i].end, cfg[i].head, seed * 1000 + i, 20000,
                      cfg[i].reserve_pct, &st);
            if (g_test_verbose()) {
                g_test_message("end %" G_GUINT64_FORMAT " seed %u: %u reserved,"
                               " %u refused, %u wraps, %u at end, %u released",
                               cfg[i].end, seed, st.reserved, st.refused,
                               st.wraps, st.at_end, st.released);
            }
            g_assert_cmpuint(st.reserved, >, 1000);
            g_assert_cmpuint(st.refused, >, 0);
            wraps += st.wraps;
            at_end += st.at_end;
        }
    }
    /* The interesting paths were taken. */
    g_assert_cmpuint(wraps, >, 100);
    g_assert_cmpuint(at_end, >, 10);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/journal/sb/roundtrip", test_sb_roundtrip);
    g_test_add_func("/journal/sb/checks", test_sb_checks);
    g_test_add_func("/journal/sb/pick", test_sb_pick);
    g_test_add_func("/journal/rec/roundtrip", test_rec_roundtrip);
    g_test_add_func("/journal/rec/checks", test_rec_checks);
    g_test_add_func("/journal/rec/data", test_rec_data);
    g_test_add_func("/journal/rec/size", test_rec_size);
    g_test_add_func("/journal/ring/edges", test_ring_edges);
    g_test_add_func("/journal/ring/model", test_ring_model);
    return g_test_run();
}
