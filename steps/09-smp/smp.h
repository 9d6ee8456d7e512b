/* Symmetric multiprocessing: starting the other CPUs, and handing them work. */
#pragma once

#include <stdint.h>

/* The work smp_run hands out: called once on each CPU, with cpu = 0 .. cpu_count - 1. */
typedef void (*smp_work)(void *arg, int cpu, int cpu_count);

/* This CPU's share [*begin, *end) of total items: contiguous, in CPU order, sizes within 1. */
static inline void smp_share(uint64_t total, int cpu, int cpu_count, uint64_t *begin,
                             uint64_t *end)
{
    *begin = total * (uint64_t)cpu / (uint64_t)cpu_count;
    *end = total * (uint64_t)(cpu + 1) / (uint64_t)cpu_count;
}

void smp_init(void);
int smp_cpu_count(void);
void smp_run(smp_work work, void *arg);
