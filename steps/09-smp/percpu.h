/*
 * Per-CPU data: each CPU has a struct cpu of its own, and finds it through its GS base, a
 * register that every CPU has its own copy of. Nothing here depends on how the CPUs were
 * started, so the lowest files (kprintf.c, idt.c) can ask which CPU they run on.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Cache-line aligned so that CPUs never share a line. */
struct cpu {
    struct cpu *self;      /* first: this_cpu() reads it with one GS-relative load */
    int index;             /* 0 for the boot processor, then 1, 2, ... in start order */
    uint32_t apic_id;
    uint64_t stack_top;    /* 0 for the boot processor, which keeps boot.S's stack */
    atomic_bool online;
    uint64_t started_tsc;  /* when it entered the kernel */
    uint64_t halted_tsc;   /* time spent in HLT since, for the shell's `irq` */
} __attribute__((aligned(64)));

static inline struct cpu *this_cpu(void)
{
    struct cpu *cpu;

    __asm__("mov %%gs:0, %0" : "=r"(cpu));
    return cpu;
}

/* Before anything prints: kprintf asks this_cpu() which CPU holds the console. */
void percpu_init_boot_cpu(void);
/* The struct cpu of the CPU with this index (0 ... ACPI_MAX_CPUS-1), running or not. */
struct cpu *percpu_cpu(int index);
/* Called by each CPU as it starts: from now on this_cpu() returns cpu. */
void percpu_enter(struct cpu *cpu);
