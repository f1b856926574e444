/*
 * Unit tests for the Velo cache file format (block/cachefmt.c): header
 * round trip and corruption, layout, and index entries that reject
 * flipped bits and entries copied from another extent.
 */
#include <string.h>
#include "cachefmt.h"
#include "extmap.h"

static void test_header(void)
{
    uint8_t id[16], buf[VELO_CACHE_HDR_SIZE];
    VeloCacheHdr h, out;
    const char *why;
    int i;

    memset(id, 7, sizeof(id));
    velo_cache_hdr_init(&h, (1ull << 30) + 512, 65536, id, "disk0");
    memset(h.mac, 0xa5, sizeof(h.mac));
    g_assert_cmpuint(h.n_extents, ==, 16385);
    g_assert_cmpuint(h.data_offset % VELO_CACHE_DATA_ALIGN, ==, 0);
    g_assert_cmpuint(h.data_offset, >=, 4096 + 16385 * 8);
    velo_cache_hdr_encode(buf, &h);
    g_assert_true(velo_cache_hdr_decode(buf, &out, &why));
    g_assert_cmpstr(out.export_name, ==, "disk0");
    g_assert_cmpuint(out.disk_size, ==, h.disk_size);
    /* The MAC travels, after the bytes it covers. */
    g_assert_cmpmem(out.mac, 16, h.mac, 16);
    g_assert_cmpmem(buf + VELO_CACHE_HDR_MACED, 16, h.mac, 16);
    g_assert_cmpuint(velo_cache_file_size(&out), ==, h.data_offset + 16385ull * 65536);
    g_assert_cmpuint(velo_cache_data_offset(&out, 2), ==, h.data_offset + 2 * 65536);

    /* Any flipped byte in the header is caught. */
    for (i = 0; i < VELO_CACHE_HDR_SIZE; i += 97) {
        buf[i] ^= 0x40;
        g_assert_false(velo_cache_hdr_decode(buf, &out, &why));
        buf[i] ^= 0x40;
    }
    memcpy(buf, "QFI\xfb", 4);
    g_assert_false(velo_cache_hdr_decode(buf, &out, &why));
    g_assert_nonnull(strstr(why, "magic"));
}

static void test_entries(void)
{
    uint8_t e[VELO_CACHE_ENTRY_SIZE];
    unsigned st;
    uint32_t crc;
    int bit;

    velo_cache_entry_encode(e, 42, VELO_EXT_CACHED, 0xdeadbeef);
    g_assert_true(velo_cache_entry_decode(e, 42, &st, &crc));
    g_assert_cmpuint(st, ==, VELO_EXT_CACHED);
    g_assert_cmpuint(crc, ==, 0xdeadbeef);
    /* Copied to another extent: rejected. */
    g_assert_false(velo_cache_entry_decode(e, 43, &st, &crc));
    /* Every single-bit flip is rejected. */
    for (bit = 0; bit < 64; bit++) {
        e[bit / 8] ^= 1 << (bit % 8);
        g_assert_false(velo_cache_entry_decode(e, 42, &st, &crc) &&
                       st == VELO_EXT_CACHED && crc == 0xdeadbeef);
        e[bit / 8] ^= 1 << (bit % 8);
    }
    /* All-zero is UNKNOWN, and UNKNOWN encodes as all-zero. */
    memset(e, 0, sizeof(e));
    g_assert_true(velo_cache_entry_decode(e, 5, &st, &crc));
    g_assert_cmpuint(st, ==, VELO_EXT_UNKNOWN);
    velo_cache_entry_encode(e, 5, VELO_EXT_UNKNOWN, 99);
    g_assert_cmpuint(e[0] | e[3] | e[7], ==, 0);
    e[0] = 9;
    g_assert_false(velo_cache_entry_decode(e, 5, &st, &crc));
}

static void test_crc(void)
{
    uint8_t buf[65536];

    memset(buf, 0, sizeof(buf));
    g_assert_cmpuint(velo_cache_crc(buf, sizeof(buf)), !=, 0);
    g_assert_cmpuint(velo_cache_crc("123456789", 9), ==, 0xe3069283);  /* CRC-32C */
    /* Piecewise equals whole, at every split (covers the 8-byte fast path). */
    {
        uint8_t data[100];
        size_t i;
        for (i = 0; i < sizeof(data); i++) {
            data[i] = i * 7 + 3;
        }
        for (i = 0; i <= sizeof(data); i++) {
            uint32_t c = velo_cache_crc_update(0, data, i);
            c = velo_cache_crc_update(c, data + i, sizeof(data) - i);
            g_assert_cmpuint(c, ==, velo_cache_crc(data, sizeof(data)));
        }
    }
}

/* Bit by bit, from the definition: the reference for every length. */
static uint32_t crc32c_ref(const uint8_t *p, size_t len)
{
    uint32_t c = ~0u;
    size_t i;
    int b;

    for (i = 0; i < len; i++) {
        c ^= p[i];
        for (b = 0; b < 8; b++) {
            c = (c >> 1) ^ ((c & 1) ? 0x82f63b78u : 0);
        }
    }
    return ~c;
}

/* Lengths around the 3 x 2 KiB stretches of the interleaved fast path. */
static void test_crc_lengths(void)
{
    static const size_t lens[] = {
        0, 1, 7, 8, 15, 16, 17, 63, 64, 255, 256, 257, 271, 272, 319, 320,
        335, 511, 512, 513, 767, 1023, 1024, 6143, 6144, 6145, 6151, 6152,
        12287, 12288, 12289, 65536, 65536 + 512, 65599, 1 << 20,
    };
    g_autofree uint8_t *buf = g_malloc((1 << 20) + 16);
    uint32_t seed = 12345;
    size_t i, k;

    for (i = 0; i < (1 << 20) + 16; i++) {
        seed = seed * 1103515245 + 12345;
        buf[i] = seed >> 16;
    }
    g_autofree uint8_t *dst = g_malloc((1 << 20) + 32);

    for (k = 0; k < G_N_ELEMENTS(lens); k++) {
        for (i = 0; i < 3; i++) {       /* unaligned starts too */
            g_assert_cmphex(velo_cache_crc(buf + i, lens[k]), ==,
                            crc32c_ref(buf + i, lens[k]));
            /* The copying CRC: same CRC, an exact copy, nothing beyond. */
            memset(dst, 0xa5, (1 << 20) + 32);
            g_assert_cmphex(velo_cache_crc_copy(0, dst + 1 + i, buf + i,
                                                lens[k]), ==,
                            crc32c_ref(buf + i, lens[k]));
            g_assert_cmpmem(dst + 1 + i, lens[k], buf + i, lens[k]);
            g_assert_cmpuint(dst[i], ==, 0xa5);
            g_assert_cmpuint(dst[1 + i + lens[k]], ==, 0xa5);
        }
    }
    /* Continued from an earlier CRC, like velo_cache_crc_update. */
    g_assert_cmphex(velo_cache_crc_copy(velo_cache_crc(buf, 5000), dst,
                                        buf + 5000, 60536), ==,
                    crc32c_ref(buf, 65536));
    /* Piecewise, with a split inside a stretch. */
    g_assert_cmphex(velo_cache_crc_update(velo_cache_crc(buf, 5000),
                                          buf + 5000, 60536), ==,
                    crc32c_ref(buf, 65536));
}

/* Every initial register and split near the folding's block sizes. */
static void test_crc_splits(void)
{
    uint8_t buf[1100], dst[1100];
    size_t i, cut;

    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = i * 131 + (i >> 3);
    }
    for (cut = 0; cut <= sizeof(buf); cut += (cut < 600 ? 1 : 37)) {
        uint32_t c = velo_cache_crc_copy(0, dst, buf, cut);

        c = velo_cache_crc_update(c, buf + cut, sizeof(buf) - cut);
        g_assert_cmphex(c, ==, crc32c_ref(buf, sizeof(buf)));
        g_assert_cmpmem(dst, cut, buf, cut);
    }
}

/* The tests above, run once with each way this CPU can compute CRC-32C. */
static void test_crc_impl(gconstpointer opaque)
{
    VeloCrcImpl impl = GPOINTER_TO_INT(opaque), saved = velo_cache_crc_impl();

    if (!velo_cache_crc_use(impl)) {
        g_test_skip("this CPU can't run it");
        return;
    }
    test_crc();
    test_crc_lengths();
    test_crc_splits();
    velo_cache_crc_use(saved);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cachefmt/header", test_header);
    g_test_add_func("/cachefmt/entries", test_entries);
    g_test_add_func("/cachefmt/crc", test_crc);
    g_test_add_func("/cachefmt/crc-lengths", test_crc_lengths);
    g_test_add_func("/cachefmt/crc-splits", test_crc_splits);
    g_test_add_data_func("/cachefmt/crc-impl/vpclmul",
                         GINT_TO_POINTER(VELO_CRC_VPCLMUL), test_crc_impl);
    g_test_add_data_func("/cachefmt/crc-impl/sse42",
                         GINT_TO_POINTER(VELO_CRC_SSE42), test_crc_impl);
    g_test_add_data_func("/cachefmt/crc-impl/table",
                         GINT_TO_POINTER(VELO_CRC_TABLE), test_crc_impl);
    return g_test_run();
}
