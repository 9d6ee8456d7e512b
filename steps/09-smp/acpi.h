/* What the kernel learns from the ACPI tables: the CPUs and interrupt controllers (MADT). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64
#define ACPI_MAX_IO_APICS 4
#define ACPI_MAX_OVERRIDES 16

struct acpi_io_apic {
    uint8_t id;
    uint32_t address;
    uint32_t gsi_base;   /* the first global system interrupt its inputs carry */
};

/* "ISA IRQ source arrives on global system interrupt gsi", with polarity and trigger flags. */
struct acpi_override {
    uint8_t source;
    uint32_t gsi;
    uint16_t flags;
};

struct acpi_madt_info {
    uint64_t local_apic_address;
    bool has_8259;                       /* legacy PICs present: mask them before using APICs */
    int cpu_count;                       /* enabled processors, boot processor included */
    uint8_t cpu_apic_ids[ACPI_MAX_CPUS];
    int io_apic_count;
    struct acpi_io_apic io_apics[ACPI_MAX_IO_APICS];
    int override_count;
    struct acpi_override overrides[ACPI_MAX_OVERRIDES];
};

void acpi_init(void);
const struct acpi_madt_info *acpi_madt(void);
