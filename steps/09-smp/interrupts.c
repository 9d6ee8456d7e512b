/*
 * Hardware interrupts: a device raises its line, the I/O APIC turns the line into a vector for
 * the boot CPU's local APIC, the CPU enters through isr.S and arrives in interrupt_dispatch,
 * which calls the device's handler and signals end of interrupt (EOI) to its local APIC. The
 * lines keep the vectors the 8259 gave them in step 05, and the timer, now each CPU's own local
 * APIC timer, keeps line 0's vector.
 *
 * In this kernel an interrupt is a wake-up, nothing more. The CPU runs the main loop with
 * interrupts disabled (the boot loader hands over with IF clear, and nothing sets it) and
 * enables them only for the HLT in wait_for_interrupt, once a pass of the loop found nothing
 * to do. So a handler never cuts into the kernel's work and needs no locks; it only makes its
 * device drop the line. The main loop, woken, polls the devices as before. Under load the loop
 * never halts and takes no interrupts at all: the devices are polled while they have work, and
 * interrupt only when they have been idle (Linux's network drivers call this NAPI). The other
 * CPUs halt in their waits (wait.c) and take only their timer and the wake-up IPI.
 */
#include <stdbool.h>
#include <stdint.h>
#include "acpi.h"
#include "apic.h"
#include "clock.h"
#include "cmdline.h"
#include "interrupts.h"
#include "ioapic.h"
#include "kprintf.h"
#include "percpu.h"
#include "pic.h"
#include "string.h"
#include "x86.h"

struct line {
    const char *name;
    void (*handler)(void);
    uint64_t count;
};

extern void (*const interrupt_entries[PIC_LINES])(void);

static struct line lines[PIC_LINES];
static bool never_halt;

/* `idle=poll` keeps the CPU spinning in the main loop, as before interrupts: a reference. */
void interrupts_init(void)
{
    char idle[8];

    pic_init();
    for (int line = 0; line < PIC_LINES; line++)
        idt_set_handler(PIC_FIRST_VECTOR + line, interrupt_entries[line]);
    never_halt = cmdline_get("idle", idle, sizeof(idle)) && strcmp(idle, "poll") == 0;
}

/* Device lines go to the CPU that registers them, the boot CPU; the timer is local to each. */
void interrupt_register(uint8_t line, const char *name, void (*handler)(void))
{
    lines[line].name = name;
    lines[line].handler = handler;
    if (line != TIMER_LINE)
        ioapic_route(line, PIC_FIRST_VECTOR + line, this_cpu()->apic_id);
}

void interrupt_dispatch(struct trap_frame *frame)
{
    uint8_t line = frame->vector - PIC_FIRST_VECTOR;

    /* Every CPU's timer counts here, so the count must be incremented atomically. */
    __atomic_fetch_add(&lines[line].count, 1, __ATOMIC_RELAXED);
    if (lines[line].handler)
        lines[line].handler();
    /* After the handler: a level-triggered line still up at EOI would interrupt again. */
    apic_end_of_interrupt();
}

/*
 * The race: work that arrives after work_waiting() said "none" but before the HLT would be
 * slept through. Interrupts are off during the check, so its interrupt stays pending until
 * halt_until_interrupt (x86.h) enables them, and then it ends the HLT at once.
 */
void wait_for_interrupt(bool (*work_waiting)(void))
{
    if (never_halt || work_waiting())
        return;
    this_cpu()->halted_tsc += halt_until_interrupt();
}

const char *interrupt_name(uint8_t line)
{
    return line < PIC_LINES ? lines[line].name : NULL;
}

uint64_t interrupt_count(uint8_t line)
{
    return line < PIC_LINES ? lines[line].count : 0;
}

/* The shell's `irq`: how often each line interrupted, and how much of the time each CPU slept. */
void interrupts_print(void)
{
    for (int line = 0; line < PIC_LINES; line++)
        if (lines[line].name)
            kprintf("irq %d vector %d %s: %lu\n", line, PIC_FIRST_VECTOR + line,
                    lines[line].name, lines[line].count);
    /* CPUs are numbered in the order they came online, so the first offline one ends the list. */
    for (int i = 0; i < ACPI_MAX_CPUS && atomic_load(&percpu_cpu(i)->online); i++) {
        const struct cpu *cpu = percpu_cpu(i);
        uint64_t halted = cpu->halted_tsc, total = rdtsc() - cpu->started_tsc;
        kprintf("cpu %d: halted %lu ms, awake %lu ms\n", i, clock_tsc_to_ms(halted),
                clock_tsc_to_ms(total - halted));
    }
}
