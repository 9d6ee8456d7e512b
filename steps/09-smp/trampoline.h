/*
 * Where the application processors' startup code runs, shared by trampoline.S and smp.c.
 * A STARTUP IPI can only start a CPU at a page boundary below 1 MiB; frames.c keeps all of
 * low memory out of the allocator, so this page is free once GRUB is done with it.
 */
#pragma once

#define TRAMPOLINE_ADDRESS 0x8000

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Filled in by the boot processor before it starts each AP; read by trampoline.S. */
struct trampoline_parameters {
    uint64_t page_table;   /* CR3: the same page tables as the boot processor */
    uint64_t stack_top;    /* this AP's own stack */
    uint64_t cpu;          /* this AP's struct cpu, smp_ap_main's argument */
};

extern const char trampoline_start[], trampoline_end[], trampoline_parameters[];
#endif
