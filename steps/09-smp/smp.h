/* Symmetric multiprocessing: per-CPU data, starting the other CPUs, and handing them work. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* One per CPU, found through the GS base. Cache-line aligned so CPUs never share a line. */
struct cpu {
    struct cpu *self;      /* first: this_cpu() reads it with one GS-relative load */
    int index;             /* 0 for the boot processor, then 1, 2, ... in start order */
    uint32_t apic_id;
    uint64_t stack_top;    /* 0 for the boot processor, which keeps boot.S's stack */
    atomic_bool online;
} __attribute__((aligned(64)));

/* Each CPU's GS base holds the address of its struct cpu. */
static inline struct cpu *this_cpu(void)
{
    struct cpu *cpu;

    __asm__("mov %%gs:0, %0" : "=r"(cpu));
    return cpu;
}

/* The work smp_run hands out: called once on each CPU, with cpu = 0 .. cpu_count - 1. */
typedef void (*smp_work)(void *arg, int cpu, int cpu_count);

/* This CPU's share [*begin, *end) of total items: contiguous, in CPU order, sizes within 1. */
static inline void smp_share(uint64_t total, int cpu, int cpu_count, uint64_t *begin,
                             uint64_t *end)
{
    *begin = total * (uint64_t)cpu / (uint64_t)cpu_count;
    *end = total * (uint64_t)(cpu + 1) / (uint64_t)cpu_count;
}

void smp_early_init(void);
void smp_init(void);
int smp_cpu_count(void);
void smp_run(smp_work work, void *arg);
unsigned smp_wait_while(atomic_uint *word, unsigned value);
unsigned smp_halt_while(atomic_uint *word, unsigned value);
void smp_wake_waiters(void);
