/*
 * Every CPU has a local APIC, a block of 32-bit registers at the same physical address on all
 * of them (usually 0xFEE00000): each CPU reaching that address reaches its own. Through it a
 * CPU sends inter-processor interrupts (IPIs): INIT and STARTUP to boot another CPU, and
 * ordinary vectored interrupts, which this kernel uses to wake halted CPUs.
 *
 * This is the xAPIC interface (memory-mapped); x2APIC mode (MSRs, 32-bit ids) is only needed
 * beyond 255 CPUs.
 */
#include <stdint.h>
#include "apic.h"
#include "x86.h"

#define MSR_APIC_BASE 0x1B
#define APIC_BASE_ENABLE (1u << 11)

enum apic_register {
    APIC_ID = 0x20,
    APIC_TASK_PRIORITY = 0x80,
    APIC_EOI = 0xB0,
    APIC_SPURIOUS = 0xF0,
    APIC_ICR_LOW = 0x300,
    APIC_ICR_HIGH = 0x310,
    APIC_LVT_TIMER = 0x320,
    APIC_TIMER_INITIAL = 0x380,
    APIC_TIMER_CURRENT = 0x390,
    APIC_TIMER_DIVIDE = 0x3E0,
};

#define SPURIOUS_APIC_ENABLE (1u << 8)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_DELIVERY_PENDING (1u << 12)
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_ALL_EXCLUDING_SELF (3u << 18)
#define ICR_DESTINATION_SHIFT 24
#define STARTUP_PAGE_SHIFT 12
#define LVT_MASKED (1u << 16)
#define TIMER_PERIODIC (1u << 17)
#define TIMER_DIVIDE_BY_16 0x3
#define TIMER_COUNT_MAX 0xFFFFFFFFu

static volatile uint32_t *registers;
/* isr.S's wake-up handler writes here to signal end of interrupt. */
volatile uint32_t *lapic_eoi_register;

static uint32_t read_register(enum apic_register reg)
{
    return registers[reg / 4];
}

static void write_register(enum apic_register reg, uint32_t value)
{
    registers[reg / 4] = value;
}

void apic_init(uint64_t base)
{
    registers = (volatile uint32_t *)base;
    lapic_eoi_register = &registers[APIC_EOI / 4];
    apic_enable_local();
}

/*
 * Run on every CPU. The firmware leaves the APIC globally enabled (the MSR) but software
 * disabled; software-disabled, it would refuse the wake-up IPI. A task priority of 0 lets
 * every vector through.
 */
void apic_enable_local(void)
{
    wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE);
    write_register(APIC_TASK_PRIORITY, 0);
    write_register(APIC_SPURIOUS, SPURIOUS_APIC_ENABLE | APIC_SPURIOUS_VECTOR);
}

uint32_t apic_id(void)
{
    return read_register(APIC_ID) >> ICR_DESTINATION_SHIFT;
}

/* The high half names the destination; writing the low half sends the IPI. */
static void send_ipi(uint32_t destination, uint32_t command)
{
    while (read_register(APIC_ICR_LOW) & ICR_DELIVERY_PENDING)
        cpu_relax();
    write_register(APIC_ICR_HIGH, destination << ICR_DESTINATION_SHIFT);
    write_register(APIC_ICR_LOW, command);
    while (read_register(APIC_ICR_LOW) & ICR_DELIVERY_PENDING)
        cpu_relax();
}

/* INIT resets the CPU into "wait for STARTUP". */
void apic_send_init(uint32_t apic_id)
{
    send_ipi(apic_id, ICR_INIT | ICR_LEVEL_ASSERT);
}

/* STARTUP starts it in real mode at a page below 1 MiB: CS = page number << 8, IP = 0. */
void apic_send_startup(uint32_t apic_id, uint64_t start_address)
{
    send_ipi(apic_id, ICR_STARTUP | (uint32_t)(start_address >> STARTUP_PAGE_SHIFT));
}

void apic_send_wakeup_to_others(void)
{
    send_ipi(0, ICR_ALL_EXCLUDING_SELF | APIC_WAKEUP_VECTOR);
}

void apic_end_of_interrupt(void)
{
    *lapic_eoi_register = 0;
}

/*
 * The timer counts down at the bus clock divided by 16, a rate nothing tells us. Calibration:
 * start it counting from the top with its interrupt masked, let the caller wait a known time,
 * and see how far it got.
 */
void apic_timer_start_counting(void)
{
    write_register(APIC_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write_register(APIC_LVT_TIMER, LVT_MASKED);
    write_register(APIC_TIMER_INITIAL, TIMER_COUNT_MAX);
}

uint32_t apic_timer_counted(void)
{
    return TIMER_COUNT_MAX - read_register(APIC_TIMER_CURRENT);
}

/* Interrupt on vector every `count` counts, over and over. */
void apic_timer_start_periodic(uint8_t vector, uint32_t count)
{
    write_register(APIC_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    write_register(APIC_LVT_TIMER, TIMER_PERIODIC | vector);
    write_register(APIC_TIMER_INITIAL, count);
}
