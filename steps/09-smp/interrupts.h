/* Device interrupts as wake-ups for the main loop, and the halt that waits for them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "idt.h"

/* The timer's line: the PIT's on the 8259. */
#define TIMER_LINE 0

void interrupts_init(void);
/* Route a device line (0-15) to handler, which must make the device drop the line. */
void interrupt_register(uint8_t line, const char *name, void (*handler)(void));
void interrupt_dispatch(struct trap_frame *frame);
/* Halt until an interrupt comes, unless work_waiting() says there is work already. */
void wait_for_interrupt(bool (*work_waiting)(void));
void interrupts_print(void);
/* For /metrics: a line's device (NULL when none registered) and its interrupts so far. */
const char *interrupt_name(uint8_t line);
uint64_t interrupt_count(uint8_t line);
