/*
 * The slot table and the line in front of it. Both are small and fixed, so a crowd of
 * generation requests costs no memory beyond the bound: what does not fit is refused.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmdline.h"
#include "kprintf.h"
#include "slots.h"

#define DEFAULT_SLOTS 4
#define MAX_SLOTS 64
/* The line holds this many per slot: each waits for at most that many generations ahead. */
#define WAITING_PER_SLOT 8

static struct slot_info slots[MAX_SLOTS];
static int slot_count = DEFAULT_SLOTS;
static const void *line[MAX_SLOTS * WAITING_PER_SLOT];
static int line_length;

void slots_init(void)
{
    uint64_t asked;

    if (cmdline_get_number("slots", 1, MAX_SLOTS, &asked))
        slot_count = (int)asked;
    kprintf("generate: %d slots, and up to %d requests waiting\n", slot_count,
            slots_waiting_limit());
}

int slots_total(void)
{
    return slot_count;
}

int slots_busy(void)
{
    int busy = 0;

    for (int i = 0; i < slot_count; i++)
        busy += slots[i].busy;
    return busy;
}

int slots_waiting(void)
{
    return line_length;
}

int slots_waiting_limit(void)
{
    return slot_count * WAITING_PER_SLOT;
}

bool slots_enter(const void *waiter)
{
    if (line_length == slots_waiting_limit())
        return false;
    line[line_length++] = waiter;
    return true;
}

static void leave_line(const void *waiter)
{
    int at = 0;

    while (at < line_length && line[at] != waiter)
        at++;
    if (at == line_length)
        return;
    for (line_length--; at < line_length; at++)
        line[at] = line[at + 1];
}

int slots_take(const void *waiter)
{
    if (line_length == 0 || line[0] != waiter)
        return SLOT_NONE;
    for (int i = 0; i < slot_count; i++) {
        if (!slots[i].busy) {
            leave_line(waiter);
            slots[i] = (struct slot_info){ .busy = true };
            return i;
        }
    }
    return SLOT_NONE;
}

void slots_leave(const void *waiter, int slot)
{
    if (slot == SLOT_NONE)
        leave_line(waiter);
    else
        slots[slot].busy = false;
}

struct slot_info *slots_info(int slot)
{
    return &slots[slot];
}
