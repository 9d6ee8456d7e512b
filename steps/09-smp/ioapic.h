/* The I/O APIC: device interrupt lines to any CPU's local APIC, as the MADT describes them. */
#pragma once

#include <stdint.h>

/* Map every I/O APIC the MADT lists and mask all of its inputs. */
void ioapic_init(void);
/* Deliver ISA line `line` (after the MADT's overrides) as vector to the CPU with apic_id. */
void ioapic_route(uint8_t line, uint8_t vector, uint32_t apic_id);
