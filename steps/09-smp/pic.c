/*
 * The 8259 PIC pair, the interrupt controller every PC still emulates: a master with lines
 * 0-7 and a slave cascaded into the master's line 2, with lines 8-15. The BIOS leaves the
 * master delivering on vectors 8-15, on top of the CPU's own exceptions, so the first job is
 * to move (remap) both to vectors 32-47.
 *
 * With several CPUs the devices' lines go through the I/O APIC instead (ioapic.c); the 8259s
 * are still remapped, then left masked, so that nothing they raise lands on an exception.
 */
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
    outb(MASTER_DATA, 0xFF);
    outb(SLAVE_DATA, 0xFF);
}
