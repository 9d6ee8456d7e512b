/*
 * Starting the application processors (APs) and giving them work.
 *
 * The boot processor (BSP) starts each AP the MADT lists, one at a time, with the sequence the
 * Intel MP specification gives: INIT, wait 10 ms, STARTUP, wait 200 us, STARTUP again if the
 * AP has not answered. The AP runs trampoline.S, reaches smp_ap_main on the stack prepared for
 * it, marks itself online, and waits for work.
 *
 * Work is one function at a time for all CPUs (smp_run). The BSP publishes it by bumping a
 * generation number, does its own share, and waits for the APs to finish theirs. Every wait
 * (smp_wait_while) spins for a moment and then halts; the CPU that ends the wait wakes halted
 * CPUs with an IPI. Interrupts are enabled only inside that HLT, and only the wake-up IPI
 * can arrive: apic.c masks the 8259s, and nothing else is set up to interrupt.
 */
#include <stdatomic.h>
#include <stdint.h>
#include "acpi.h"
#include "apic.h"
#include "clock.h"
#include "cpu.h"
#include "frames.h"
#include "idt.h"
#include "kprintf.h"
#include "memory_map.h"
#include "multiboot2.h"
#include "panic.h"
#include "smp.h"
#include "string.h"
#include "trampoline.h"
#include "x86.h"

#define MSR_GS_BASE 0xC0000101
#define AP_STACK_SIZE 16384            /* as boot.S's stack for the BSP */
#define INIT_DELAY_US 10000
#define STARTUP_DELAY_US 200
#define START_TIMEOUT_US 1000000       /* generous: under TCG an AP may wait for a host core */
#define SPIN_BEFORE_HALT_US 200

static struct cpu cpus[ACPI_MAX_CPUS];
static int online_count = 1;
static uint64_t spin_before_halt_tsc;

/* The current work; written by the BSP only while no AP is reading it. */
static struct {
    smp_work work;
    void *arg;
    int cpu_count;
} job;
static atomic_uint job_generation;     /* bumped once per smp_run */
static atomic_uint job_pending;        /* APs that have not finished the current job */
static atomic_int halted_count;        /* CPUs in (or about to enter) HLT in smp_wait_while */
static bool job_running;

static void set_this_cpu(struct cpu *cpu)
{
    cpu->self = cpu;
    wrmsr(MSR_GS_BASE, (uint64_t)cpu);
}

/* Before anything prints: kprintf asks this_cpu() which CPU holds the console. */
void smp_early_init(void)
{
    set_this_cpu(&cpus[0]);
    atomic_store(&cpus[0].online, true);
}

int smp_cpu_count(void)
{
    return online_count;
}

/*
 * Counting ourselves as halted before the last look at the word pairs with smp_wake_waiters,
 * called after a change to it: either we see the change, or the waker sees us and sends the
 * IPI. (Both sides use locked instructions, which x86 never reorders with later loads.) STI
 * takes effect only after the next instruction, so an IPI that arrives in between stays
 * pending and ends the HLT at once instead of being lost.
 */
static void halt_while(atomic_uint *word, unsigned value)
{
    atomic_fetch_add(&halted_count, 1);
    if (atomic_load(word) == value)
        __asm__ volatile("sti; hlt; cli" : : : "memory");
    atomic_fetch_sub(&halted_count, 1);
}

/*
 * Wait while *word == value, and return its new value. Spin first: during inference the next
 * change comes within microseconds. Then halt: a halted virtual CPU leaves its host core to the
 * CPUs that have work, which matters whenever there are more virtual CPUs than host cores.
 */
static unsigned wait_while(atomic_uint *word, unsigned value, uint64_t spin_tsc)
{
    uint64_t spin_until = rdtsc() + spin_tsc;
    unsigned now;

    while ((now = atomic_load_explicit(word, memory_order_acquire)) == value) {
        if (rdtsc() < spin_until)
            cpu_relax();
        else
            halt_while(word, value);
    }
    return now;
}

unsigned smp_wait_while(atomic_uint *word, unsigned value)
{
    return wait_while(word, value, spin_before_halt_tsc);
}

/* For a wait that is known to be long: halt without spinning first. */
unsigned smp_halt_while(atomic_uint *word, unsigned value)
{
    return wait_while(word, value, 0);
}

/* After changing a word that CPUs may wait on with smp_wait_while. */
void smp_wake_waiters(void)
{
    if (atomic_load(&halted_count) > 0)
        apic_send_wakeup_to_others();
}

/* trampoline.S calls this on the AP's own stack, with interrupts disabled. */
__attribute__((noreturn)) void smp_ap_main(struct cpu *cpu)
{
    unsigned seen = atomic_load(&job_generation);

    set_this_cpu(cpu);
    idt_load();
    cpu_init_ap();
    apic_enable_local();
    atomic_store_explicit(&cpu->online, true, memory_order_release);
    for (;;) {
        seen = smp_wait_while(&job_generation, seen);
        job.work(job.arg, cpu->index, job.cpu_count);
        if (atomic_fetch_sub(&job_pending, 1) == 1)
            smp_wake_waiters();
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
    smp_wake_waiters();
    work(arg, 0, online_count);
    /* Only the last AP to finish wakes us, so a halted BSP sleeps through the others. */
    for (unsigned pending; (pending = atomic_load(&job_pending)) != 0;)
        smp_wait_while(&job_pending, pending);
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
        struct cpu *cpu = &cpus[online_count];

        if (madt->cpu_apic_ids[i] == cpus[0].apic_id)
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

void smp_init(void)
{
    const struct acpi_madt_info *madt = acpi_madt();
    uint64_t start = clock_ms();

    if (madt->has_8259)
        apic_mask_8259s();
    apic_init(madt->local_apic_address);
    cpus[0].apic_id = apic_id();
    spin_before_halt_tsc = clock_us_to_tsc(SPIN_BEFORE_HALT_US);
    install_trampoline();
    start_all_aps(madt);
    kprintf("smp: boot CPU has APIC id %u; started %d more in %lu ms\n", cpus[0].apic_id,
            online_count - 1, clock_ms() - start);
    kprintf("CPUs online: %d/%d\n", online_count, madt->cpu_count);
}
