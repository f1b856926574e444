/*
 * Velo WAN protocol v1 codec: encoding, decoding and validation of every
 * frame in docs/protocol.rst.
 *
 * Pure code: it depends on GLib only, never on QEMU, so that the unit tests
 * and fuzzers can reach it.  Nothing here does I/O.  Every decoder treats its
 * input as hostile: it checks each length before reading and reports a
 * human-readable reason through @why (a static string, never freed).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_PROTO_H
#define VELO_PROTO_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VELO_MAGIC              0x56454c4fu     /* "VELO" */
#define VELO_HDR_SIZE           24
#define VELO_VERSION_MIN        1
#define VELO_VERSION_MAX        1
#define VELO_MAX_STRING         4096
#define VELO_HANDSHAKE_MAX      8192            /* payload limit before HELLO_REPLY */
#define VELO_MAX_PAYLOAD_LIMIT  (64u << 20)
#define VELO_MIN_EXTENT         4096u
#define VELO_MAX_EXTENT         (4u << 20)
#define VELO_MAX_DISK_SIZE      (UINT64_C(1) << 62)
#define VELO_CHUNK_HDR_SIZE     20
#define VELO_MAP_ENTRY_SIZE     24
#define VELO_HELLO_REPLY_SIZE   56
#define VELO_READ_OVERHEAD      64              /* max-payload - max READ length */
#define VELO_DISK_ID_SIZE       16
#define VELO_MAX_EXTENTS        (UINT64_C(1) << 28)   /* per disk */

typedef enum VeloMsgType {
    VELO_MSG_HELLO = 1,
    VELO_MSG_HELLO_REPLY = 2,
    VELO_MSG_ERROR = 3,
    VELO_MSG_MAP = 4,
    VELO_MSG_MAP_REPLY = 5,
    VELO_MSG_READ = 6,
    VELO_MSG_READ_REPLY = 7,
    VELO_MSG_WRITE = 8,
    VELO_MSG_WRITE_REPLY = 9,
    VELO_MSG_FLUSH = 10,
    VELO_MSG_FLUSH_REPLY = 11,
    VELO_MSG_DISCONNECT = 12,
    VELO_MSG_PING = 13,
    VELO_MSG_PONG = 14,
    VELO_MSG_PROMOTE = 15,      /* feature PRIO: a BACKGROUND READ is needed */
    VELO_MSG__MAX,
} VeloMsgType;

typedef enum VeloStatus {
    VELO_OK = 0,
    VELO_E_INVAL = 1,
    VELO_E_NOENT = 2,
    VELO_E_IO = 3,
    VELO_E_NOTSUP = 4,
    VELO_E_RANGE = 5,
    VELO_E_PROTO = 6,
    VELO_E_BUSY = 7,
    VELO_E_SHUTDOWN = 8,
    VELO_E_VERSION = 9,
    VELO_E_PERM = 10,
    VELO_E_SEQ = 11,
    VELO_E_STALE = 12,
    VELO_E__MAX,
} VeloStatus;

/* Feature bits. */
#define VELO_F_ZSTD             (UINT64_C(1) << 0)
#define VELO_F_HASH             (UINT64_C(1) << 1)
#define VELO_STORE_ID_SIZE      16
#define VELO_HASH_SIZE          32      /* SHA-256, in REF chunks */
#define VELO_F_WRITE            (UINT64_C(1) << 2)
#define VELO_F_PRIO             (UINT64_C(1) << 3)
#define VELO_F_KNOWN            (VELO_F_ZSTD | VELO_F_HASH | VELO_F_WRITE | \
                                 VELO_F_PRIO)

/* Export flags. */
#define VELO_EXPORT_READ_ONLY   (UINT64_C(1) << 0)

typedef enum VeloMapKind {
    VELO_MAP_DATA = 0,
    VELO_MAP_ZERO = 1,
    VELO_MAP_HOLE = 2,
    VELO_MAP__MAX,
} VeloMapKind;

typedef enum VeloEncoding {
    VELO_ENC_RAW = 0,
    VELO_ENC_ZERO = 1,
    VELO_ENC_ZSTD = 2,
    VELO_ENC_REF = 3,
    VELO_ENC__MAX,
} VeloEncoding;

typedef struct VeloHdr {
    uint16_t type;
    uint16_t flags;
    uint64_t handle;
    uint32_t length;
    uint32_t status;
} VeloHdr;

typedef struct VeloHello {
    uint16_t version_min;
    uint16_t version_max;
    uint64_t features;
    char name[VELO_MAX_STRING + 1];     /* NUL-terminated */
    /* With feature HASH: the client's content store (for REF chunks). */
    uint8_t store_id[VELO_STORE_ID_SIZE];
} VeloHello;

typedef struct VeloHelloReply {
    uint16_t version;
    uint32_t extent_size;
    uint64_t features;
    uint64_t disk_size;
    uint32_t max_payload;
    uint32_t max_inflight;
    uint64_t export_flags;
    uint8_t disk_id[VELO_DISK_ID_SIZE];
} VeloHelloReply;

typedef struct VeloRange {
    uint64_t offset;
    uint64_t length;
    uint32_t flags;                     /* READ only: VELO_READ_* */
} VeloRange;

/* READ flags. */
#define VELO_READ_NO_REF        1u      /* send payloads, never REF chunks */
#define VELO_READ_BACKGROUND    2u      /* a guess: after every other reply
                                           (feature PRIO) */
#define VELO_READ_KNOWN_FLAGS   (VELO_READ_NO_REF | VELO_READ_BACKGROUND)

/* WRITE request prefix (then chunks covering [offset, offset + length)). */
#define VELO_WRITE_HDR_SIZE     32
#define VELO_WRITE_REPLY_SIZE   16
#define VELO_FLUSH_SIZE         8
#define VELO_FLUSH_REPLY_SIZE   16
#define VELO_WRITE_OVERHEAD     (VELO_WRITE_HDR_SIZE + VELO_CHUNK_HDR_SIZE)

typedef struct VeloWrite {
    uint64_t epoch;                     /* the writer's epoch */
    uint64_t seq;                       /* journal sequence number, >= 1 */
    uint64_t offset;
    uint32_t length;
    uint32_t flags;                     /* none defined: 0 */
} VeloWrite;

/* WRITE_REPLY results. */
#define VELO_WRITE_APPLIED      0       /* written now */
#define VELO_WRITE_DUPLICATE    1       /* seq was already applied: ignored */

typedef struct VeloWriteReply {
    uint32_t result;                    /* VELO_WRITE_* */
    uint64_t next_seq;                  /* the seq the server expects next */
} VeloWriteReply;

typedef struct VeloFlushReply {
    uint64_t durable_seq;               /* every seq up to this is durable */
    uint64_t epoch;                     /* the newest epoch the server saw */
} VeloFlushReply;

typedef struct VeloMapEntry {
    uint64_t offset;
    uint64_t length;
    uint32_t kind;                      /* VeloMapKind */
} VeloMapEntry;

typedef struct VeloChunk {
    uint64_t offset;
    uint32_t length;
    uint16_t encoding;                  /* VeloEncoding */
    uint32_t payload_length;
    const uint8_t *payload;             /* points into the decoded buffer */
} VeloChunk;

/* --- proto.c: names ----------------------------------------------------- */

/* Name of a message type ("READ"), or "?" for an unknown one. */
const char *velo_msg_name(unsigned type);

/* Name of a status code ("NOENT"), or "?" for an unknown one. */
const char *velo_status_name(unsigned status);

/* Map a status code to a negative errno (VELO_OK maps to 0). */
int velo_status_to_errno(unsigned status);

/* --- proto.c: frame header --------------------------------------------- */

/* Write @h into @buf (VELO_HDR_SIZE bytes), magic included. */
void velo_hdr_encode(uint8_t *buf, const VeloHdr *h);

/*
 * Decode and check a header: magic, a known type, and length <= @max_payload.
 * Returns false and sets @why on a bad header.
 */
bool velo_hdr_decode(const uint8_t *buf, uint32_t max_payload, VeloHdr *h,
                     const char **why);

/* --- proto.c: handshake ------------------------------------------------- */

/* Encode a HELLO payload into @buf (at least 18 + strlen(name) bytes); returns its length. */
size_t velo_hello_encode(uint8_t *buf, const VeloHello *m);

/* Decode a HELLO payload; the name must be 1..4096 bytes with no NUL. */
bool velo_hello_decode(const uint8_t *p, size_t len, VeloHello *m,
                       const char **why);

/*
 * Choose the protocol version for a client range; returns 0 if there is
 * none in common with VELO_VERSION_MIN..VELO_VERSION_MAX.
 */
unsigned velo_pick_version(unsigned client_min, unsigned client_max);

/* Encode a HELLO_REPLY payload (VELO_HELLO_REPLY_SIZE bytes). */
void velo_hello_reply_encode(uint8_t *buf, const VeloHelloReply *m);

/*
 * Decode and validate a HELLO_REPLY against what the client offered:
 * version in range, features a subset of @client_features, extent size a
 * power of two in range, disk size bounded, max-payload in range.
 */
bool velo_hello_reply_decode(const uint8_t *p, size_t len,
                             uint64_t client_features, VeloHelloReply *m,
                             const char **why);

/* --- proto.c: ERROR ----------------------------------------------------- */

/* Encode an ERROR payload with @msg (truncated to VELO_MAX_STRING); @buf holds 2 + 4096 bytes. */
size_t velo_error_encode(uint8_t *buf, const char *msg);

/* Decode an ERROR payload into a newly allocated, sanitized string. */
bool velo_error_decode(const uint8_t *p, size_t len, char **msg,
                       const char **why);

/* --- proto.c: MAP ------------------------------------------------------- */

/* Encode a MAP or READ request payload; returns its length (16). */
size_t velo_map_req_encode(uint8_t *buf, const VeloRange *r);
size_t velo_read_req_encode(uint8_t *buf, const VeloRange *r);

/* Set READ @flags in the READ request encoded at @buf. */
void velo_read_req_add_flags(uint8_t *buf, uint32_t flags);

/* Decode a MAP request and check it lies within @disk_size. */
bool velo_map_req_decode(const uint8_t *p, size_t len, uint64_t disk_size,
                         VeloRange *r, const char **why);

/*
 * Decode a READ request and check it: extent-aligned offset, length > 0,
 * extent-multiple unless it ends at @disk_size, within the disk, and at most
 * @max_payload - VELO_READ_OVERHEAD.
 */
bool velo_read_req_decode(const uint8_t *p, size_t len, uint64_t disk_size,
                          uint32_t extent_size, uint32_t max_payload,
                          VeloRange *r, const char **why);

/* Largest number of map entries that fit in @max_payload. */
uint32_t velo_map_max_entries(uint32_t max_payload);

/* Encode a MAP_REPLY payload of @n entries; @buf holds 4 + 24 * n bytes. */
size_t velo_map_reply_encode(uint8_t *buf, const VeloMapEntry *e, uint32_t n);

/*
 * Decode a MAP_REPLY for request @req: 1..max entries, contiguous from
 * req->offset, non-empty, inside the request, known kinds.  On success
 * *@entries is a newly allocated array of *@n entries.
 */
bool velo_map_reply_decode(const uint8_t *p, size_t len, const VeloRange *req,
                           VeloMapEntry **entries, uint32_t *n,
                           const char **why);

/* --- proto.c: chunks (READ_REPLY and WRITE payloads) -------------------- */

/* Encode a chunk header at @buf (VELO_CHUNK_HDR_SIZE bytes). */
void velo_chunk_hdr_encode(uint8_t *buf, uint64_t offset, uint32_t length,
                           unsigned encoding, uint32_t payload_length);

/*
 * Iterate over the chunks of a READ_REPLY payload.  Start with *@pos = 0 and
 * *@next = req->offset.  Each call decodes one chunk, checks it continues
 * exactly at *@next, stays inside @req, uses an encoding allowed by
 * @features (RAW and ZERO always; ZSTD/REF only when negotiated) and has a
 * consistent payload length.  Returns 1 with @c filled, 0 at the end (which
 * is only reached when the chunks cover @req exactly), -1 on error with @why.
 */
int velo_chunk_next(const uint8_t *p, size_t len, size_t *pos,
                    const VeloRange *req, uint64_t *next, uint64_t features,
                    VeloChunk *c, const char **why);

/* --- proto.c: writes (feature WRITE) ------------------------------------ */

/* Encode the WRITE prefix (VELO_WRITE_HDR_SIZE bytes); chunks follow. */
void velo_write_req_encode(uint8_t *buf, const VeloWrite *w);

/*
 * Decode the WRITE prefix: seq and epoch non-zero (epoch below 2^64-1,
 * which only FLUSH uses, to ask), length in 1 ..
 * @max_payload - VELO_WRITE_OVERHEAD, the range inside @disk_size, no
 * unknown flags.  The chunks after it are checked with velo_chunk_next()
 * against the range.
 */
bool velo_write_req_decode(const uint8_t *p, size_t len, uint64_t disk_size,
                           uint32_t max_payload, VeloWrite *w,
                           const char **why);

void velo_write_reply_encode(uint8_t *buf, const VeloWriteReply *r);

/* Decode a WRITE_REPLY to a WRITE of @seq: next_seq must be past @seq. */
bool velo_write_reply_decode(const uint8_t *p, size_t len, uint64_t seq,
                             VeloWriteReply *r, const char **why);

/* FLUSH carries the writer's epoch (8 bytes). */
void velo_flush_req_encode(uint8_t *buf, uint64_t epoch);
bool velo_flush_req_decode(const uint8_t *p, size_t len, uint64_t *epoch,
                           const char **why);

void velo_flush_reply_encode(uint8_t *buf, const VeloFlushReply *r);
bool velo_flush_reply_decode(const uint8_t *p, size_t len, VeloFlushReply *r,
                             const char **why);

#endif
