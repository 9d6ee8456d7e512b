#pragma once

#include <stdarg.h>
#include <stddef.h>

/*
 * Conversions: %d %i %u %x %X %p %s %c %%, with the length modifiers l, ll and z, a field
 * width, and the flags '-' (left-justify) and '0' (pad with zeros).
 */
__attribute__((format(printf, 1, 2))) int kprintf(const char *format, ...);
__attribute__((format(printf, 3, 4))) int snprintf(char *buffer, size_t size,
                                                   const char *format, ...);
int vsnprintf(char *buffer, size_t size, const char *format, va_list args);
int vkprintf(const char *format, va_list args);
