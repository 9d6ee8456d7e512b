/*
 * A barrier: no CPU leaves barrier_wait until all `total` have arrived. It is sense-reversing
 * with the sense kept as a generation counter: the last CPU to arrive resets the count and
 * bumps the generation, which releases the others. Waiters watch the generation, not the
 * count, so the barrier can be reused at once: a fast CPU arriving for the next round cannot
 * confuse a slow one still leaving this round.
 */
#pragma once

#include <stdatomic.h>
#include "wait.h"

struct barrier {
    atomic_uint arrived;
    atomic_uint generation;
    unsigned total;
};

static inline void barrier_init(struct barrier *barrier, unsigned total)
{
    atomic_init(&barrier->arrived, 0);
    atomic_init(&barrier->generation, 0);
    barrier->total = total;
}

static inline void barrier_wait(struct barrier *barrier)
{
    unsigned generation = atomic_load_explicit(&barrier->generation, memory_order_acquire);

    if (atomic_fetch_add_explicit(&barrier->arrived, 1, memory_order_acq_rel) + 1 ==
        barrier->total) {
        atomic_store_explicit(&barrier->arrived, 0, memory_order_relaxed);
        /* Sequentially consistent, as wake_waiters needs: no later load moves above it. */
        atomic_store(&barrier->generation, generation + 1);
        wake_waiters();
        return;
    }
    wait_while(&barrier->generation, generation);
}
