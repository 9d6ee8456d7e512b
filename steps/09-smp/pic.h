/* The PC's two 8259 programmable interrupt controllers: sixteen device lines onto the CPU. */
#pragma once

#include <stdint.h>

#define PIC_LINES 16
/* Where the sixteen lines land in the IDT: just past the CPU's 32 exceptions. */
#define PIC_FIRST_VECTOR 32

/* Remap the lines to vectors 32-47 and mask them all. */
void pic_init(void);
