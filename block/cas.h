/*
 * Velo content-addressed store (CAS): one directory per host, shared by
 * every velo disk on the host, holding extent contents by SHA-256.
 *
 * Pure code (GLib and libcrypto), used from worker threads: every function
 * below is thread-safe and may block on file I/O.  Several QEMU processes
 * may share one directory; objects appear atomically (write a temporary
 * file, then rename it into place) and every read is verified against its
 * hash, so a torn, truncated or tampered object is a miss, never data.
 *
 * Layout:
 *   DIR/store-id          16 random bytes naming this store to servers
 *   DIR/ab/abcdef...      an object: the raw extent bytes, named by the
 *                         64 hex digits of their SHA-256
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_CAS_H
#define VELO_CAS_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VELO_CAS_HASH_SIZE  32
#define VELO_CAS_ID_SIZE    16
#define VELO_CAS_MAX_OBJECT (4u << 20)

typedef struct VeloCas VeloCas;

/* SHA-256 of @len bytes at @data into @hash. */
void velo_cas_hash(const void *data, size_t len,
                   uint8_t hash[VELO_CAS_HASH_SIZE]);

/* GHashTable functions for keys that are VELO_CAS_HASH_SIZE-byte hashes. */
guint velo_cas_hash_hash(gconstpointer hash);
gboolean velo_cas_hash_equal(gconstpointer a, gconstpointer b);

/*
 * Open (creating if needed) the store in @dir.  Returns NULL with @why (a
 * static string) and errno set when it can't be used.
 */
VeloCas *velo_cas_open(const char *dir, const char **why);

void velo_cas_close(VeloCas *cas);

/* The store's identity, as sent to servers. */
const uint8_t *velo_cas_id(const VeloCas *cas);

/*
 * Read the object @hash into @buf, which must be exactly its size @len.
 * Returns true only if the object exists, has that size and hashes to
 * @hash; a corrupt object is removed.
 */
bool velo_cas_get(VeloCas *cas, const uint8_t hash[VELO_CAS_HASH_SIZE],
                  void *buf, size_t len);

/*
 * Store @len bytes at @data under @hash (which the caller computed).  An
 * existing object is left alone.  Returns 0 or -errno.
 */
int velo_cas_put(VeloCas *cas, const uint8_t hash[VELO_CAS_HASH_SIZE],
                 const void *data, size_t len);

#endif
