/*
 * Velo encryption at rest: key derivation and AES-GCM for the cache file
 * (and later the object store).
 *
 * Pure code (libcrypto only).  Keys come from a QEMU secret of 16 or 32
 * bytes; each cache file gets its own key, HKDF-SHA256(secret, salt of the
 * file, "velo cache key" || disk id), and a key id (another HKDF output)
 * that the file records so a wrong secret is named as such, never tried.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_ATREST_H
#define VELO_ATREST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VELO_ATREST_SALT_SIZE   32
#define VELO_ATREST_KEYID_SIZE  8
#define VELO_ATREST_NONCE_SIZE  12
#define VELO_ATREST_TAG_SIZE    16
#define VELO_ATREST_MAX_KEY     32

/*
 * A derived key.  Its cipher contexts (key schedule done once) are made on
 * first use: one thread at a time may use a key; free it with
 * velo_atrest_clear().
 */
typedef struct VeloAtRestKey {
    uint8_t key[VELO_ATREST_MAX_KEY];
    size_t key_len;                     /* 16 (AES-128) or 32 (AES-256) */
    uint8_t key_id[VELO_ATREST_KEYID_SIZE];
    void *ctx[2];                       /* EVP_CIPHER_CTX: decrypt, encrypt */
} VeloAtRestKey;

/* Free @k's cipher contexts and wipe it. */
void velo_atrest_clear(VeloAtRestKey *k);

/*
 * Derive the key of one cache file from @secret (16 or 32 bytes), the
 * file's @salt and @disk_id (16 bytes).  Returns false if the secret has
 * another length or libcrypto fails.
 */
bool velo_atrest_derive(const uint8_t *secret, size_t secret_len,
                        const uint8_t *salt, const uint8_t *disk_id,
                        VeloAtRestKey *k);

/*
 * Encrypt @len bytes from @in to @out (may be the same buffer) with AES-GCM
 * under @k, @nonce and @aad; the tag goes to @tag.  Returns false on a
 * libcrypto failure.
 */
bool velo_atrest_seal(VeloAtRestKey *k, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in,
                      size_t len, uint8_t *out, uint8_t *tag);

/* Decrypt and authenticate; false if anything does not check out. */
bool velo_atrest_open(VeloAtRestKey *k, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in,
                      size_t len, uint8_t *out, const uint8_t *tag);

/* HMAC-SHA256 under @k of @len bytes, truncated to 16 bytes, into @mac. */
void velo_atrest_mac(const VeloAtRestKey *k, const uint8_t *data, size_t len,
                     uint8_t mac[16]);

/*
 * The MAC of @prefix followed by a long message @data: the HMAC (as
 * velo_atrest_mac) of @prefix and the SHA-256 of @data.  False if
 * libcrypto fails.
 */
bool velo_atrest_mac_long(const VeloAtRestKey *k, const uint8_t *prefix,
                          size_t prefix_len, const uint8_t *data, size_t len,
                          uint8_t mac[16]);

#endif
