#pragma once

#include <stdint.h>

void clock_init(void);
uint64_t clock_ms(void);
uint64_t clock_tsc_to_ms(uint64_t ticks);
uint64_t clock_us_to_tsc(uint64_t microseconds);
void clock_delay_us(uint64_t microseconds);
