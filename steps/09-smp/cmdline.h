/* Options on the kernel command line: space-separated words, `name` or `name=value`. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void cmdline_init(const char *text);
const char *cmdline_text(void);
bool cmdline_get(const char *name, char *value, size_t size);
bool cmdline_get_number(const char *name, uint64_t minimum, uint64_t maximum, uint64_t *number);
bool cmdline_has(const char *flag);
