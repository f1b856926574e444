/*
 * Big-endian field access for Velo's wire and on-disk formats (proto.c,
 * cachefmt.c), and lower-case hex of byte strings (names of stored
 * objects).  Pure code; works on unaligned buffers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_BYTES_H
#define VELO_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline void velo_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static inline void velo_put32(uint8_t *p, uint32_t v) { velo_put16(p, v >> 16); velo_put16(p + 2, v); }
static inline void velo_put64(uint8_t *p, uint64_t v) { velo_put32(p, v >> 32); velo_put32(p + 4, v); }
static inline uint16_t velo_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t velo_get32(const uint8_t *p) { return (uint32_t)velo_get16(p) << 16 | velo_get16(p + 2); }
static inline uint64_t velo_get64(const uint8_t *p) { return (uint64_t)velo_get32(p) << 32 | velo_get32(p + 4); }

/* Write 2 * @n lower-case hex digits of @in to @out, then a NUL. */
static inline void velo_hex(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

#endif
