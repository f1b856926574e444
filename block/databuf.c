/*
 * Velo data buffers: mapped for themselves when big, so that freeing one
 * returns it to the system, and the heap's free pages given back now and
 * then (see databuf.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include <sys/mman.h>
#ifdef CONFIG_MALLOC_TRIM
#include <malloc.h>
#endif
#include "qemu/atomic.h"
#include "qemu/timer.h"
#include "databuf.h"

void *velo_databuf_try_alloc(size_t size)
{
    void *p;

    if (size < VELO_DATABUF_MMAP) {
        return g_try_malloc(size ? size : 1);
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *velo_databuf_alloc(size_t size)
{
    void *p = velo_databuf_try_alloc(size);

    if (!p) {
        g_error("velo: out of memory for a %zu-byte data buffer", size);
    }
    return p;
}

void velo_databuf_free(void *p, size_t size)
{
    if (!p) {
        return;
    }
    if (size < VELO_DATABUF_MMAP) {
        g_free(p);
    } else {
        munmap(p, size);
    }
}

/*
 * A payload is a buffer of 16 + @size bytes whose first 8 hold @size; the
 * caller gets the bytes after the 16 (so 16-byte alignment is kept).
 */
#define PAYLOAD_HDR 16

void *velo_payload_try_alloc(size_t size)
{
    uint8_t *p;

    if (size > SIZE_MAX - PAYLOAD_HDR) {
        return NULL;
    }
    p = velo_databuf_try_alloc(size + PAYLOAD_HDR);
    if (!p) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    return p + PAYLOAD_HDR;
}

void velo_payload_free(void *p)
{
    uint8_t *base;
    size_t size;

    if (!p) {
        return;
    }
    base = (uint8_t *)p - PAYLOAD_HDR;
    memcpy(&size, base, sizeof(size));
    velo_databuf_free(base, size + PAYLOAD_HDR);
}

void velo_heap_trim(void)
{
#ifdef CONFIG_MALLOC_TRIM
    /* When the process last trimmed; any thread may call. */
    static int64_t last_ns;
    int64_t now = get_clock();
    int64_t last = qatomic_read(&last_ns);

    if (now - last < VELO_HEAP_TRIM_NS ||
        qatomic_cmpxchg(&last_ns, last, now) != last) {
        return;
    }
    malloc_trim(0);
#endif
}
