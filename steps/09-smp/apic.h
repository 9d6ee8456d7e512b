/* The local APIC: each CPU's own interrupt controller, and how CPUs signal one another. */
#pragma once

#include <stdint.h>

void apic_init(uint64_t base);
void apic_enable_local(void);
uint32_t apic_id(void);
void apic_send_init(uint32_t apic_id);
void apic_send_startup(uint32_t apic_id, uint64_t start_address);
void apic_send_wakeup_to_others(void);
void apic_mask_8259s(void);
