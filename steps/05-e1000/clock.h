#pragma once

#include <stdint.h>

void clock_init(void);
uint64_t clock_ms(void);
uint64_t clock_tsc_to_ms(uint64_t ticks);
