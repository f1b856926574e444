/*
 * Velo encryption at rest: HKDF key derivation, AES-GCM seal and open, and
 * a MAC, all with OpenSSL's EVP interfaces (see atrest.h).
 *
 * Nonces are the caller's business (cache.c: a persisted per-open epoch and
 * a counter), so that none ever repeats under one key, crashes included.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/crypto.h>
#include "atrest.h"

static bool hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
                 const uint8_t *info, size_t info_len, uint8_t *out,
                 size_t out_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    bool ok = ctx &&
        EVP_PKEY_derive_init(ctx) > 0 &&
        EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
        EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, VELO_ATREST_SALT_SIZE) > 0 &&
        EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, ikm_len) > 0 &&
        EVP_PKEY_CTX_add1_hkdf_info(ctx, info, info_len) > 0 &&
        EVP_PKEY_derive(ctx, out, &out_len) > 0;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

bool velo_atrest_derive(const uint8_t *secret, size_t secret_len,
                        const uint8_t *salt, const uint8_t *disk_id,
                        VeloAtRestKey *k)
{
    uint8_t info[32];

    if (secret_len != 16 && secret_len != 32) {
        return false;
    }
    velo_atrest_clear(k);
    k->key_len = secret_len;
    memcpy(info, "velo cache key  ", 16);
    memcpy(info + 16, disk_id, 16);
    if (!hkdf(secret, secret_len, salt, info, sizeof(info), k->key,
              k->key_len)) {
        return false;
    }
    memcpy(info, "velo cache keyid", 16);
    return hkdf(secret, secret_len, salt, info, sizeof(info), k->key_id,
                sizeof(k->key_id));
}

static const EVP_CIPHER *gcm(const VeloAtRestKey *k)
{
    return k->key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
}

/*
 * AES-GCM in either direction; the tag is produced (@enc) or checked.  The
 * context keeps the key schedule: later calls only set the nonce.
 */
static bool gcm_crypt(VeloAtRestKey *k, bool enc, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in,
                      size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = k->ctx[enc];
    int n;

    if (!ctx) {
        ctx = EVP_CIPHER_CTX_new();
        if (!ctx ||
            EVP_CipherInit_ex(ctx, gcm(k), NULL, NULL, NULL, enc) <= 0 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
                                VELO_ATREST_NONCE_SIZE, NULL) <= 0 ||
            EVP_CipherInit_ex(ctx, NULL, NULL, k->key, NULL, enc) <= 0) {
            EVP_CIPHER_CTX_free(ctx);
            return false;
        }
        k->ctx[enc] = ctx;
    }
    return EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc) > 0 &&
        EVP_CipherUpdate(ctx, NULL, &n, aad, aad_len) > 0 &&
        EVP_CipherUpdate(ctx, out, &n, in, len) > 0 &&
        (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
                                    VELO_ATREST_TAG_SIZE, tag) > 0) &&
        EVP_CipherFinal_ex(ctx, out + n, &n) > 0 &&
        (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
                                     VELO_ATREST_TAG_SIZE, tag) > 0);
}

void velo_atrest_clear(VeloAtRestKey *k)
{
    EVP_CIPHER_CTX_free(k->ctx[0]);
    EVP_CIPHER_CTX_free(k->ctx[1]);
    OPENSSL_cleanse(k, sizeof(*k));
}

bool velo_atrest_seal(VeloAtRestKey *k, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in,
                      size_t len, uint8_t *out, uint8_t *tag)
{
    return gcm_crypt(k, true, nonce, aad, aad_len, in, len, out, tag);
}

bool velo_atrest_open(VeloAtRestKey *k, const uint8_t *nonce,
                      const uint8_t *aad, size_t aad_len, const uint8_t *in,
                      size_t len, uint8_t *out, const uint8_t *tag)
{
    return gcm_crypt(k, false, nonce, aad, aad_len, in, len, out,
                     (uint8_t *)tag);
}

void velo_atrest_mac(const VeloAtRestKey *k, const uint8_t *data, size_t len,
                     uint8_t mac[16])
{
    uint8_t full[32];
    unsigned int n = sizeof(full);

    HMAC(EVP_sha256(), k->key, k->key_len, data, len, full, &n);
    memcpy(mac, full, 16);
}

bool velo_atrest_mac_long(const VeloAtRestKey *k, const uint8_t *prefix,
                          size_t prefix_len, const uint8_t *data, size_t len,
                          uint8_t mac[16])
{
    uint8_t msg[64 + 32];
    unsigned int n = 32;

    if (prefix_len > 64 ||
        !EVP_Digest(data, len, msg + prefix_len, &n, EVP_sha256(), NULL)) {
        return false;
    }
    memcpy(msg, prefix, prefix_len);
    velo_atrest_mac(k, msg, prefix_len + 32, mac);
    return true;
}
