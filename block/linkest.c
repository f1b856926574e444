/*
 * Velo link estimator: delivery rate, round trip and the speculation
 * window (see linkest.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "linkest.h"

#define NS_PER_S 1000000000ULL

bool velo_link_est_sample(VeloLinkEst *l, uint64_t bytes, int64_t interval_ns,
                          int64_t rtt_ns, int64_t now_ns)
{
    unsigned __int128 bps;

    if (interval_ns <= 0 || rtt_ns <= 0) {
        return false;
    }
    bps = MIN((unsigned __int128)bytes * NS_PER_S / (uint64_t)interval_ns,
              UINT64_MAX);
    l->bps = MAX((uint64_t)bps, l->bps - l->bps / 1024);
    if (!l->rtt_ns || rtt_ns <= l->rtt_ns ||
        now_ns - l->rtt_at_ns > VELO_LINK_RTT_WINDOW_NS) {
        l->rtt_ns = rtt_ns;
        l->rtt_at_ns = now_ns;
    }
    return true;
}

uint64_t velo_link_wire_window(uint64_t raw_window, uint64_t wire,
                               uint64_t raw)
{
    unsigned __int128 w;

    if (wire < (1 << 20) || raw <= wire) {
        return raw_window;
    }
    w = MIN((unsigned __int128)raw_window * raw / wire,
            (unsigned __int128)raw_window * 4);
    return MIN(w, UINT64_MAX);
}

uint64_t velo_link_spec_window(const VeloLinkEst *l, uint64_t fetches,
                               uint64_t wire, uint64_t raw)
{
    unsigned __int128 bdp;

    if (fetches < VELO_LINK_MIN_SAMPLES || !l->bps || !l->rtt_ns) {
        return velo_link_wire_window(VELO_RA_INFLIGHT, wire, raw);
    }
    bdp = MIN((unsigned __int128)l->bps * (uint64_t)l->rtt_ns / NS_PER_S,
              VELO_SPEC_MAX / 4);
    return MIN(MAX(velo_link_wire_window(4 * (uint64_t)bdp, wire, raw),
                   VELO_SPEC_MIN), VELO_SPEC_MAX);
}
