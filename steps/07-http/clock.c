/*
 * Time for timeouts: ARP entries expire and, from step 06, TCP retransmits. The time stamp
 * counter ticks at a fixed rate on every CPU QEMU emulates, but nothing tells us that rate, so
 * measure it once against a clock whose rate is known: channel 2 of the 8254 PIT, which counts
 * down at 1.193182 MHz.
 *
 * Reading the TSC tells the time but wakes nobody: a halted CPU needs an interrupt to notice
 * that a timeout has passed. Channel 0 of the PIT interrupts on line 0, TICK_HZ times a second.
 */
#include <stddef.h>
#include <stdint.h>
#include "clock.h"
#include "interrupts.h"
#include "kprintf.h"
#include "panic.h"
#include "x86.h"

#define PIT_FREQUENCY     1193182
#define PIT_CHANNEL0      0x40
#define PIT_CHANNEL2      0x42
#define PIT_COMMAND       0x43
#define PIT_CHANNEL2_ONESHOT 0xB0  /* channel 2, low then high byte, mode 0, binary */
#define PIT_CHANNEL0_PERIODIC 0x34 /* channel 0, low then high byte, mode 2, binary */
#define SPEAKER_PORT      0x61
#define SPEAKER_GATE2     0x01
#define SPEAKER_ENABLE    0x02
#define SPEAKER_OUT2      0x20
#define CALIBRATION_MS    20
/*
 * A deadline is noticed at most 20 ms late, a tenth of TCP's shortest timeout (200 ms); an
 * idle CPU wakes 50 times a second, which costs its host (or QEMU's emulator) about 1%.
 */
#define TICK_HZ           50

static uint64_t boot_tsc;
static uint64_t tsc_per_ms;

/* Count CALIBRATION_MS down on PIT channel 2 (gate on, speaker off) and see how far the TSC got. */
static uint64_t measure_tsc_per_ms(void)
{
    uint16_t count = PIT_FREQUENCY * CALIBRATION_MS / 1000;
    uint8_t speaker = (inb(SPEAKER_PORT) & ~SPEAKER_ENABLE) & ~SPEAKER_GATE2;
    uint64_t start;

    outb(SPEAKER_PORT, speaker);
    outb(PIT_COMMAND, PIT_CHANNEL2_ONESHOT);
    outb(PIT_CHANNEL2, count & 0xFF);
    outb(PIT_CHANNEL2, count >> 8);
    /* Raising the gate starts the count; OUT2 goes high when it reaches zero. */
    outb(SPEAKER_PORT, speaker | SPEAKER_GATE2);
    start = rdtsc();
    while (!(inb(SPEAKER_PORT) & SPEAKER_OUT2))
        ;
    return (rdtsc() - start) / CALIBRATION_MS;
}

static void start_tick(void)
{
    uint16_t divisor = PIT_FREQUENCY / TICK_HZ;

    outb(PIT_COMMAND, PIT_CHANNEL0_PERIODIC);
    outb(PIT_CHANNEL0, divisor & 0xFF);
    outb(PIT_CHANNEL0, divisor >> 8);
    /* No handler: by the time one would run, the tick has done its job of waking the CPU. */
    interrupt_register(TIMER_LINE, "timer", NULL);
}

void clock_init(void)
{
    tsc_per_ms = measure_tsc_per_ms();
    if (tsc_per_ms == 0)
        panic("clock: the TSC did not advance during calibration");
    boot_tsc = rdtsc();
    start_tick();
    kprintf("clock: TSC runs at %lu MHz; timer interrupt %d times a second\n",
            tsc_per_ms / 1000, TICK_HZ);
}

uint64_t clock_ms(void)
{
    return (rdtsc() - boot_tsc) / tsc_per_ms;
}

uint64_t clock_tsc_to_ms(uint64_t ticks)
{
    return ticks / tsc_per_ms;
}
