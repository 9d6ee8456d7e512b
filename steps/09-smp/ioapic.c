/*
 * The I/O APIC replaces the 8259s on a PC with several CPUs. Each of its inputs, a global
 * system interrupt (GSI), has a 64-bit redirection entry saying which vector to raise on which
 * CPU, whether the line is edge- or level-triggered and active high or low, and whether it is
 * masked. The registers sit behind a window: write a register's index to IOREGSEL, then read
 * or write IOWIN.
 *
 * ISA line N arrives on GSI N, edge-triggered and active high, unless the MADT's interrupt
 * source overrides say otherwise. QEMU's do: the PIT's line 0 moves to GSI 2, and the lines it
 * gives PCI devices (5, 9, 10, 11) become level-triggered, active high.
 */
#include <stdbool.h>
#include <stdint.h>
#include "acpi.h"
#include "ioapic.h"
#include "kprintf.h"
#include "paging.h"

#define IOREGSEL 0x00
#define IOWIN 0x10
#define IOAPIC_WINDOW_SIZE 0x20
#define REG_VERSION 0x01
#define REG_REDIRECTION 0x10      /* entry n: low half at 0x10 + 2n, high half at 0x11 + 2n */
#define ENTRY_ACTIVE_LOW (1u << 13)
#define ENTRY_LEVEL (1u << 15)
#define ENTRY_MASKED (1u << 16)
#define DESTINATION_SHIFT 24
/* MADT override flags: polarity in bits 0-1, trigger mode in bits 2-3; 0 means "as the bus". */
#define POLARITY_ACTIVE_LOW 3
#define TRIGGER_LEVEL (3u << 2)

static uint32_t read_register(const struct acpi_io_apic *io_apic, uint8_t index)
{
    volatile uint32_t *base = (volatile uint32_t *)(uint64_t)io_apic->address;

    base[IOREGSEL / 4] = index;
    return base[IOWIN / 4];
}

static void write_register(const struct acpi_io_apic *io_apic, uint8_t index, uint32_t value)
{
    volatile uint32_t *base = (volatile uint32_t *)(uint64_t)io_apic->address;

    base[IOREGSEL / 4] = index;
    base[IOWIN / 4] = value;
}

static unsigned input_count(const struct acpi_io_apic *io_apic)
{
    return (read_register(io_apic, REG_VERSION) >> 16 & 0xFF) + 1;
}

void ioapic_init(void)
{
    const struct acpi_madt_info *madt = acpi_madt();

    for (int i = 0; i < madt->io_apic_count; i++) {
        const struct acpi_io_apic *io_apic = &madt->io_apics[i];
        paging_map_uncached(io_apic->address, IOAPIC_WINDOW_SIZE);
        for (unsigned input = 0; input < input_count(io_apic); input++)
            write_register(io_apic, REG_REDIRECTION + 2 * input, ENTRY_MASKED);
    }
}

static const struct acpi_io_apic *io_apic_for(uint32_t gsi)
{
    const struct acpi_madt_info *madt = acpi_madt();

    for (int i = 0; i < madt->io_apic_count; i++) {
        const struct acpi_io_apic *io_apic = &madt->io_apics[i];
        if (gsi >= io_apic->gsi_base && gsi < io_apic->gsi_base + input_count(io_apic))
            return io_apic;
    }
    return NULL;
}

/* The ISA defaults (same GSI, edge, active high) unless an override names this line. */
static uint32_t entry_for(uint8_t line, uint8_t vector, uint32_t *gsi)
{
    const struct acpi_madt_info *madt = acpi_madt();

    *gsi = line;
    for (int i = 0; i < madt->override_count; i++) {
        const struct acpi_override *o = &madt->overrides[i];
        if (o->source != line)
            continue;
        *gsi = o->gsi;
        return vector | ((o->flags & 3) == POLARITY_ACTIVE_LOW ? ENTRY_ACTIVE_LOW : 0) |
               ((o->flags & 0xC) == TRIGGER_LEVEL ? ENTRY_LEVEL : 0);
    }
    return vector;
}

/* Only the boot CPU routes lines, at boot: the select-then-access window needs no lock. */
void ioapic_route(uint8_t line, uint8_t vector, uint32_t apic_id)
{
    uint32_t gsi;
    uint32_t entry = entry_for(line, vector, &gsi);
    const struct acpi_io_apic *io_apic = io_apic_for(gsi);
    uint8_t input;

    if (!io_apic) {
        kprintf("ioapic: no I/O APIC has interrupt %u (line %u)\n", gsi, line);
        return;
    }
    input = gsi - io_apic->gsi_base;
    /* The high half first: the entry goes live when the low half unmasks it. */
    write_register(io_apic, REG_REDIRECTION + 2 * input + 1, apic_id << DESTINATION_SHIFT);
    write_register(io_apic, REG_REDIRECTION + 2 * input, entry);
    kprintf("ioapic: line %u -> interrupt %u (%s, active %s) -> vector %u on APIC %u\n", line,
            gsi, entry & ENTRY_LEVEL ? "level" : "edge",
            entry & ENTRY_ACTIVE_LOW ? "low" : "high", vector, apic_id);
}
