/*
 * Velo WAN protocol v1 codec: see proto.h for the contract and
 * docs/protocol.rst for the wire format.  Pure code (GLib only).
 *
 * Every decoder follows the same pattern: check the payload length first,
 * then read fields with the get_* helpers, then validate values against the
 * request or the negotiated limits.  Nothing is allocated before the lengths
 * that bound it have been checked.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "bytes.h"
#include <errno.h>
#include "proto.h"

static const char *const msg_names[VELO_MSG__MAX] = {
    [VELO_MSG_HELLO] = "HELLO",
    [VELO_MSG_HELLO_REPLY] = "HELLO_REPLY",
    [VELO_MSG_ERROR] = "ERROR",
    [VELO_MSG_MAP] = "MAP",
    [VELO_MSG_MAP_REPLY] = "MAP_REPLY",
    [VELO_MSG_READ] = "READ",
    [VELO_MSG_READ_REPLY] = "READ_REPLY",
    [VELO_MSG_WRITE] = "WRITE",
    [VELO_MSG_WRITE_REPLY] = "WRITE_REPLY",
    [VELO_MSG_FLUSH] = "FLUSH",
    [VELO_MSG_FLUSH_REPLY] = "FLUSH_REPLY",
    [VELO_MSG_DISCONNECT] = "DISCONNECT",
    [VELO_MSG_PING] = "PING",
    [VELO_MSG_PONG] = "PONG",
    [VELO_MSG_PROMOTE] = "PROMOTE",
};

static const struct {
    const char *name;
    int err;
} status_table[VELO_E__MAX] = {
    [VELO_OK] = { "OK", 0 },
    [VELO_E_INVAL] = { "INVAL", EINVAL },
    [VELO_E_NOENT] = { "NOENT", ENOENT },
    [VELO_E_IO] = { "IO", EIO },
    [VELO_E_NOTSUP] = { "NOTSUP", ENOTSUP },
    [VELO_E_RANGE] = { "RANGE", ERANGE },
    [VELO_E_PROTO] = { "PROTO", EPROTO },
    [VELO_E_BUSY] = { "BUSY", EBUSY },
    [VELO_E_SHUTDOWN] = { "SHUTDOWN", ESHUTDOWN },
    [VELO_E_VERSION] = { "VERSION", EPROTONOSUPPORT },
    [VELO_E_PERM] = { "PERM", EPERM },
    [VELO_E_SEQ] = { "SEQ", EILSEQ },
    [VELO_E_STALE] = { "STALE", ESTALE },
};

const char *velo_msg_name(unsigned type)
{
    return type < VELO_MSG__MAX && msg_names[type] ? msg_names[type] : "?";
}

const char *velo_status_name(unsigned status)
{
    return status < VELO_E__MAX ? status_table[status].name : "?";
}

int velo_status_to_errno(unsigned status)
{
    return status < VELO_E__MAX ? -status_table[status].err : -EIO;
}


static bool fail(const char **why, const char *msg)
{
    *why = msg;
    return false;
}

/* --- header ---------------------------------------------------------- */

void velo_hdr_encode(uint8_t *buf, const VeloHdr *h)
{
    velo_put32(buf, VELO_MAGIC);
    velo_put16(buf + 4, h->type);
    velo_put16(buf + 6, h->flags);
    velo_put64(buf + 8, h->handle);
    velo_put32(buf + 16, h->length);
    velo_put32(buf + 20, h->status);
}

bool velo_hdr_decode(const uint8_t *buf, uint32_t max_payload, VeloHdr *h,
                     const char **why)
{
    if (velo_get32(buf) != VELO_MAGIC) {
        return fail(why, "bad frame magic (not a velo peer?)");
    }
    h->type = velo_get16(buf + 4);
    h->flags = velo_get16(buf + 6);
    h->handle = velo_get64(buf + 8);
    h->length = velo_get32(buf + 16);
    h->status = velo_get32(buf + 20);
    if (h->type == 0 || h->type >= VELO_MSG__MAX) {
        return fail(why, "unknown frame type");
    }
    if (h->length > max_payload) {
        return fail(why, "frame payload longer than the negotiated maximum");
    }
    return true;
}

/* --- handshake ------------------------------------------------------- */

size_t velo_hello_encode(uint8_t *buf, const VeloHello *m)
{
    size_t n = strnlen(m->name, VELO_MAX_STRING);

    velo_put16(buf, m->version_min);
    velo_put16(buf + 2, m->version_max);
    velo_put32(buf + 4, 0);
    velo_put64(buf + 8, m->features);
    velo_put16(buf + 16, n);
    memcpy(buf + 18, m->name, n);
    if (m->features & VELO_F_HASH) {
        memcpy(buf + 18 + n, m->store_id, VELO_STORE_ID_SIZE);
        return 18 + n + VELO_STORE_ID_SIZE;
    }
    return 18 + n;
}

bool velo_hello_decode(const uint8_t *p, size_t len, VeloHello *m,
                       const char **why)
{
    size_t n;

    if (len < 18) {
        return fail(why, "HELLO too short");
    }
    m->version_min = velo_get16(p);
    m->version_max = velo_get16(p + 2);
    m->features = velo_get64(p + 8);
    n = velo_get16(p + 16);
    if (n == 0 || n > VELO_MAX_STRING) {
        return fail(why, "export name length out of range (1..4096)");
    }
    if (len != 18 + n + (m->features & VELO_F_HASH ? VELO_STORE_ID_SIZE
                                                   : 0)) {
        return fail(why, "HELLO length does not match its export name "
                    "(and store id, with feature HASH)");
    }
    if (memchr(p + 18, 0, n)) {
        return fail(why, "export name contains a NUL byte");
    }
    if (m->version_min > m->version_max) {
        return fail(why, "HELLO version range is empty");
    }
    memcpy(m->name, p + 18, n);
    m->name[n] = 0;
    if (m->features & VELO_F_HASH) {
        memcpy(m->store_id, p + 18 + n, VELO_STORE_ID_SIZE);
    }
    return true;
}

unsigned velo_pick_version(unsigned client_min, unsigned client_max)
{
    unsigned hi = MIN(client_max, VELO_VERSION_MAX);
    unsigned lo = MAX(client_min, VELO_VERSION_MIN);

    return lo <= hi ? hi : 0;
}

void velo_hello_reply_encode(uint8_t *buf, const VeloHelloReply *m)
{
    velo_put16(buf, m->version);
    velo_put16(buf + 2, 0);
    velo_put32(buf + 4, m->extent_size);
    velo_put64(buf + 8, m->features);
    velo_put64(buf + 16, m->disk_size);
    velo_put32(buf + 24, m->max_payload);
    velo_put32(buf + 28, m->max_inflight);
    velo_put64(buf + 32, m->export_flags);
    memcpy(buf + 40, m->disk_id, VELO_DISK_ID_SIZE);
}

bool velo_hello_reply_decode(const uint8_t *p, size_t len,
                             uint64_t client_features, VeloHelloReply *m,
                             const char **why)
{
    if (len != VELO_HELLO_REPLY_SIZE) {
        return fail(why, "HELLO_REPLY has the wrong length");
    }
    m->version = velo_get16(p);
    m->extent_size = velo_get32(p + 4);
    m->features = velo_get64(p + 8);
    m->disk_size = velo_get64(p + 16);
    m->max_payload = velo_get32(p + 24);
    m->max_inflight = velo_get32(p + 28);
    m->export_flags = velo_get64(p + 32);
    memcpy(m->disk_id, p + 40, VELO_DISK_ID_SIZE);

    if (m->version < VELO_VERSION_MIN || m->version > VELO_VERSION_MAX) {
        return fail(why, "server chose a protocol version we did not offer");
    }
    if (m->features & ~client_features) {
        return fail(why, "server accepted features we did not offer");
    }
    if (m->extent_size < VELO_MIN_EXTENT || m->extent_size > VELO_MAX_EXTENT ||
        (m->extent_size & (m->extent_size - 1))) {
        return fail(why, "extent size is not a power of two from 4 KiB to 4 MiB");
    }
    if (m->disk_size > VELO_MAX_DISK_SIZE) {
        return fail(why, "disk size too large");
    }
    if ((m->disk_size + m->extent_size - 1) / m->extent_size >
        VELO_MAX_EXTENTS) {
        return fail(why, "disk has too many extents (over 2^28): use a "
                    "larger extent-size on the export");
    }
    if (m->max_payload < m->extent_size + VELO_READ_OVERHEAD ||
        m->max_payload > VELO_MAX_PAYLOAD_LIMIT) {
        return fail(why, "max-payload out of range");
    }
    if (m->max_inflight == 0) {
        return fail(why, "max-inflight is zero");
    }
    return true;
}

/* --- ERROR ----------------------------------------------------------- */

size_t velo_error_encode(uint8_t *buf, const char *msg)
{
    size_t n = strnlen(msg, VELO_MAX_STRING);

    velo_put16(buf, n);
    memcpy(buf + 2, msg, n);
    return 2 + n;
}

bool velo_error_decode(const uint8_t *p, size_t len, char **msg,
                       const char **why)
{
    size_t n, i;
    char *s;

    if (len < 2) {
        return fail(why, "ERROR too short");
    }
    n = velo_get16(p);
    if (n > VELO_MAX_STRING || len != 2 + n) {
        return fail(why, "ERROR message length is inconsistent");
    }
    s = g_malloc(n + 1);
    for (i = 0; i < n; i++) {
        /* Keep printable ASCII and UTF-8 bytes; a hostile peer gets no escapes. */
        s[i] = (p[2 + i] >= 0x20 && p[2 + i] != 0x7f) ? (char)p[2 + i] : '?';
    }
    s[n] = 0;
    *msg = s;
    return true;
}

/* --- MAP and READ requests -------------------------------------------- */

static size_t range_encode(uint8_t *buf, const VeloRange *r, bool read)
{
    velo_put64(buf, r->offset);
    if (read) {
        velo_put32(buf + 8, (uint32_t)r->length);
        velo_put32(buf + 12, r->flags);
    } else {
        velo_put64(buf + 8, r->length);
    }
    return 16;
}

size_t velo_map_req_encode(uint8_t *buf, const VeloRange *r)
{
    return range_encode(buf, r, false);
}

size_t velo_read_req_encode(uint8_t *buf, const VeloRange *r)
{
    return range_encode(buf, r, true);
}

void velo_read_req_add_flags(uint8_t *buf, uint32_t flags)
{
    velo_put32(buf + 12, velo_get32(buf + 12) | flags);
}

bool velo_map_req_decode(const uint8_t *p, size_t len, uint64_t disk_size,
                         VeloRange *r, const char **why)
{
    if (len != 16) {
        return fail(why, "MAP request has the wrong length");
    }
    r->offset = velo_get64(p);
    r->length = velo_get64(p + 8);
    if (r->length == 0) {
        return fail(why, "MAP of zero length");
    }
    if (r->offset > disk_size || r->length > disk_size - r->offset) {
        return fail(why, "MAP beyond the end of the disk");
    }
    return true;
}

bool velo_read_req_decode(const uint8_t *p, size_t len, uint64_t disk_size,
                          uint32_t extent_size, uint32_t max_payload,
                          VeloRange *r, const char **why)
{
    if (len != 16) {
        return fail(why, "READ request has the wrong length");
    }
    r->offset = velo_get64(p);
    r->length = velo_get32(p + 8);
    r->flags = velo_get32(p + 12);
    if (r->flags & ~VELO_READ_KNOWN_FLAGS) {
        return fail(why, "READ with unknown flags");
    }
    if (r->length == 0) {
        return fail(why, "READ of zero length");
    }
    if (r->offset > disk_size || r->length > disk_size - r->offset) {
        return fail(why, "READ beyond the end of the disk");
    }
    if (r->offset % extent_size) {
        return fail(why, "READ offset is not extent-aligned");
    }
    if (r->length % extent_size && r->offset + r->length != disk_size) {
        return fail(why, "READ length is not a multiple of the extent size");
    }
    if (r->length > max_payload - VELO_READ_OVERHEAD) {
        return fail(why, "READ longer than max-payload allows");
    }
    return true;
}

/* --- MAP_REPLY ------------------------------------------------------- */

uint32_t velo_map_max_entries(uint32_t max_payload)
{
    return max_payload < 4 ? 0 : (max_payload - 4) / VELO_MAP_ENTRY_SIZE;
}

size_t velo_map_reply_encode(uint8_t *buf, const VeloMapEntry *e, uint32_t n)
{
    uint32_t i;

    velo_put32(buf, n);
    for (i = 0; i < n; i++) {
        uint8_t *q = buf + 4 + (size_t)i * VELO_MAP_ENTRY_SIZE;
        velo_put64(q, e[i].offset);
        velo_put64(q + 8, e[i].length);
        velo_put32(q + 16, e[i].kind);
        velo_put32(q + 20, 0);
    }
    return 4 + (size_t)n * VELO_MAP_ENTRY_SIZE;
}

bool velo_map_reply_decode(const uint8_t *p, size_t len, const VeloRange *req,
                           VeloMapEntry **entries, uint32_t *n,
                           const char **why)
{
    uint64_t next = req->offset, end = req->offset + req->length;
    g_autofree VeloMapEntry *e = NULL;
    uint32_t count, i;

    if (len < 4) {
        return fail(why, "MAP_REPLY too short");
    }
    count = velo_get32(p);
    if (count == 0) {
        return fail(why, "MAP_REPLY has no entries");
    }
    if ((len - 4) / VELO_MAP_ENTRY_SIZE != count ||
        (len - 4) % VELO_MAP_ENTRY_SIZE) {
        return fail(why, "MAP_REPLY length does not match its entry count");
    }
    e = g_new(VeloMapEntry, count);
    for (i = 0; i < count; i++) {
        const uint8_t *q = p + 4 + (size_t)i * VELO_MAP_ENTRY_SIZE;
        e[i].offset = velo_get64(q);
        e[i].length = velo_get64(q + 8);
        e[i].kind = velo_get32(q + 16);
        if (e[i].offset != next) {
            return fail(why, "MAP_REPLY entries are not contiguous");
        }
        if (e[i].length == 0 || e[i].length > end - next) {
            return fail(why, "MAP_REPLY entry empty or beyond the request");
        }
        if (e[i].kind >= VELO_MAP__MAX) {
            return fail(why, "MAP_REPLY entry of unknown kind");
        }
        next += e[i].length;
    }
    *entries = g_steal_pointer(&e);
    *n = count;
    return true;
}

/* --- chunks ---------------------------------------------------------- */

void velo_chunk_hdr_encode(uint8_t *buf, uint64_t offset, uint32_t length,
                           unsigned encoding, uint32_t payload_length)
{
    velo_put64(buf, offset);
    velo_put32(buf + 8, length);
    velo_put16(buf + 12, encoding);
    velo_put16(buf + 14, 0);
    velo_put32(buf + 16, payload_length);
}

int velo_chunk_next(const uint8_t *p, size_t len, size_t *pos,
                    const VeloRange *req, uint64_t *next, uint64_t features,
                    VeloChunk *c, const char **why)
{
    uint64_t end = req->offset + req->length;
    const uint8_t *q;

    if (*pos == len) {
        if (*next != end) {
            *why = "chunks end before the requested range does";
            return -1;
        }
        return 0;
    }
    if (len - *pos < VELO_CHUNK_HDR_SIZE) {
        *why = "truncated chunk header";
        return -1;
    }
    q = p + *pos;
    c->offset = velo_get64(q);
    c->length = velo_get32(q + 8);
    c->encoding = velo_get16(q + 12);
    c->payload_length = velo_get32(q + 16);
    if (c->offset != *next) {
        *why = "chunk does not continue where the previous one ended";
        return -1;
    }
    if (c->length == 0 || c->length > end - *next) {
        *why = "chunk empty or beyond the requested range";
        return -1;
    }
    switch (c->encoding) {
    case VELO_ENC_RAW:
        if (c->payload_length != c->length) {
            *why = "RAW chunk payload length differs from its length";
            return -1;
        }
        break;
    case VELO_ENC_ZERO:
        if (c->payload_length != 0) {
            *why = "ZERO chunk carries a payload";
            return -1;
        }
        break;
    case VELO_ENC_ZSTD:
        if (!(features & VELO_F_ZSTD) || c->payload_length == 0) {
            *why = "ZSTD chunk without the ZSTD feature, or empty";
            return -1;
        }
        break;
    case VELO_ENC_REF:
        if (!(features & VELO_F_HASH) || c->payload_length != 32) {
            *why = "REF chunk without the HASH feature, or malformed";
            return -1;
        }
        break;
    default:
        *why = "chunk of unknown encoding";
        return -1;
    }
    if (c->payload_length > len - *pos - VELO_CHUNK_HDR_SIZE) {
        *why = "chunk payload runs past the end of the frame";
        return -1;
    }
    c->payload = q + VELO_CHUNK_HDR_SIZE;
    *pos += VELO_CHUNK_HDR_SIZE + c->payload_length;
    *next += c->length;
    return 1;
}

/* --- writes ------------------------------------------------------------ */

/* WRITE prefix: epoch 0, seq 8, offset 16, length 24, flags 28. */
void velo_write_req_encode(uint8_t *buf, const VeloWrite *w)
{
    velo_put64(buf, w->epoch);
    velo_put64(buf + 8, w->seq);
    velo_put64(buf + 16, w->offset);
    velo_put32(buf + 24, w->length);
    velo_put32(buf + 28, w->flags);
}

bool velo_write_req_decode(const uint8_t *p, size_t len, uint64_t disk_size,
                           uint32_t max_payload, VeloWrite *w,
                           const char **why)
{
    if (len < VELO_WRITE_HDR_SIZE) {
        return fail(why, "WRITE payload too short");
    }
    w->epoch = velo_get64(p);
    w->seq = velo_get64(p + 8);
    w->offset = velo_get64(p + 16);
    w->length = velo_get32(p + 24);
    w->flags = velo_get32(p + 28);
    if (w->epoch == 0 || w->seq == 0) {
        return fail(why, "WRITE with a zero epoch or sequence number");
    }
    if (w->epoch == UINT64_MAX) {
        return fail(why, "WRITE with epoch 2^64-1 (reserved for FLUSH "
                    "queries)");
    }
    if (w->flags) {
        return fail(why, "WRITE with unknown flags");
    }
    if (w->length == 0 || max_payload < VELO_WRITE_OVERHEAD ||
        w->length > max_payload - VELO_WRITE_OVERHEAD) {
        return fail(why, "WRITE length zero or over the payload limit");
    }
    if (w->offset > disk_size || w->length > disk_size - w->offset) {
        return fail(why, "WRITE beyond the end of the disk");
    }
    return true;
}

/* WRITE_REPLY: result 0, reserved 4, next seq 8. */
void velo_write_reply_encode(uint8_t *buf, const VeloWriteReply *r)
{
    velo_put32(buf, r->result);
    velo_put32(buf + 4, 0);
    velo_put64(buf + 8, r->next_seq);
}

bool velo_write_reply_decode(const uint8_t *p, size_t len, uint64_t seq,
                             VeloWriteReply *r, const char **why)
{
    if (len != VELO_WRITE_REPLY_SIZE) {
        return fail(why, "WRITE_REPLY of the wrong size");
    }
    r->result = velo_get32(p);
    r->next_seq = velo_get64(p + 8);
    if (r->result > VELO_WRITE_DUPLICATE) {
        return fail(why, "WRITE_REPLY with an unknown result");
    }
    if (r->next_seq <= seq) {
        return fail(why, "WRITE_REPLY does not move past the write");
    }
    return true;
}

void velo_flush_req_encode(uint8_t *buf, uint64_t epoch)
{
    velo_put64(buf, epoch);
}

bool velo_flush_req_decode(const uint8_t *p, size_t len, uint64_t *epoch,
                           const char **why)
{
    if (len != VELO_FLUSH_SIZE) {
        return fail(why, "FLUSH payload of the wrong size");
    }
    *epoch = velo_get64(p);
    if (*epoch == 0) {
        return fail(why, "FLUSH with a zero epoch");
    }
    return true;
}

/* FLUSH_REPLY: durable seq 0, epoch 8. */
void velo_flush_reply_encode(uint8_t *buf, const VeloFlushReply *r)
{
    velo_put64(buf, r->durable_seq);
    velo_put64(buf + 8, r->epoch);
}

bool velo_flush_reply_decode(const uint8_t *p, size_t len, VeloFlushReply *r,
                             const char **why)
{
    if (len != VELO_FLUSH_REPLY_SIZE) {
        return fail(why, "FLUSH_REPLY of the wrong size");
    }
    r->durable_seq = velo_get64(p);
    r->epoch = velo_get64(p + 8);
    return true;
}
