/*
 * Starting the application processors (APs) and giving them work.
 *
 * The boot processor (BSP) starts each AP the MADT lists, one at a time, with the sequence the
 * Intel MP specification gives: INIT, wait 10 ms, STARTUP, wait 200 us, STARTUP again if the
 * AP has not answered. The AP runs trampoline.S, reaches smp_ap_main on the stack prepared for
 * it, starts its local APIC timer, marks itself online, and waits for work.
 *
 * Work is one function at a time for all CPUs (smp_run). The BSP publishes it by bumping a
 * generation number, does its own share, and waits (wait.h) for the APs to finish theirs.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "acpi.h"
#include "apic.h"
#include "clock.h"
#include "cpu.h"
#include "frames.h"
#include "idt.h"
#include "interrupts.h"
#include "kprintf.h"
#include "memory_map.h"
#include "multiboot2.h"
#include "paging.h"
#include "panic.h"
#include "percpu.h"
#include "pic.h"
#include "smp.h"
#include "string.h"
#include "trampoline.h"
#include "wait.h"
#include "x86.h"

#define AP_STACK_SIZE 16384            /* as boot.S's stack for the BSP */
#define INIT_DELAY_US 10000
#define STARTUP_DELAY_US 200
#define START_TIMEOUT_US 1000000       /* generous: under TCG an AP may wait for a host core */
#define SPIN_BEFORE_HALT_US 200
#define APIC_REGISTERS_SIZE 0x1000
/*
 * Each CPU's timer: as often as the PIT ticked for one CPU in step 05. The boot CPU needs it
 * for its deadlines; the APs have none, but their tick bounds what a lost wake-up (wait.c)
 * could cost to one tick, where it would otherwise hang the CPU.
 */
#define TICK_HZ 50

/* isr.S: the local APIC's two interrupts. */
void wakeup_interrupt_entry(void);
void spurious_interrupt_entry(void);

static int online_count = 1;
static uint32_t timer_counts_per_tick;

/* The current work; written by the BSP only while no AP is reading it. */
static struct {
    smp_work work;
    void *arg;
    int cpu_count;
} job;
static atomic_uint job_generation;     /* bumped once per smp_run */
static atomic_uint job_pending;        /* APs that have not finished the current job */
static bool job_running;

int smp_cpu_count(void)
{
    return online_count;
}

/*
 * Every CPU's local APIC timer counts at the same bus clock, so the BSP times its own against
 * the TSC once, and every CPU uses the result. It interrupts on the vector of the PIT's line
 * in step 05 (TIMER_LINE), so `irq` counts it as the timer; like the PIT's, its interrupt has
 * nothing to do but end a HLT.
 */
static void calibrate_timer(void)
{
    apic_timer_start_counting();
    clock_delay_us(1000000 / TICK_HZ);
    timer_counts_per_tick = apic_timer_counted();
    kprintf("smp: local APIC timer: %u counts per %d ms tick\n", timer_counts_per_tick,
            1000 / TICK_HZ);
}

static void start_timer(void)
{
    apic_timer_start_periodic(PIC_FIRST_VECTOR + TIMER_LINE, timer_counts_per_tick);
}

/* trampoline.S calls this on the AP's own stack, with interrupts disabled. */
__attribute__((noreturn)) void smp_ap_main(struct cpu *cpu)
{
    unsigned seen = atomic_load(&job_generation);

    percpu_enter(cpu);
    idt_load();
    cpu_init_ap();
    apic_enable_local();
    start_timer();
    atomic_store_explicit(&cpu->online, true, memory_order_release);
    for (;;) {
        seen = wait_while(&job_generation, seen);
        job.work(job.arg, cpu->index, job.cpu_count);
        if (atomic_fetch_sub(&job_pending, 1) == 1)
            wake_waiters();
    }
}

void smp_run(smp_work work, void *arg)
{
    if (this_cpu()->index != 0 || job_running)
        panic("smp_run: only the boot processor hands out work, one job at a time");
    job_running = true;
    job.work = work;
    job.arg = arg;
    job.cpu_count = online_count;
    atomic_store_explicit(&job_pending, online_count - 1, memory_order_relaxed);
    atomic_fetch_add(&job_generation, 1);
    wake_waiters();
    work(arg, 0, online_count);
    /* Only the last AP to finish wakes us, so a halted BSP sleeps through the others. */
    for (unsigned pending; (pending = atomic_load(&job_pending)) != 0;)
        wait_while(&job_pending, pending);
    job_running = false;
}

static bool range_is_usable(uint64_t start, uint64_t end)
{
    for (size_t i = 0; i < memory_map_usable_count(); i++)
        if (memory_map_usable(i)->base <= start && end <= memory_map_usable(i)->end)
            return true;
    return false;
}

/* The page must be free RAM that GRUB's boot information does not occupy. */
static void install_trampoline(void)
{
    uint64_t size = (uint64_t)(trampoline_end - trampoline_start);
    uint64_t info = multiboot2_info_address();

    if (size > FRAME_SIZE || !range_is_usable(TRAMPOLINE_ADDRESS, TRAMPOLINE_ADDRESS + FRAME_SIZE)
        || (info < TRAMPOLINE_ADDRESS + FRAME_SIZE &&
            TRAMPOLINE_ADDRESS < info + multiboot2_info_size()))
        panic("smp: no room for the %lu-byte trampoline at 0x%x", size, TRAMPOLINE_ADDRESS);
    /* The AP loads CR3 while still in 32-bit mode. */
    if (read_cr3() >> 32)
        panic("smp: the page tables are above 4 GiB");
    memcpy((void *)TRAMPOLINE_ADDRESS, trampoline_start, size);
}

static volatile struct trampoline_parameters *parameters(void)
{
    return (volatile struct trampoline_parameters *)(TRAMPOLINE_ADDRESS +
                                                     (trampoline_parameters - trampoline_start));
}

static bool wait_online(struct cpu *cpu, uint64_t microseconds)
{
    uint64_t deadline = rdtsc() + clock_us_to_tsc(microseconds);

    while (!atomic_load_explicit(&cpu->online, memory_order_acquire)) {
        if (rdtsc() > deadline)
            return false;
        cpu_relax();
    }
    return true;
}

/*
 * INIT, STARTUP, and a second STARTUP only if the first was missed (a STARTUP reaching a
 * running CPU is ignored anyway). An AP that never answers gets INIT again, which parks it,
 * so it cannot wake up later on a stack that has been handed to the next one.
 */
static bool start_ap(struct cpu *cpu)
{
    volatile struct trampoline_parameters *p = parameters();

    p->page_table = read_cr3();
    p->stack_top = cpu->stack_top;
    p->cpu = (uint64_t)cpu;
    apic_send_init(cpu->apic_id);
    clock_delay_us(INIT_DELAY_US);
    apic_send_startup(cpu->apic_id, TRAMPOLINE_ADDRESS);
    if (!wait_online(cpu, STARTUP_DELAY_US))
        apic_send_startup(cpu->apic_id, TRAMPOLINE_ADDRESS);
    if (wait_online(cpu, START_TIMEOUT_US))
        return true;
    apic_send_init(cpu->apic_id);
    return false;
}

static uint64_t new_stack(void)
{
    uint64_t bottom = frame_alloc_contiguous(AP_STACK_SIZE / FRAME_SIZE);

    if (!bottom)
        panic("smp: out of memory for CPU stacks");
    return bottom + AP_STACK_SIZE;
}

static void start_all_aps(const struct acpi_madt_info *madt)
{
    for (int i = 0; i < madt->cpu_count; i++) {
        struct cpu *cpu = percpu_cpu(online_count);

        if (madt->cpu_apic_ids[i] == this_cpu()->apic_id)
            continue;
        cpu->index = online_count;
        cpu->apic_id = madt->cpu_apic_ids[i];
        if (!cpu->stack_top)
            cpu->stack_top = new_stack();
        if (start_ap(cpu))
            online_count++;
        else
            kprintf("smp: the CPU with APIC id %u did not start\n", cpu->apic_id);
    }
}

/*
 * The boot CPU's local APIC, which sends the IPIs below and runs the boot CPU's timer. Its
 * registers must not be cached. The 8259s stay masked (pic.c): the I/O APIC has the lines now.
 */
static void init_local_apic(const struct acpi_madt_info *madt)
{
    paging_map_uncached(madt->local_apic_address, APIC_REGISTERS_SIZE);
    idt_set_handler(APIC_WAKEUP_VECTOR, wakeup_interrupt_entry);
    idt_set_handler(APIC_SPURIOUS_VECTOR, spurious_interrupt_entry);
    apic_init(madt->local_apic_address);
    this_cpu()->apic_id = apic_id();
    calibrate_timer();
    interrupt_register(TIMER_LINE, "timer", NULL);
    start_timer();
}

void smp_init(void)
{
    const struct acpi_madt_info *madt = acpi_madt();
    uint64_t start = clock_ms();

    init_local_apic(madt);
    wait_init(clock_us_to_tsc(SPIN_BEFORE_HALT_US));
    install_trampoline();
    start_all_aps(madt);
    kprintf("smp: boot CPU has APIC id %u; started %d more in %lu ms\n", this_cpu()->apic_id,
            online_count - 1, clock_ms() - start);
    kprintf("CPUs online: %d/%d\n", online_count, madt->cpu_count);
}
