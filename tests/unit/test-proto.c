/*
 * Unit tests for the Velo protocol codec (block/proto.c): round trips of
 * every message, and rejection of every malformed frame a hostile peer
 * could send.
 */
#include <errno.h>
#include <string.h>
#include "proto.h"

static void test_hdr_roundtrip(void)
{
    uint8_t buf[VELO_HDR_SIZE];
    VeloHdr in = { .type = VELO_MSG_READ, .flags = 0, .handle = 0x1122334455667788ull,
                   .length = 16, .status = 0 };
    VeloHdr out;
    const char *why = NULL;

    velo_hdr_encode(buf, &in);
    g_assert_cmpuint(buf[0], ==, 'V');
    g_assert_true(velo_hdr_decode(buf, 1024, &out, &why));
    g_assert_cmpuint(out.type, ==, in.type);
    g_assert_cmpuint(out.handle, ==, in.handle);
    g_assert_cmpuint(out.length, ==, 16);
}

static void test_hdr_rejects(void)
{
    uint8_t buf[VELO_HDR_SIZE];
    VeloHdr h = { .type = VELO_MSG_READ_REPLY, .length = 4097 };
    VeloHdr out;
    const char *why = NULL;

    velo_hdr_encode(buf, &h);
    g_assert_false(velo_hdr_decode(buf, 4096, &out, &why));
    g_assert_nonnull(strstr(why, "longer"));

    h.length = 1;
    h.type = 0;
    velo_hdr_encode(buf, &h);
    g_assert_false(velo_hdr_decode(buf, 4096, &out, &why));
    h.type = VELO_MSG__MAX;
    velo_hdr_encode(buf, &h);
    g_assert_false(velo_hdr_decode(buf, 4096, &out, &why));

    h.type = VELO_MSG_PONG;
    velo_hdr_encode(buf, &h);
    buf[0] ^= 1;
    g_assert_false(velo_hdr_decode(buf, 4096, &out, &why));
    g_assert_nonnull(strstr(why, "magic"));
}

static void test_hello(void)
{
    uint8_t buf[18 + VELO_MAX_STRING];
    VeloHello in = { .version_min = 1, .version_max = 3, .features = VELO_F_ZSTD };
    VeloHello out;
    const char *why;
    size_t n;

    strcpy(in.name, "disk0");
    n = velo_hello_encode(buf, &in);
    g_assert_cmpuint(n, ==, 23);
    g_assert_true(velo_hello_decode(buf, n, &out, &why));
    g_assert_cmpstr(out.name, ==, "disk0");
    g_assert_cmpuint(out.features, ==, VELO_F_ZSTD);

    /* Length mismatches, empty and NUL-bearing names. */
    g_assert_false(velo_hello_decode(buf, n - 1, &out, &why));
    g_assert_false(velo_hello_decode(buf, n + 1, &out, &why));
    g_assert_false(velo_hello_decode(buf, 10, &out, &why));
    buf[20] = 0;
    g_assert_false(velo_hello_decode(buf, n, &out, &why));
    g_assert_nonnull(strstr(why, "NUL"));
    buf[16] = 0; buf[17] = 0;
    g_assert_false(velo_hello_decode(buf, 18, &out, &why));
    buf[16] = 0x10; buf[17] = 0x01;     /* 4097 */
    g_assert_false(velo_hello_decode(buf, 18 + 4097, &out, &why));

    g_assert_cmpuint(velo_pick_version(1, 5), ==, 1);
    g_assert_cmpuint(velo_pick_version(2, 5), ==, 0);
}

static void test_hello_reply(void)
{
    uint8_t buf[VELO_HELLO_REPLY_SIZE];
    VeloHelloReply in = {
        .version = 1, .extent_size = 65536, .features = 0,
        .disk_size = 1ull << 30, .max_payload = (4u << 20) + 4096,
        .max_inflight = 64, .export_flags = VELO_EXPORT_READ_ONLY,
    };
    VeloHelloReply out;
    const char *why;

    memset(in.disk_id, 0xa5, sizeof(in.disk_id));
    velo_hello_reply_encode(buf, &in);
    g_assert_true(velo_hello_reply_decode(buf, sizeof(buf), 0, &out, &why));
    g_assert_cmpuint(out.disk_size, ==, in.disk_size);
    g_assert_cmpmem(out.disk_id, 16, in.disk_id, 16);

    g_assert_false(velo_hello_reply_decode(buf, sizeof(buf) - 1, 0, &out, &why));

    in.features = VELO_F_WRITE;       /* not offered */
    velo_hello_reply_encode(buf, &in);
    g_assert_false(velo_hello_reply_decode(buf, sizeof(buf), 0, &out, &why));
    g_assert_true(velo_hello_reply_decode(buf, sizeof(buf), VELO_F_WRITE, &out, &why));
    in.features = 0;

    in.extent_size = 65535;
    velo_hello_reply_encode(buf, &in);
    g_assert_false(velo_hello_reply_decode(buf, sizeof(buf), 0, &out, &why));
    in.extent_size = 8u << 20;
    velo_hello_reply_encode(buf, &in);
    g_assert_false(velo_hello_reply_decode(buf, sizeof(buf), 0, &out, &why));
    in.extent_size = 65536;

    in.max_payload = 1000;
    velo_hello_reply_encode(buf, &in);
    g_assert_false(velo_hello_reply_decode(buf, sizeof(buf), 0, &out, &why));
    in.max_payload = 128u << 20;
    velo_hello_reply_encode(buf, &in);
    g_assert_false(velo_hello_reply_decode(buf, sizeof(buf), 0, &out, &why));
    in.max_payload = 1u << 20;

    in.version = 2;
    velo_hello_reply_encode(buf, &in);
    g_assert_false(velo_hello_reply_decode(buf, sizeof(buf), 0, &out, &why));
    in.version = 1;

    in.disk_size = UINT64_MAX;
    velo_hello_reply_encode(buf, &in);
    g_assert_false(velo_hello_reply_decode(buf, sizeof(buf), 0, &out, &why));

    /* 2^62 bytes in 4 KiB extents: too many extents for a client to track. */
    in.disk_size = 1ull << 62;
    in.extent_size = 4096;
    velo_hello_reply_encode(buf, &in);
    g_assert_false(velo_hello_reply_decode(buf, sizeof(buf), 0, &out, &why));
    g_assert_nonnull(strstr(why, "too many extents"));
}

static void test_error(void)
{
    uint8_t buf[2 + VELO_MAX_STRING];
    char *msg = NULL;
    const char *why;
    size_t n = velo_error_encode(buf, "no export named 'x'");

    g_assert_true(velo_error_decode(buf, n, &msg, &why));
    g_assert_cmpstr(msg, ==, "no export named 'x'");
    g_free(msg);
    buf[3] = '\n';          /* control characters are neutralised */
    g_assert_true(velo_error_decode(buf, n, &msg, &why));
    g_assert_cmpint(msg[1], ==, '?');
    g_free(msg);
    g_assert_false(velo_error_decode(buf, n + 3, &msg, &why));
    g_assert_false(velo_error_decode(buf, 1, &msg, &why));
    g_assert_cmpint(velo_status_to_errno(VELO_E_NOENT), ==, -ENOENT);
    g_assert_cmpstr(velo_status_name(VELO_E_BUSY), ==, "BUSY");
    g_assert_cmpstr(velo_status_name(999), ==, "?");
}

static void test_read_req(void)
{
    uint8_t buf[16];
    VeloRange r = { .offset = 65536, .length = 131072 }, out;
    const char *why;
    uint64_t disk = 1 << 20;

    velo_read_req_encode(buf, &r);
    g_assert_true(velo_read_req_decode(buf, 16, disk, 65536, 1 << 20, &out, &why));
    g_assert_cmpuint(out.offset, ==, 65536);
    g_assert_cmpuint(out.length, ==, 131072);

    r.offset = 4096;                    /* misaligned */
    velo_read_req_encode(buf, &r);
    g_assert_false(velo_read_req_decode(buf, 16, disk, 65536, 1 << 20, &out, &why));
    r.offset = disk - 65536; r.length = 131072;   /* past the end */
    velo_read_req_encode(buf, &r);
    g_assert_false(velo_read_req_decode(buf, 16, disk, 65536, 1 << 20, &out, &why));
    r.offset = 0; r.length = 0;
    velo_read_req_encode(buf, &r);
    g_assert_false(velo_read_req_decode(buf, 16, disk, 65536, 1 << 20, &out, &why));
    r.offset = 0; r.length = 1 << 20;   /* longer than max-payload allows */
    velo_read_req_encode(buf, &r);
    g_assert_false(velo_read_req_decode(buf, 16, disk, 65536, 1 << 20, &out, &why));
    /* A short final extent is fine at the end of an odd-sized disk. */
    r.offset = 65536; r.length = 1000;
    velo_read_req_encode(buf, &r);
    g_assert_true(velo_read_req_decode(buf, 16, 65536 + 1000, 65536, 1 << 20, &out, &why));
    g_assert_false(velo_read_req_decode(buf, 16, 65536 + 2000, 65536, 1 << 20, &out, &why));
    g_assert_false(velo_read_req_decode(buf, 15, disk, 65536, 1 << 20, &out, &why));

    /* Flags: NO_REF and BACKGROUND travel; unknown bits are refused. */
    r.offset = 0; r.length = 65536; r.flags = VELO_READ_NO_REF;
    velo_read_req_encode(buf, &r);
    g_assert_true(velo_read_req_decode(buf, 16, disk, 65536, 1 << 20, &out, &why));
    g_assert_cmpuint(out.flags, ==, VELO_READ_NO_REF);
    r.flags = VELO_READ_NO_REF | VELO_READ_BACKGROUND;
    velo_read_req_encode(buf, &r);
    g_assert_true(velo_read_req_decode(buf, 16, disk, 65536, 1 << 20, &out, &why));
    g_assert_cmpuint(out.flags, ==, VELO_READ_NO_REF | VELO_READ_BACKGROUND);
    /* Added to an encoded request: the range and the other flags stay. */
    r.offset = 131072; r.length = 65536; r.flags = VELO_READ_NO_REF;
    velo_read_req_encode(buf, &r);
    velo_read_req_add_flags(buf, VELO_READ_BACKGROUND);
    g_assert_true(velo_read_req_decode(buf, 16, disk, 65536, 1 << 20, &out, &why));
    g_assert_cmpuint(out.offset, ==, 131072);
    g_assert_cmpuint(out.length, ==, 65536);
    g_assert_cmpuint(out.flags, ==, VELO_READ_NO_REF | VELO_READ_BACKGROUND);
    r.offset = 0; r.flags = 0x80;
    velo_read_req_encode(buf, &r);
    g_assert_false(velo_read_req_decode(buf, 16, disk, 65536, 1 << 20, &out, &why));
    g_assert_nonnull(strstr(why, "flags"));
}

static void test_hello_store_id(void)
{
    uint8_t buf[18 + VELO_MAX_STRING + VELO_STORE_ID_SIZE];
    VeloHello in = { .version_min = 1, .version_max = 1,
                     .features = VELO_F_HASH, .name = "disk0" }, out;
    const char *why;
    size_t n;

    memset(in.store_id, 0xa5, sizeof(in.store_id));
    n = velo_hello_encode(buf, &in);
    g_assert_cmpuint(n, ==, 18 + 5 + VELO_STORE_ID_SIZE);
    g_assert_true(velo_hello_decode(buf, n, &out, &why));
    g_assert_cmpmem(out.store_id, VELO_STORE_ID_SIZE, in.store_id,
                    VELO_STORE_ID_SIZE);
    /* With HASH the store id must be there, without it it must not. */
    g_assert_false(velo_hello_decode(buf, n - 1, &out, &why));
    in.features = 0;
    n = velo_hello_encode(buf, &in);
    g_assert_true(velo_hello_decode(buf, n, &out, &why));
    g_assert_false(velo_hello_decode(buf, n + VELO_STORE_ID_SIZE, &out, &why));
}

static void test_map(void)
{
    VeloMapEntry e[3] = {
        { 0, 4096, VELO_MAP_DATA }, { 4096, 8192, VELO_MAP_ZERO },
        { 12288, 4096, VELO_MAP_HOLE },
    };
    VeloRange req = { .offset = 0, .length = 1 << 20 };
    uint8_t buf[4 + 3 * VELO_MAP_ENTRY_SIZE];
    VeloMapEntry *out = NULL;
    uint32_t n;
    const char *why;
    size_t len = velo_map_reply_encode(buf, e, 3);

    g_assert_true(velo_map_reply_decode(buf, len, &req, &out, &n, &why));
    g_assert_cmpuint(n, ==, 3);
    g_assert_cmpuint(out[2].kind, ==, VELO_MAP_HOLE);
    g_free(out);

    g_assert_false(velo_map_reply_decode(buf, len - 1, &req, &out, &n, &why));
    e[1].offset = 5000;                 /* gap */
    len = velo_map_reply_encode(buf, e, 3);
    g_assert_false(velo_map_reply_decode(buf, len, &req, &out, &n, &why));
    e[1].offset = 4096;
    e[2].kind = 7;                      /* unknown kind */
    len = velo_map_reply_encode(buf, e, 3);
    g_assert_false(velo_map_reply_decode(buf, len, &req, &out, &n, &why));
    e[2].kind = VELO_MAP_DATA;
    e[2].length = 1 << 20;              /* beyond the request */
    len = velo_map_reply_encode(buf, e, 3);
    g_assert_false(velo_map_reply_decode(buf, len, &req, &out, &n, &why));
    len = velo_map_reply_encode(buf, e, 0);
    g_assert_false(velo_map_reply_decode(buf, len, &req, &out, &n, &why));
    /* A count that claims more entries than the frame holds. */
    len = velo_map_reply_encode(buf, e, 1);
    buf[3] = 200;
    g_assert_false(velo_map_reply_decode(buf, len, &req, &out, &n, &why));
    g_assert_cmpuint(velo_map_max_entries(4 + 24 * 10), ==, 10);
}

static void test_chunks(void)
{
    uint8_t buf[3 * VELO_CHUNK_HDR_SIZE + 8192];
    VeloRange req = { .offset = 65536, .length = 12288 };
    uint64_t next;
    size_t pos, len = 0;
    VeloChunk c;
    const char *why;
    int n = 0;

    velo_chunk_hdr_encode(buf, 65536, 4096, VELO_ENC_RAW, 4096);
    memset(buf + VELO_CHUNK_HDR_SIZE, 0x5a, 4096);
    len = VELO_CHUNK_HDR_SIZE + 4096;
    velo_chunk_hdr_encode(buf + len, 69632, 4096, VELO_ENC_ZERO, 0);
    len += VELO_CHUNK_HDR_SIZE;
    velo_chunk_hdr_encode(buf + len, 73728, 4096, VELO_ENC_RAW, 4096);
    len += VELO_CHUNK_HDR_SIZE + 4096;

    pos = 0; next = req.offset;
    while (velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why) > 0) {
        n++;
    }
    g_assert_cmpint(n, ==, 3);
    pos = 0; next = req.offset;
    while ((n = velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why)) > 0) {
    }
    g_assert_cmpint(n, ==, 0);

    /* Truncated frame: the last chunk's payload is cut short. */
    pos = 0; next = req.offset;
    while ((n = velo_chunk_next(buf, len - 1, &pos, &req, &next, 0, &c, &why)) > 0) {
    }
    g_assert_cmpint(n, ==, -1);

    /* Chunks that stop before the request ends. */
    pos = 0; next = req.offset;
    while ((n = velo_chunk_next(buf, VELO_CHUNK_HDR_SIZE + 4096, &pos, &req, &next, 0, &c, &why)) > 0) {
    }
    g_assert_cmpint(n, ==, -1);
    g_assert_nonnull(strstr(why, "end before"));

    /* Wrong offset, unknown encoding, ZSTD not negotiated, RAW size lies. */
    velo_chunk_hdr_encode(buf, 0, 4096, VELO_ENC_RAW, 4096);
    pos = 0; next = req.offset;
    g_assert_cmpint(velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why), ==, -1);
    velo_chunk_hdr_encode(buf, 65536, 4096, 9, 4096);
    pos = 0; next = req.offset;
    g_assert_cmpint(velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why), ==, -1);
    velo_chunk_hdr_encode(buf, 65536, 4096, VELO_ENC_ZSTD, 100);
    pos = 0; next = req.offset;
    g_assert_cmpint(velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why), ==, -1);
    velo_chunk_hdr_encode(buf, 65536, 4096, VELO_ENC_RAW, 4000);
    pos = 0; next = req.offset;
    g_assert_cmpint(velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why), ==, -1);
    velo_chunk_hdr_encode(buf, 65536, 1u << 30, VELO_ENC_ZERO, 0);
    pos = 0; next = req.offset;
    g_assert_cmpint(velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why), ==, -1);
}

/* Random frames must never crash the decoders (a poor man's fuzzer). */
static void test_random_garbage(void)
{
    GRand *r = g_rand_new_with_seed(42);
    uint8_t buf[512];
    int i, j;

    for (i = 0; i < 20000; i++) {
        size_t len = g_rand_int_range(r, 0, sizeof(buf));
        VeloRange req = { .length = g_rand_int_range(r, 1, 1 << 20) };
        VeloHdr h; VeloHello he; VeloHelloReply hr; VeloRange rr;
        VeloMapEntry *e = NULL; uint32_t n; char *msg = NULL;
        VeloChunk c; uint64_t next = 0; size_t pos = 0;
        const char *why;

        for (j = 0; j < (int)len; j++) {
            buf[j] = g_rand_int(r);
        }
        if (len >= VELO_HDR_SIZE) {
            velo_hdr_decode(buf, 4096, &h, &why);
        }
        velo_hello_decode(buf, len, &he, &why);
        velo_hello_reply_decode(buf, len, VELO_F_KNOWN, &hr, &why);
        velo_read_req_decode(buf, len, 1 << 20, 4096, 1 << 20, &rr, &why);
        velo_map_req_decode(buf, len, 1 << 20, &rr, &why);
        if (velo_map_reply_decode(buf, len, &req, &e, &n, &why)) {
            g_free(e);
        }
        if (velo_error_decode(buf, len, &msg, &why)) {
            g_free(msg);
        }
        while (velo_chunk_next(buf, len, &pos, &req, &next, VELO_F_KNOWN, &c, &why) > 0) {
        }
    }
    g_rand_free(r);
}

/* --- writes (feature WRITE) ------------------------------------------- */

static void encode_write(uint8_t *buf, uint64_t epoch, uint64_t seq,
                         uint64_t offset, uint32_t length, uint32_t flags)
{
    VeloWrite w = { .epoch = epoch, .seq = seq, .offset = offset,
                    .length = length, .flags = flags };

    velo_write_req_encode(buf, &w);
}

static void test_write_req(void)
{
    uint8_t buf[VELO_WRITE_HDR_SIZE + 8];
    VeloWrite in = { .epoch = 0x0102030405060708ull, .seq = 0x1112131415161718ull,
                     .offset = 65536, .length = 4096, .flags = 0 }, out;
    const uint64_t disk = 1 << 20;
    const uint32_t maxp = 1 << 20;
    const char *why = NULL;

    /* Round trip, and the wire layout of docs/protocol.rst. */
    velo_write_req_encode(buf, &in);
    g_assert_cmpuint(buf[0], ==, 0x01);
    g_assert_cmpuint(buf[7], ==, 0x08);
    g_assert_cmpuint(buf[8], ==, 0x11);
    g_assert_cmpuint(buf[15], ==, 0x18);
    g_assert_true(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp,
                                        &out, &why));
    g_assert_cmpuint(out.epoch, ==, in.epoch);
    g_assert_cmpuint(out.seq, ==, in.seq);
    g_assert_cmpuint(out.offset, ==, in.offset);
    g_assert_cmpuint(out.length, ==, in.length);
    g_assert_cmpuint(out.flags, ==, 0);
    /* The chunks follow the prefix: a longer payload decodes the same. */
    g_assert_true(velo_write_req_decode(buf, sizeof(buf), disk, maxp, &out, &why));

    /* Short payloads, down to empty. */
    for (size_t n = 0; n < VELO_WRITE_HDR_SIZE; n++) {
        why = NULL;
        g_assert_false(velo_write_req_decode(buf, n, disk, maxp, &out, &why));
        g_assert_nonnull(strstr(why, "short"));
    }

    /* Zero epoch, zero seq. */
    encode_write(buf, 0, 1, 0, 4096, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    g_assert_nonnull(strstr(why, "zero"));
    encode_write(buf, 1, 0, 0, 4096, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    g_assert_nonnull(strstr(why, "zero"));
    /* Epoch 2^64-1 is FLUSH's query value: refused; 2^64-2 and any seq are fine. */
    encode_write(buf, UINT64_MAX, 1, 0, 4096, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    g_assert_nonnull(strstr(why, "2^64-1"));
    encode_write(buf, UINT64_MAX - 1, UINT64_MAX, 0, 4096, 0);
    g_assert_true(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    g_assert_cmpuint(out.epoch, ==, UINT64_MAX - 1);
    g_assert_cmpuint(out.seq, ==, UINT64_MAX);

    /* Unknown flags, any bit. */
    for (int bit = 0; bit < 32; bit++) {
        encode_write(buf, 1, 1, 0, 4096, 1u << bit);
        g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
        g_assert_nonnull(strstr(why, "flags"));
    }

    /* Length 0, and the max-payload bound (exactly at it, one over). */
    encode_write(buf, 1, 1, 0, 0, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    g_assert_nonnull(strstr(why, "length"));
    encode_write(buf, 1, 1, 0, maxp - VELO_WRITE_OVERHEAD, 0);
    g_assert_true(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    encode_write(buf, 1, 1, 0, maxp - VELO_WRITE_OVERHEAD + 1, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    g_assert_nonnull(strstr(why, "length"));
    encode_write(buf, 1, 1, 0, UINT32_MAX, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, UINT64_MAX,
                                         VELO_MAX_PAYLOAD_LIMIT, &out, &why));
    /* A max-payload below the overhead never underflows into a huge limit. */
    encode_write(buf, 1, 1, 0, 1, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk,
                                         VELO_WRITE_OVERHEAD - 1, &out, &why));
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk,
                                         VELO_WRITE_OVERHEAD, &out, &why));
    g_assert_true(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk,
                                        VELO_WRITE_OVERHEAD + 1, &out, &why));

    /* The range: ending exactly at the end of the disk is fine, past it not. */
    encode_write(buf, 1, 1, disk - 4096, 4096, 0);
    g_assert_true(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    encode_write(buf, 1, 1, disk - 4095, 4096, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    g_assert_nonnull(strstr(why, "end of the disk"));
    encode_write(buf, 1, 1, disk, 1, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    encode_write(buf, 1, 1, disk + 1, 1, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    /* Unaligned writes are allowed (journal records are byte ranges). */
    encode_write(buf, 1, 1, 1, 1, 0);
    g_assert_true(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    /* offset + length wrapping around 2^64 must not pass as "inside". */
    encode_write(buf, 1, 1, UINT64_MAX - 10, 4096, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, disk, maxp, &out, &why));
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, UINT64_MAX - 100,
                                         maxp, &out, &why));
    encode_write(buf, 1, 1, UINT64_MAX, 1, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, UINT64_MAX - 1,
                                         maxp, &out, &why));
    /* ... and the very last byte of a 2^64-1 byte range still is. */
    encode_write(buf, 1, 1, UINT64_MAX - 1, 1, 0);
    g_assert_true(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, UINT64_MAX,
                                        maxp, &out, &why));
    /* Empty disk: nothing fits. */
    encode_write(buf, 1, 1, 0, 1, 0);
    g_assert_false(velo_write_req_decode(buf, VELO_WRITE_HDR_SIZE, 0, maxp, &out, &why));
}

/* A WRITE's chunks are checked with velo_chunk_next() against its range. */
static void test_write_chunks(void)
{
    uint8_t buf[VELO_WRITE_HDR_SIZE + 2 * VELO_CHUNK_HDR_SIZE + 4096];
    VeloWrite w;
    VeloRange req;
    VeloChunk c;
    uint64_t next;
    size_t pos, len;
    const char *why;
    int n;

    encode_write(buf, 3, 7, 8192, 8192, 0);
    len = VELO_WRITE_HDR_SIZE;
    velo_chunk_hdr_encode(buf + len, 8192, 4096, VELO_ENC_RAW, 4096);
    memset(buf + len + VELO_CHUNK_HDR_SIZE, 0xab, 4096);
    len += VELO_CHUNK_HDR_SIZE + 4096;
    velo_chunk_hdr_encode(buf + len, 12288, 4096, VELO_ENC_ZERO, 0);
    len += VELO_CHUNK_HDR_SIZE;

    g_assert_true(velo_write_req_decode(buf, len, 1 << 20, 1 << 20, &w, &why));
    req = (VeloRange) { .offset = w.offset, .length = w.length };
    pos = VELO_WRITE_HDR_SIZE; next = req.offset;
    g_assert_cmpint(velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why), ==, 1);
    g_assert_cmpuint(c.encoding, ==, VELO_ENC_RAW);
    g_assert_cmpuint(c.payload[0], ==, 0xab);
    g_assert_cmpint(velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why), ==, 1);
    g_assert_cmpuint(c.encoding, ==, VELO_ENC_ZERO);
    g_assert_cmpint(velo_chunk_next(buf, len, &pos, &req, &next, 0, &c, &why), ==, 0);

    /* A REF chunk is refused when HASH is not in the features passed. */
    velo_chunk_hdr_encode(buf + VELO_WRITE_HDR_SIZE, 8192, 4096, VELO_ENC_REF, 32);
    pos = VELO_WRITE_HDR_SIZE; next = req.offset;
    n = velo_chunk_next(buf, len, &pos, &req, &next, VELO_F_ZSTD | VELO_F_WRITE, &c, &why);
    g_assert_cmpint(n, ==, -1);
    g_assert_nonnull(strstr(why, "REF"));
}

static void test_write_reply(void)
{
    uint8_t buf[VELO_WRITE_REPLY_SIZE + 1];
    VeloWriteReply in = { .result = VELO_WRITE_DUPLICATE, .next_seq = 43 }, out;
    const char *why;

    velo_write_reply_encode(buf, &in);
    g_assert_true(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, 42, &out, &why));
    g_assert_cmpuint(out.result, ==, VELO_WRITE_DUPLICATE);
    g_assert_cmpuint(out.next_seq, ==, 43);
    /* A DUPLICATE may report a next seq well past the write. */
    in.next_seq = 1000;
    velo_write_reply_encode(buf, &in);
    g_assert_true(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, 42, &out, &why));
    g_assert_cmpuint(out.next_seq, ==, 1000);
    in = (VeloWriteReply) { .result = VELO_WRITE_APPLIED, .next_seq = 43 };
    velo_write_reply_encode(buf, &in);
    g_assert_true(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, 42, &out, &why));
    g_assert_cmpuint(out.result, ==, VELO_WRITE_APPLIED);

    /* Wrong sizes. */
    g_assert_false(velo_write_reply_decode(buf, 0, 42, &out, &why));
    g_assert_false(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE - 1, 42, &out, &why));
    g_assert_nonnull(strstr(why, "size"));
    g_assert_false(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE + 1, 42, &out, &why));
    g_assert_nonnull(strstr(why, "size"));

    /* Unknown results. */
    in.result = 2;
    velo_write_reply_encode(buf, &in);
    g_assert_false(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, 42, &out, &why));
    g_assert_nonnull(strstr(why, "result"));
    in.result = UINT32_MAX;
    velo_write_reply_encode(buf, &in);
    g_assert_false(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, 42, &out, &why));

    /* next_seq must move past the write's seq. */
    in.result = VELO_WRITE_APPLIED;
    in.next_seq = 42;
    velo_write_reply_encode(buf, &in);
    g_assert_false(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, 42, &out, &why));
    g_assert_nonnull(strstr(why, "past"));
    in.next_seq = 0;
    velo_write_reply_encode(buf, &in);
    g_assert_false(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, 42, &out, &why));
    in.next_seq = 1;
    velo_write_reply_encode(buf, &in);
    g_assert_false(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, 42, &out, &why));
    /* seq 2^64-1 can never be moved past. */
    in.next_seq = UINT64_MAX;
    velo_write_reply_encode(buf, &in);
    g_assert_false(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, UINT64_MAX,
                                           &out, &why));
    g_assert_true(velo_write_reply_decode(buf, VELO_WRITE_REPLY_SIZE, UINT64_MAX - 1,
                                          &out, &why));
}

static void test_flush(void)
{
    uint8_t buf[VELO_FLUSH_REPLY_SIZE + 1];
    VeloFlushReply in = { .durable_seq = 0x0102030405060708ull, .epoch = 9 }, out;
    uint64_t epoch = 0;
    const char *why;

    /* FLUSH request. */
    velo_flush_req_encode(buf, 0x1122334455667788ull);
    g_assert_cmpuint(buf[0], ==, 0x11);
    g_assert_true(velo_flush_req_decode(buf, VELO_FLUSH_SIZE, &epoch, &why));
    g_assert_cmpuint(epoch, ==, 0x1122334455667788ull);
    /* 2^64-1 asks the state: a valid epoch on the wire. */
    velo_flush_req_encode(buf, UINT64_MAX);
    g_assert_true(velo_flush_req_decode(buf, VELO_FLUSH_SIZE, &epoch, &why));
    g_assert_cmpuint(epoch, ==, UINT64_MAX);
    g_assert_false(velo_flush_req_decode(buf, 0, &epoch, &why));
    g_assert_false(velo_flush_req_decode(buf, VELO_FLUSH_SIZE - 1, &epoch, &why));
    g_assert_nonnull(strstr(why, "size"));
    g_assert_false(velo_flush_req_decode(buf, VELO_FLUSH_SIZE + 1, &epoch, &why));
    g_assert_nonnull(strstr(why, "size"));
    g_assert_false(velo_flush_req_decode(buf, 16, &epoch, &why));
    velo_flush_req_encode(buf, 0);
    g_assert_false(velo_flush_req_decode(buf, VELO_FLUSH_SIZE, &epoch, &why));
    g_assert_nonnull(strstr(why, "zero"));

    /* FLUSH_REPLY. */
    velo_flush_reply_encode(buf, &in);
    g_assert_cmpuint(buf[7], ==, 0x08);
    g_assert_cmpuint(buf[15], ==, 9);
    g_assert_true(velo_flush_reply_decode(buf, VELO_FLUSH_REPLY_SIZE, &out, &why));
    g_assert_cmpuint(out.durable_seq, ==, in.durable_seq);
    g_assert_cmpuint(out.epoch, ==, 9);
    /* Nothing durable yet: durable seq 0 is fine. */
    in = (VeloFlushReply) { 0, 1 };
    velo_flush_reply_encode(buf, &in);
    g_assert_true(velo_flush_reply_decode(buf, VELO_FLUSH_REPLY_SIZE, &out, &why));
    g_assert_cmpuint(out.durable_seq, ==, 0);
    g_assert_false(velo_flush_reply_decode(buf, 0, &out, &why));
    g_assert_false(velo_flush_reply_decode(buf, VELO_FLUSH_REPLY_SIZE - 1, &out, &why));
    g_assert_nonnull(strstr(why, "size"));
    g_assert_false(velo_flush_reply_decode(buf, VELO_FLUSH_REPLY_SIZE + 1, &out, &why));
    g_assert_false(velo_flush_reply_decode(buf, VELO_FLUSH_SIZE, &out, &why));
}

static void test_write_status(void)
{
    g_assert_cmpstr(velo_status_name(VELO_E_SEQ), ==, "SEQ");
    g_assert_cmpstr(velo_status_name(VELO_E_STALE), ==, "STALE");
    g_assert_cmpstr(velo_status_name(VELO_E_PERM), ==, "PERM");
    g_assert_cmpstr(velo_status_name(VELO_E__MAX), ==, "?");
    g_assert_cmpint(velo_status_to_errno(VELO_E_SEQ), ==, -EILSEQ);
    g_assert_cmpint(velo_status_to_errno(VELO_E_STALE), ==, -ESTALE);
    g_assert_cmpint(velo_status_to_errno(VELO_E_PERM), ==, -EPERM);
    g_assert_cmpint(velo_status_to_errno(VELO_OK), ==, 0);
    g_assert_cmpint(velo_status_to_errno(VELO_E__MAX), ==, -EIO);
    g_assert_cmpstr(velo_msg_name(VELO_MSG_WRITE), ==, "WRITE");
    g_assert_cmpstr(velo_msg_name(VELO_MSG_WRITE_REPLY), ==, "WRITE_REPLY");
    g_assert_cmpstr(velo_msg_name(VELO_MSG_FLUSH), ==, "FLUSH");
    g_assert_cmpstr(velo_msg_name(VELO_MSG_FLUSH_REPLY), ==, "FLUSH_REPLY");
    g_assert_true(VELO_F_KNOWN & VELO_F_WRITE);
    g_assert_cmpuint(VELO_F_WRITE, ==, 4);
}

/* Random payloads must never crash the write decoders. */
static void test_write_garbage(void)
{
    GRand *r = g_rand_new_with_seed(4242);
    uint8_t buf[128];

    for (int i = 0; i < 20000; i++) {
        size_t len = g_rand_int_range(r, 0, sizeof(buf));
        uint64_t disk = g_rand_boolean(r) ? UINT64_MAX : g_rand_int(r);
        uint32_t maxp = g_rand_int_range(r, 0, 1 << 20);
        VeloWrite w; VeloWriteReply wr; VeloFlushReply fr; uint64_t e;
        const char *why;

        for (size_t j = 0; j < len; j++) {
            buf[j] = g_rand_int(r);
        }
        if (velo_write_req_decode(buf, len, disk, maxp, &w, &why)) {
            g_assert_cmpuint(w.epoch, !=, 0);
            g_assert_cmpuint(w.seq, !=, 0);
            g_assert_cmpuint(w.flags, ==, 0);
            g_assert_cmpuint(w.length, >, 0);
            g_assert_cmpuint(w.length, <=, maxp - VELO_WRITE_OVERHEAD);
            g_assert_cmpuint(w.offset, <=, disk);
            g_assert_cmpuint(w.length, <=, disk - w.offset);
        }
        if (velo_write_reply_decode(buf, len, g_rand_int(r), &wr, &why)) {
            g_assert_cmpuint(wr.result, <=, VELO_WRITE_DUPLICATE);
        }
        velo_flush_req_decode(buf, len, &e, &why);
        velo_flush_reply_decode(buf, len, &fr, &why);
    }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/proto/hdr/roundtrip", test_hdr_roundtrip);
    g_test_add_func("/proto/hdr/rejects", test_hdr_rejects);
    g_test_add_func("/proto/hello", test_hello);
    g_test_add_func("/proto/hello-reply", test_hello_reply);
    g_test_add_func("/proto/error", test_error);
    g_test_add_func("/proto/read-req", test_read_req);
    g_test_add_func("/proto/hello-store-id", test_hello_store_id);
    g_test_add_func("/proto/map", test_map);
    g_test_add_func("/proto/chunks", test_chunks);
    g_test_add_func("/proto/random-garbage", test_random_garbage);
    g_test_add_func("/proto/write/req", test_write_req);
    g_test_add_func("/proto/write/chunks", test_write_chunks);
    g_test_add_func("/proto/write/reply", test_write_reply);
    g_test_add_func("/proto/write/flush", test_flush);
    g_test_add_func("/proto/write/status", test_write_status);
    g_test_add_func("/proto/write/garbage", test_write_garbage);
    return g_test_run();
}
