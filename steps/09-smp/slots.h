/*
 * Generation slots, as llama.cpp's server has them. At most slots_total() generations run at
 * once, interleaved a token at a time; more wait in line, first come first served, up to a
 * bound; a request beyond that is refused with 503, since a longer line helps nobody: its
 * client would wait longer than it would take to come back.
 *
 * A waiter is any pointer that names one generation (generate.c passes its own record).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define SLOT_NONE (-1)

/* What /slots shows of a slot. */
struct slot_info {
    bool busy;
    uint64_t task;         /* which generation, numbered from 1 */
    int prompt_tokens;
    int decoded;           /* tokens generated so far */
    bool stream;
};

/* slots=N on the command line, or 4. */
void slots_init(void);
int slots_total(void);
int slots_busy(void);
int slots_waiting(void);
int slots_waiting_limit(void);
/* Get in line; false (and nothing changed) when the line is full. */
bool slots_enter(const void *waiter);
/* A free slot for the waiter if it is first in line (it leaves the line), else SLOT_NONE. */
int slots_take(const void *waiter);
/* Done: give back the slot, or leave the line if no slot was taken yet. */
void slots_leave(const void *waiter, int slot);
struct slot_info *slots_info(int slot);
