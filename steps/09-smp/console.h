#pragma once

#include <stddef.h>

void console_init(void);
void console_putc(char c);
void console_write(const char *s, size_t length);
