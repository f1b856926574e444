/*
 * Velo data buffers: the big, short-lived buffers that hold extent data
 * (RAM-tier extents, fetch buffers, frame payloads from the server).
 *
 * A buffer of VELO_DATABUF_MMAP bytes or more is mapped from the kernel
 * for itself and unmapped when freed, never carved from the malloc heap.
 * Freed data then goes back at once, and the heap cannot fragment around
 * it, so the node's resident memory follows what ram-size accounts for
 * (s->ram_count and s->buf_bytes, fetch.c).  Smaller buffers come from
 * g_malloc.  Mappings are page-aligned, which is enough for any block
 * node's buffer alignment.
 *
 * The caller frees a buffer with the size it asked for.  Thread-safe.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef BLOCK_VELO_DATABUF_H
#define BLOCK_VELO_DATABUF_H

#include <stddef.h>

#define VELO_DATABUF_MMAP   (16 * 1024)

/* @size bytes (uninitialised), or NULL when the system has no memory. */
void *velo_databuf_try_alloc(size_t size);

/* The same, but aborts like g_malloc when the system has no memory. */
void *velo_databuf_alloc(size_t size);

/* Free @p (may be NULL), a buffer of @size bytes from the above. */
void velo_databuf_free(void *p, size_t size);

/*
 * Frame payloads (conn.c) carry their size in front of the data, so that
 * whoever ends up with one frees it without being told its size.
 */
void *velo_payload_try_alloc(size_t size);
void velo_payload_free(void *p);


/*
 * Data buffers under VELO_DATABUF_MMAP, and the node's other small
 * allocations, come from the malloc heap, which keeps the pages of freed
 * chunks.  velo_heap_trim() gives them back to the system (malloc_trim(),
 * as QEMU's RCU thread does after its callbacks), at most once every
 * VELO_HEAP_TRIM_NS in the whole process, so that it is cheap to call
 * after every fetch.
 */
#define VELO_HEAP_TRIM_NS   (250 * 1000 * 1000)
void velo_heap_trim(void);

#endif
