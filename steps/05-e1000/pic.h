/* The PC's two 8259 programmable interrupt controllers: sixteen device lines onto the CPU. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define PIC_LINES 16
/* Where the sixteen lines land in the IDT: just past the CPU's 32 exceptions. */
#define PIC_FIRST_VECTOR 32

void pic_init(void);
void pic_unmask(uint8_t line);
/* A line raised with nothing in service (a glitch); the caller owes it no end of interrupt. */
bool pic_spurious(uint8_t line);
void pic_end_of_interrupt(uint8_t line);
