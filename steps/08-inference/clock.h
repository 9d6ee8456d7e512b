#pragma once

#include <stdint.h>

void clock_init(void);
uint64_t clock_ms(void);
