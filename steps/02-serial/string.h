/* The C library's string functions that the kernel uses; there is no libc underneath. */
#pragma once

#include <stddef.h>

size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
