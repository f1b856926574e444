/*
 * CRC-32C (Castagnoli) of extents and records, the velo_cache_crc*()
 * functions of cachefmt.h, three ways that give the same values: folding
 * with AVX-512 carry-less multiplication (VPCLMULQDQ), the SSE4.2
 * instruction, or a table.  The first runs at memory speed, so the copy
 * that velo_cache_crc_copy makes beside it costs about what a memcpy does.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "cachefmt.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* The table: any CPU, a byte at a time. */
static uint32_t crc32c_table[256];

static void crc32c_init_table(void)
{
    uint32_t i, j;

    for (i = 0; i < 256; i++) {
        uint32_t c = i;
        for (j = 0; j < 8; j++) {
            c = (c >> 1) ^ ((c & 1) ? 0x82f63b78u : 0);
        }
        crc32c_table[i] = c;
    }
}

static uint32_t crc32c_soft(uint32_t c, const uint8_t *p, size_t len)
{
    while (len--) {
        c = crc32c_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    }
    return c;
}

#if defined(__x86_64__)
/*
 * The instruction has a latency of 3 cycles and a throughput of 1, so one
 * dependency chain runs at a third of its speed.  Large buffers go in
 * stretches of three blocks of CRC32C_BLOCK bytes, each block its own
 * chain; the three CRCs are then combined: feeding a register n zero bytes
 * is a linear map (multiplication by x^8n), tabled for n = CRC32C_BLOCK.
 */
#define CRC32C_BLOCK 2048
static uint32_t crc32c_shift_tab[4][256];

static void crc32c_init_shift(void)
{
    static const uint8_t zeros[CRC32C_BLOCK];
    uint32_t basis[32];
    int b, k, v;

    for (b = 0; b < 32; b++) {
        basis[b] = crc32c_soft(1u << b, zeros, CRC32C_BLOCK);
    }
    for (k = 0; k < 4; k++) {
        for (v = 0; v < 256; v++) {
            uint32_t x = 0;
            for (b = 0; b < 8; b++) {
                if (v & (1 << b)) {
                    x ^= basis[8 * k + b];
                }
            }
            crc32c_shift_tab[k][v] = x;
        }
    }
}

/* @c followed by CRC32C_BLOCK zero bytes. */
static inline uint32_t crc32c_shift(uint32_t c)
{
    return crc32c_shift_tab[0][c & 0xff] ^ crc32c_shift_tab[1][(c >> 8) & 0xff] ^
           crc32c_shift_tab[2][(c >> 16) & 0xff] ^ crc32c_shift_tab[3][c >> 24];
}

/* CRC-32C of @p: three chains over large buffers, then 8 bytes at a time. */
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t c, const uint8_t *p, size_t len)
{
    uint64_t c64 = c;

    while (len >= 3 * CRC32C_BLOCK) {
        uint64_t ca = c64, cb = 0, cc = 0;
        size_t i;

        for (i = 0; i < CRC32C_BLOCK; i += 8) {
            uint64_t va, vb, vc;
            memcpy(&va, p + i, 8);
            memcpy(&vb, p + CRC32C_BLOCK + i, 8);
            memcpy(&vc, p + 2 * CRC32C_BLOCK + i, 8);
            ca = __builtin_ia32_crc32di(ca, va);
            cb = __builtin_ia32_crc32di(cb, vb);
            cc = __builtin_ia32_crc32di(cc, vc);
        }
        c64 = crc32c_shift(crc32c_shift((uint32_t)ca) ^ (uint32_t)cb) ^
              (uint32_t)cc;
        p += 3 * CRC32C_BLOCK;
        len -= 3 * CRC32C_BLOCK;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
    while (len--) {
        c = __builtin_ia32_crc32qi(c, *p++);
    }
    return c;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw_copy(uint32_t c, const uint8_t *p, uint8_t *d,
                               size_t len)
{
    /*
     * Copy a stretch, then CRC the copy while it is in L1: 11-12 GB/s
     * against 4.5-7.5 GB/s for storing beside the three chains' loads
     * (64 KiB, hot), and the CRC is of what was copied, so a changing
     * source can't make them disagree.
     */
    while (len) {
        size_t n = MIN(len, 3 * CRC32C_BLOCK);

        memcpy(d, p, n);
        c = crc32c_hw(c, d, n);
        p += n;
        d += n;
        len -= n;
    }
    return c;
}

/*
 * Folding.  The data is a polynomial over GF(2), bit-reflected: the first
 * byte's low bit is its highest term.  A 128-bit chunk X = Xh x^64 + Xl
 * followed by N more bits adds X x^N to the message; mod P that is
 * Xh (x^(N+64) mod P) + Xl (x^N mod P), a product of under 96 bits that
 * can be xored into the chunk N bits further on.  So four 512-bit
 * accumulators take 256 bytes a round, each fed the lane 2048 bits after
 * it, and are folded into one chunk at the end.  With reflected operands
 * the instruction's product comes out multiplied by x: hence the
 * constants x^(N+63) and x^(N-1).  The last chunk is reduced by the CRC
 * instruction itself (its 16 bytes fed to a zero register), the last few
 * bytes too.
 */

/* x^n mod P, reflected into the top half of 64 bits like the data. */
static uint64_t crc32c_xpow(unsigned n)
{
    uint64_t r = 1, out = 0;
    int i;

    while (n--) {
        r <<= 1;
        if (r & (1ull << 32)) {
            r ^= 0x11edc6f41ull;        /* P, x^32 + ... + 1 */
        }
    }
    for (i = 0; i < 32; i++) {
        if (r >> i & 1) {
            out |= 1ull << (63 - i);
        }
    }
    return out;
}

/*
 * Fold constants for a distance of N bits: [x^(N+63), x^(N-1)] in each of
 * four 128-bit lanes (the 128-bit folds use the first).
 */
typedef struct CrcFoldK {
    uint64_t k[8];
} CrcFoldK;

static CrcFoldK crc32c_k128, crc32c_k256, crc32c_k384, crc32c_k512,
                crc32c_k1024, crc32c_k1536, crc32c_k2048;

static void crc32c_init_fold(void)
{
    static const struct {
        CrcFoldK *k;
        unsigned n;
    } tab[] = {
        { &crc32c_k128, 128 }, { &crc32c_k256, 256 }, { &crc32c_k384, 384 },
        { &crc32c_k512, 512 }, { &crc32c_k1024, 1024 },
        { &crc32c_k1536, 1536 }, { &crc32c_k2048, 2048 },
    };
    size_t i;
    int l;

    for (i = 0; i < G_N_ELEMENTS(tab); i++) {
        for (l = 0; l < 4; l++) {
            tab[i].k->k[2 * l] = crc32c_xpow(tab[i].n + 63);
            tab[i].k->k[2 * l + 1] = crc32c_xpow(tab[i].n - 1);
        }
    }
}

#define CRC_VP_TARGET \
    __attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))

CRC_VP_TARGET
static inline __m512i crc32c_k4(const CrcFoldK *k)
{
    return _mm512_loadu_si512(k->k);
}

/* @x folded by @k's distance, xored with @y. */
CRC_VP_TARGET
static inline __m512i crc32c_fold4(__m512i x, __m512i k, __m512i y)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
                                     _mm512_clmulepi64_epi128(x, k, 0x11),
                                     y, 0x96);
}

CRC_VP_TARGET
static inline __m128i crc32c_fold1(__m128i x, const CrcFoldK *k, __m128i y)
{
    __m128i kk = _mm_loadu_si128((const __m128i *)k->k);

    return _mm_ternarylogic_epi64(_mm_clmulepi64_si128(x, kk, 0x00),
                                  _mm_clmulepi64_si128(x, kk, 0x11), y, 0x96);
}

/* 64 bytes at @p, loaded once and copied to @d unless it is NULL. */
CRC_VP_TARGET
static inline __m512i crc32c_load64(const uint8_t *p, uint8_t *d)
{
    __m512i v = _mm512_loadu_si512(p);

    if (d) {
        _mm512_storeu_si512(d, v);
    }
    return v;
}

/* Register @c (not inverted) over @len >= 256 bytes at @p, copied to @d. */
CRC_VP_TARGET
static uint32_t crc32c_vp_body(uint32_t c, const uint8_t *p, uint8_t *d,
                               size_t len)
{
    __m512i x0, x1, x2, x3, k;
    __m128i r;
    uint64_t q[2], lane[8];

    x0 = _mm512_xor_si512(crc32c_load64(p, d),
                          _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, c));
    x1 = crc32c_load64(p + 64, d ? d + 64 : NULL);
    x2 = crc32c_load64(p + 128, d ? d + 128 : NULL);
    x3 = crc32c_load64(p + 192, d ? d + 192 : NULL);
    p += 256;
    d = d ? d + 256 : NULL;
    len -= 256;

    k = crc32c_k4(&crc32c_k2048);
    while (len >= 256) {
        x0 = crc32c_fold4(x0, k, crc32c_load64(p, d));
        x1 = crc32c_fold4(x1, k, crc32c_load64(p + 64, d ? d + 64 : NULL));
        x2 = crc32c_fold4(x2, k, crc32c_load64(p + 128, d ? d + 128 : NULL));
        x3 = crc32c_fold4(x3, k, crc32c_load64(p + 192, d ? d + 192 : NULL));
        p += 256;
        d = d ? d + 256 : NULL;
        len -= 256;
    }
    x3 = crc32c_fold4(x2, crc32c_k4(&crc32c_k512), x3);
    x3 = crc32c_fold4(x1, crc32c_k4(&crc32c_k1024), x3);
    x3 = crc32c_fold4(x0, crc32c_k4(&crc32c_k1536), x3);

    k = crc32c_k4(&crc32c_k512);
    while (len >= 64) {
        x3 = crc32c_fold4(x3, k, crc32c_load64(p, d));
        p += 64;
        d = d ? d + 64 : NULL;
        len -= 64;
    }

    /* The four lanes into one, the earliest folded furthest. */
    _mm512_storeu_si512(lane, x3);
    r = _mm_loadu_si128((const __m128i *)&lane[6]);
    r = crc32c_fold1(_mm_loadu_si128((const __m128i *)&lane[4]),
                     &crc32c_k128, r);
    r = crc32c_fold1(_mm_loadu_si128((const __m128i *)&lane[2]),
                     &crc32c_k256, r);
    r = crc32c_fold1(_mm_loadu_si128((const __m128i *)&lane[0]),
                     &crc32c_k384, r);

    while (len >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);

        if (d) {
            _mm_storeu_si128((__m128i *)d, v);
            d += 16;
        }
        r = crc32c_fold1(r, &crc32c_k128, v);
        p += 16;
        len -= 16;
    }

    _mm_storeu_si128((__m128i *)q, r);
    c = (uint32_t)__builtin_ia32_crc32di(__builtin_ia32_crc32di(0, q[0]),
                                         q[1]);
    return d ? crc32c_hw_copy(c, p, d, len) : crc32c_hw(c, p, len);
}
#endif

static VeloCrcImpl crc32c_impl = VELO_CRC_TABLE;
static gsize crc32c_once;

static bool crc32c_cpu_has(VeloCrcImpl impl)
{
    switch (impl) {
#if defined(__x86_64__)
    case VELO_CRC_VPCLMUL:
        return __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("vpclmulqdq") &&
               __builtin_cpu_supports("pclmul") &&
               __builtin_cpu_supports("sse4.2");
    case VELO_CRC_SSE42:
        return __builtin_cpu_supports("sse4.2");
#endif
    case VELO_CRC_TABLE:
        return true;
    default:
        return false;
    }
}

static void crc32c_init(void)
{
    if (g_once_init_enter(&crc32c_once)) {
        crc32c_init_table();
#if defined(__x86_64__)
        __builtin_cpu_init();
        crc32c_init_shift();
        crc32c_init_fold();
#endif
        crc32c_impl = crc32c_cpu_has(VELO_CRC_VPCLMUL) ? VELO_CRC_VPCLMUL :
                      crc32c_cpu_has(VELO_CRC_SSE42) ? VELO_CRC_SSE42 :
                      VELO_CRC_TABLE;
        g_once_init_leave(&crc32c_once, 1);
    }
}

VeloCrcImpl velo_cache_crc_impl(void)
{
    crc32c_init();
    return crc32c_impl;
}

bool velo_cache_crc_use(VeloCrcImpl impl)
{
    crc32c_init();
    if (!crc32c_cpu_has(impl)) {
        return false;
    }
    crc32c_impl = impl;
    return true;
}

/* Register @c (not inverted) over @src, copied to @dst unless NULL. */
static uint32_t crc32c_run(uint32_t c, const uint8_t *src, uint8_t *dst,
                           size_t len)
{
    crc32c_init();
    switch (crc32c_impl) {
#if defined(__x86_64__)
    case VELO_CRC_VPCLMUL:
        if (len >= 256) {
            return crc32c_vp_body(c, src, dst, len);
        }
        /* fall through */
    case VELO_CRC_SSE42:
        return dst ? crc32c_hw_copy(c, src, dst, len) : crc32c_hw(c, src, len);
#endif
    default:
        if (dst) {
            memcpy(dst, src, len);
            src = dst;                  /* the CRC of what was copied */
        }
        return crc32c_soft(c, src, len);
    }
}

uint32_t velo_cache_crc_update(uint32_t crc, const void *data, size_t len)
{
    return ~crc32c_run(~crc, data, NULL, len);
}

uint32_t velo_cache_crc_copy(uint32_t crc, void *dst, const void *src,
                             size_t len)
{
    return ~crc32c_run(~crc, src, dst, len);
}

uint32_t velo_cache_crc(const void *data, size_t len)
{
    return velo_cache_crc_update(0, data, len);
}
