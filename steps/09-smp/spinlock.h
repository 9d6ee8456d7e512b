/*
 * Ticket spinlocks. Taking the lock draws a ticket (next_ticket++); the holder of ticket
 * now_serving owns the lock, and unlocking serves the next ticket. CPUs get the lock in the
 * order they asked for it, so none can starve, unlike a lock that is a single flag everyone
 * races to set.
 *
 * That fairness has a price on virtual machines: if the CPU whose turn is next is not running
 * (its host thread is descheduled), every CPU behind it waits too. So waiters use
 * wait_while, which halts after a short spin and gives the host core back.
 */
#pragma once

#include <stdatomic.h>
#include "wait.h"

struct spinlock {
    atomic_uint next_ticket;
    atomic_uint now_serving;
};

#define SPINLOCK_INIT { 0, 0 }

/*
 * Acquire: nothing the holder does inside the lock can move before taking it. Only the CPU
 * whose turn is next spins; the ones further back halt at once, since every unlock wakes
 * all halted CPUs and a crowd of spinners would only delay the holder.
 */
static inline void spin_lock(struct spinlock *lock)
{
    unsigned ticket = atomic_fetch_add_explicit(&lock->next_ticket, 1, memory_order_relaxed);
    unsigned serving;

    while ((serving = atomic_load_explicit(&lock->now_serving, memory_order_acquire)) != ticket) {
        if (ticket - serving == 1)
            wait_while(&lock->now_serving, serving);
        else
            halt_while(&lock->now_serving, serving);
    }
}

/*
 * Release: everything done inside the lock is visible before the next holder gets it. The
 * store is sequentially consistent because wake_waiters needs it to be.
 */
static inline void spin_unlock(struct spinlock *lock)
{
    unsigned serving = atomic_load_explicit(&lock->now_serving, memory_order_relaxed);

    atomic_store(&lock->now_serving, serving + 1);
    wake_waiters();
}
