/*
 * Hardware interrupts: a device raises its line, the PIC turns the line into a vector, the CPU
 * enters through isr.S and arrives in interrupt_dispatch, which calls the device's handler and
 * signals end of interrupt (EOI) so the PIC will deliver that line again.
 *
 * In this kernel an interrupt is a wake-up, nothing more. The CPU runs the main loop with
 * interrupts disabled (the boot loader hands over with IF clear, and nothing sets it) and
 * enables them only for the HLT in wait_for_interrupt, once a pass of the loop found nothing
 * to do. So a handler never cuts into the kernel's work and needs no locks; it only makes its
 * device drop the line. The main loop, woken, polls the devices as before. Under load the loop
 * never halts and takes no interrupts at all: the devices are polled while they have work, and
 * interrupt only when they have been idle (Linux's network drivers call this NAPI).
 */
#include <stdbool.h>
#include <stdint.h>
#include "clock.h"
#include "cmdline.h"
#include "interrupts.h"
#include "kprintf.h"
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
static uint64_t spurious_count;
static uint64_t start_tsc, halted_tsc;
static bool never_halt;

/* `idle=poll` keeps the CPU spinning in the main loop, as before interrupts: a reference. */
void interrupts_init(void)
{
    char idle[8];

    pic_init();
    for (int line = 0; line < PIC_LINES; line++)
        idt_set_handler(PIC_FIRST_VECTOR + line, interrupt_entries[line]);
    never_halt = cmdline_get("idle", idle, sizeof(idle)) && strcmp(idle, "poll") == 0;
    start_tsc = rdtsc();
}

void interrupt_register(uint8_t line, const char *name, void (*handler)(void))
{
    lines[line].name = name;
    lines[line].handler = handler;
    pic_unmask(line);
}

void interrupt_dispatch(struct trap_frame *frame)
{
    uint8_t line = frame->vector - PIC_FIRST_VECTOR;

    if (pic_spurious(line)) {
        spurious_count++;
        return;
    }
    lines[line].count++;
    if (lines[line].handler)
        lines[line].handler();
    /* After the handler: a level-triggered line still up at EOI would interrupt again. */
    pic_end_of_interrupt(line);
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
    halted_tsc += halt_until_interrupt();
}

const char *interrupt_name(uint8_t line)
{
    return line < PIC_LINES ? lines[line].name : NULL;
}

uint64_t interrupt_count(uint8_t line)
{
    return line < PIC_LINES ? lines[line].count : 0;
}

/* The shell's `irq`: how often each line interrupted, and how much of the time the CPU slept. */
void interrupts_print(void)
{
    uint64_t total = rdtsc() - start_tsc;

    for (int line = 0; line < PIC_LINES; line++)
        if (lines[line].name)
            kprintf("irq %d vector %d %s: %lu\n", line, PIC_FIRST_VECTOR + line,
                    lines[line].name, lines[line].count);
    kprintf("irq spurious: %lu\n", spurious_count);
    kprintf("cpu 0: halted %lu ms, awake %lu ms\n", clock_tsc_to_ms(halted_tsc),
            clock_tsc_to_ms(total - halted_tsc));
}
