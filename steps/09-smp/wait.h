/*
 * Waiting for a word in memory to change, and waking those who wait: what locks, barriers and
 * the hand-out of work are built on. A wait spins for a moment, then halts the CPU until
 * another one changes the word and calls wake_waiters.
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

/* How long a wait spins before it halts, in TSC ticks; 0 until this is called. */
void wait_init(uint64_t spin_tsc);
/* Wait while *word == value; return the new value. */
unsigned wait_while(atomic_uint *word, unsigned value);
/* The same, for a wait that is known to be long: halt without spinning first. */
unsigned halt_while(atomic_uint *word, unsigned value);
/*
 * Call after changing a word that CPUs may wait on. The change must be sequentially consistent
 * (a locked instruction or a seq_cst store), which is what lets wake_waiters see every halter.
 */
void wake_waiters(void);
