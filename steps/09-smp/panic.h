#pragma once

#include <stdint.h>

__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *format, ...);
__attribute__((noreturn)) void stop_after_failure(void);
void print_backtrace(uint64_t instruction, uint64_t frame_pointer);
