/* The table of struct cpu, one per CPU the MADT may list, and each CPU's GS base into it. */
#include <stdbool.h>
#include "acpi.h"
#include "percpu.h"
#include "x86.h"

#define MSR_GS_BASE 0xC0000101

static struct cpu cpus[ACPI_MAX_CPUS];

void percpu_enter(struct cpu *cpu)
{
    cpu->self = cpu;
    cpu->started_tsc = rdtsc();
    wrmsr(MSR_GS_BASE, (uint64_t)cpu);
}

void percpu_init_boot_cpu(void)
{
    percpu_enter(&cpus[0]);
    atomic_store(&cpus[0].online, true);
}

struct cpu *percpu_cpu(int index)
{
    return &cpus[index];
}
