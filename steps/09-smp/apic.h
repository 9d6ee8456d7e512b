/* The local APIC: each CPU's own interrupt controller, and how CPUs signal one another. */
#pragma once

#include <stdint.h>

/* Vectors 0-31 are the CPU's exceptions. The spurious vector's low 4 bits must be ones. */
#define APIC_WAKEUP_VECTOR 0xF0
#define APIC_SPURIOUS_VECTOR 0xFF

/* base: the registers' address, already mapped uncached. */
void apic_init(uint64_t base);
void apic_enable_local(void);
uint32_t apic_id(void);
void apic_send_init(uint32_t apic_id);
void apic_send_startup(uint32_t apic_id, uint64_t start_address);
void apic_send_wakeup_to_others(void);
void apic_end_of_interrupt(void);
void apic_timer_start_counting(void);
uint32_t apic_timer_counted(void);
void apic_timer_start_periodic(uint8_t vector, uint32_t count);
