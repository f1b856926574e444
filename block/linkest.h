/*
 * Velo's view of the WAN link, from its READ replies, and the speculation
 * window it gives (how many bytes of guesses may be in flight).  Pure code
 * (GLib unit test test-linkest); fetch.c feeds it.
 *
 * After BBR: between the last reply that arrived before a READ was sent
 * and that READ's own reply, @bytes of replies arrived in @interval_ns
 * (its own included).  While the link is busy that is its rate; the rate
 * estimate is the largest sample, decaying by 1/1024 a sample so that it
 * follows a link that slows down.  The round trip is the shortest fetch
 * (from send to reply) seen within VELO_LINK_RTT_WINDOW_NS; an older
 * minimum is forgotten at the next sample, so a route that got longer is
 * learnt (BBR's min_rtt expiry).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef BLOCK_VELO_LINKEST_H
#define BLOCK_VELO_LINKEST_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define VELO_LINK_RTT_WINDOW_NS (10 * 1000000000LL)
#define VELO_LINK_MIN_SAMPLES   8               /* fetches before trusting it */
#define VELO_RA_INFLIGHT        (1u << 20)      /* guesses in flight until the
                                                   link is known */
#define VELO_SPEC_MIN           (256u << 10)    /* ... then 4 BDP, within */
#define VELO_SPEC_MAX           (8u << 20)

typedef struct VeloLinkEst {
    uint64_t bps;               /* delivery rate, bytes/s (0: unknown) */
    int64_t rtt_ns;             /* round trip (0: unknown) */
    int64_t rtt_at_ns;          /* when rtt_ns was sampled */
} VeloLinkEst;

/*
 * One reply: @bytes delivered in @interval_ns, the fetch took @rtt_ns, at
 * time @now_ns (any monotonic clock).  Samples with a non-positive
 * interval or round trip are ignored: returns whether it was taken.
 */
bool velo_link_est_sample(VeloLinkEst *l, uint64_t bytes, int64_t interval_ns,
                          int64_t rtt_ns, int64_t now_ns);

/*
 * @raw_window bytes of data counted on the wire: scaled by the compression
 * seen so far (@raw bytes of data came as @wire bytes), at most 4x, once
 * at least 1 MiB has crossed the wire.
 */
uint64_t velo_link_wire_window(uint64_t raw_window, uint64_t wire,
                               uint64_t raw);

/*
 * How many raw bytes of guesses may be in flight after @fetches fetches:
 * VELO_RA_INFLIGHT (on the wire) until VELO_LINK_MIN_SAMPLES, then four
 * bandwidth-delay products on the wire, within VELO_SPEC_MIN..MAX.
 */
uint64_t velo_link_spec_window(const VeloLinkEst *l, uint64_t fetches,
                               uint64_t wire, uint64_t raw);

#endif
