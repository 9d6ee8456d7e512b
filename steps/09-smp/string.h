/* The C library's string functions that the kernel uses; there is no libc underneath. */
#pragma once

#include <stddef.h>

void *memcpy(void *restrict destination, const void *restrict source, size_t n);
void *memmove(void *destination, const void *source, size_t n);
void *memset(void *destination, int value, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
