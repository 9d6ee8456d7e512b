#pragma once

#include <stdint.h>

void rtc_init(void);
uint64_t rtc_unix_time(void);
