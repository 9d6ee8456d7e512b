/*
 * The 8259 PIC pair, the interrupt controller every PC still emulates: a master with lines
 * 0-7 and a slave cascaded into the master's line 2, with lines 8-15. The BIOS leaves the
 * master delivering on vectors 8-15, on top of the CPU's own exceptions, so the first job is
 * to move (remap) both to vectors 32-47. Every line starts masked; a driver unmasks its own.
 *
 * We chose the 8259 over the I/O APIC here because it needs no ACPI tables to find and it is
 * enough for one CPU; step 09, with several CPUs, moves the devices to the I/O APIC.
 */
#include <stdbool.h>
#include <stdint.h>
#include "pic.h"
#include "x86.h"

#define MASTER_COMMAND 0x20
#define MASTER_DATA    0x21
#define SLAVE_COMMAND  0xA0
#define SLAVE_DATA     0xA1
#define ICW1_INIT_WITH_ICW4 0x11
#define ICW4_8086_MODE 0x01
#define CASCADE_LINE   2
#define OCW3_READ_ISR  0x0B
#define EOI            0x20

static uint16_t masked = 0xFFFF;

static void write_masks(void)
{
    outb(MASTER_DATA, masked & 0xFF);
    outb(SLAVE_DATA, masked >> 8);
}

/* The four initialization words, in the order the chip insists on. */
void pic_init(void)
{
    outb(MASTER_COMMAND, ICW1_INIT_WITH_ICW4);
    outb(SLAVE_COMMAND, ICW1_INIT_WITH_ICW4);
    outb(MASTER_DATA, PIC_FIRST_VECTOR);
    outb(SLAVE_DATA, PIC_FIRST_VECTOR + 8);
    outb(MASTER_DATA, 1 << CASCADE_LINE);     /* the master: a slave hangs on line 2 */
    outb(SLAVE_DATA, CASCADE_LINE);           /* the slave: my identity is 2 */
    outb(MASTER_DATA, ICW4_8086_MODE);
    outb(SLAVE_DATA, ICW4_8086_MODE);
    write_masks();
}

/* A slave line needs the cascade line open on the master, too. */
void pic_unmask(uint8_t line)
{
    masked &= ~(1u << line);
    if (line >= 8)
        masked &= ~(1u << CASCADE_LINE);
    write_masks();
}

static uint16_t in_service(void)
{
    outb(MASTER_COMMAND, OCW3_READ_ISR);
    outb(SLAVE_COMMAND, OCW3_READ_ISR);
    return inb(MASTER_COMMAND) | inb(SLAVE_COMMAND) << 8;
}

/*
 * A line that drops before the CPU acknowledges it still interrupts, as the lowest-priority
 * line of its chip (7 or 15), with its bit clear in the in-service register: spurious. The
 * slave's spurious 15 did reach the master through the cascade, which does want its EOI.
 */
bool pic_spurious(uint8_t line)
{
    if ((line != 7 && line != 15) || (in_service() & (1u << line)))
        return false;
    if (line == 15)
        outb(MASTER_COMMAND, EOI);
    return true;
}

/* A slave line is in service on both chips: the slave's own line, and the master's cascade. */
void pic_end_of_interrupt(uint8_t line)
{
    if (line >= 8)
        outb(SLAVE_COMMAND, EOI);
    outb(MASTER_COMMAND, EOI);
}
