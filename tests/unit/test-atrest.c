/*
 * Unit tests of encryption at rest (block/atrest.c) and of the cache
 * record codec (block/cachefmt.c): keys per salt and disk, GCM round trips,
 * and every kind of tampering (ciphertext, tag, nonce, AAD) refused.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <glib.h>
#include "atrest.h"
#include "cachefmt.h"

static const uint8_t secret[32] = "0123456789abcdef0123456789abcde";
static const uint8_t salt[32] = "salt salt salt salt salt salt s";
static const uint8_t disk[16] = "disk-id-0000001";

static void test_derive(void)
{
    VeloAtRestKey a = { 0 }, b = { 0 }, c = { 0 };
    uint8_t salt2[32];

    g_assert_true(velo_atrest_derive(secret, 32, salt, disk, &a));
    g_assert_true(velo_atrest_derive(secret, 32, salt, disk, &b));
    g_assert_cmpmem(a.key, 32, b.key, 32);
    g_assert_cmpmem(a.key_id, 8, b.key_id, 8);
    memcpy(salt2, salt, 32);
    salt2[0] ^= 1;
    g_assert_true(velo_atrest_derive(secret, 32, salt2, disk, &c));
    g_assert_true(memcmp(a.key, c.key, 32) != 0);
    g_assert_true(memcmp(a.key_id, c.key_id, 8) != 0);
    g_assert_true(memcmp(a.key, a.key_id, 8) != 0);
    g_assert_true(velo_atrest_derive(secret, 16, salt, disk, &c));
    g_assert_cmpuint(c.key_len, ==, 16);
    g_assert_false(velo_atrest_derive(secret, 24, salt, disk, &c));
    velo_atrest_clear(&a);
    velo_atrest_clear(&b);
    velo_atrest_clear(&c);
}

static void test_gcm(void)
{
    VeloAtRestKey k = { 0 };
    uint8_t nonce[12] = { 1 }, aad[8] = "aad-data", tag[16];
    uint8_t plain[4096], ct[4096], out[4096];
    size_t i;

    for (i = 0; i < sizeof(plain); i++) {
        plain[i] = i * 7;
    }
    g_assert_true(velo_atrest_derive(secret, 32, salt, disk, &k));
    g_assert_true(velo_atrest_seal(&k, nonce, aad, 8, plain, 4096, ct, tag));
    g_assert_true(memcmp(plain, ct, 4096) != 0);
    g_assert_true(velo_atrest_open(&k, nonce, aad, 8, ct, 4096, out, tag));
    g_assert_cmpmem(plain, 4096, out, 4096);

    ct[100] ^= 4;
    g_assert_false(velo_atrest_open(&k, nonce, aad, 8, ct, 4096, out, tag));
    ct[100] ^= 4;
    tag[3] ^= 1;
    g_assert_false(velo_atrest_open(&k, nonce, aad, 8, ct, 4096, out, tag));
    tag[3] ^= 1;
    nonce[11] ^= 1;
    g_assert_false(velo_atrest_open(&k, nonce, aad, 8, ct, 4096, out, tag));
    nonce[11] ^= 1;
    aad[0] ^= 1;
    g_assert_false(velo_atrest_open(&k, nonce, aad, 8, ct, 4096, out, tag));
    aad[0] ^= 1;
    g_assert_false(velo_atrest_open(&k, nonce, aad, 8, ct, 4095, out, tag));
    g_assert_true(velo_atrest_open(&k, nonce, aad, 8, ct, 4096, out, tag));
    g_assert_cmpmem(plain, 4096, out, 4096);
    velo_atrest_clear(&k);
}

static void test_record(void)
{
    VeloCacheHdr h;
    VeloCacheRec r = { .flags = VELO_REC_GCM, .stored_len = 65536,
                       .plain_len = 65536 }, out;
    uint8_t buf[VELO_REC_HDR_SIZE], a1[VELO_REC_AAD_SIZE],
            a2[VELO_REC_AAD_SIZE];
    const char *why;

    velo_cache_hdr_init(&h, 1 << 20, 65536, disk, "x");
    h.flags = VELO_CACHE_F_RECORDS | VELO_CACHE_F_GCM;
    memset(r.nonce, 7, sizeof(r.nonce));
    velo_cache_rec_encode(buf, &r);
    g_assert_true(velo_cache_rec_decode(buf, &h, 65536, &out, &why));
    g_assert_cmpmem(out.nonce, 12, r.nonce, 12);
    /* A plaintext record in an encrypted file is refused. */
    r.flags = 0;
    velo_cache_rec_encode(buf, &r);
    g_assert_false(velo_cache_rec_decode(buf, &h, 65536, &out, &why));
    /* Compressed records only where the file allows them. */
    r.flags = VELO_REC_GCM | VELO_REC_ZSTD;
    r.stored_len = 100;
    velo_cache_rec_encode(buf, &r);
    g_assert_false(velo_cache_rec_decode(buf, &h, 65536, &out, &why));
    h.flags |= VELO_CACHE_F_ZSTD;
    g_assert_true(velo_cache_rec_decode(buf, &h, 65536, &out, &why));
    /* Lengths: the plain length must be the extent's. */
    g_assert_false(velo_cache_rec_decode(buf, &h, 4096, &out, &why));
    buf[0] = 'X';
    g_assert_false(velo_cache_rec_decode(buf, &h, 65536, &out, &why));
    /* The AAD differs per extent. */
    velo_cache_rec_aad(a1, &h, 3, &r);
    velo_cache_rec_aad(a2, &h, 70, &r);
    g_assert_true(memcmp(a1, a2, sizeof(a1)) != 0);
}

/*
 * The MAC of a prefix and a long message: deterministic, and any change to
 * the prefix, one byte of the message, its length or the key shows.
 */
static void test_mac_long(void)
{
    VeloAtRestKey k = { 0 }, k2 = { 0 };
    uint8_t salt2[32];
    size_t len = 1 << 20, i;
    g_autofree uint8_t *msg = g_malloc(len);
    uint8_t m0[16], m1[16];

    for (i = 0; i < len; i++) {
        msg[i] = i * 7 + (i >> 9);
    }
    g_assert_true(velo_atrest_derive(secret, 32, salt, disk, &k));
    memcpy(salt2, salt, 32);
    salt2[31] ^= 0x80;
    g_assert_true(velo_atrest_derive(secret, 32, salt2, disk, &k2));
    g_assert_true(velo_atrest_mac_long(&k, (const uint8_t *)"INDX", 4, msg,
                                       len, m0));
    g_assert_true(velo_atrest_mac_long(&k, (const uint8_t *)"INDX", 4, msg,
                                       len, m1));
    g_assert_cmpmem(m0, 16, m1, 16);
    g_assert_true(velo_atrest_mac_long(&k, (const uint8_t *)"INDY", 4, msg,
                                       len, m1));
    g_assert_true(memcmp(m0, m1, 16) != 0);
    g_assert_true(velo_atrest_mac_long(&k, (const uint8_t *)"INDX", 4, msg,
                                       len - 1, m1));
    g_assert_true(memcmp(m0, m1, 16) != 0);
    g_assert_true(velo_atrest_mac_long(&k2, (const uint8_t *)"INDX", 4, msg,
                                       len, m1));
    g_assert_true(memcmp(m0, m1, 16) != 0);
    msg[len / 2] ^= 1;
    g_assert_true(velo_atrest_mac_long(&k, (const uint8_t *)"INDX", 4, msg,
                                       len, m1));
    g_assert_true(memcmp(m0, m1, 16) != 0);
    /* A prefix over 64 bytes is refused, never truncated. */
    g_assert_false(velo_atrest_mac_long(&k, msg, 65, msg, len, m1));
    velo_atrest_clear(&k);
    velo_atrest_clear(&k2);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/atrest/derive", test_derive);
    g_test_add_func("/atrest/gcm", test_gcm);
    g_test_add_func("/atrest/record", test_record);
    g_test_add_func("/atrest/mac-long", test_mac_long);
    return g_test_run();
}
