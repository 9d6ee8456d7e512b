/*
 * GCC may call memcpy, memmove, memset and memcmp on its own (for struct copies and
 * initialisers) even in freestanding code, so these four must exist with exactly these names.
 * They use rep movsb/stosb, which modern CPUs run at close to full memory speed.
 */
#include <stddef.h>
#include <stdint.h>
#include "string.h"

void *memcpy(void *restrict destination, const void *restrict source, size_t n)
{
    void *d = destination;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(source), "+c"(n) : : "memory");
    return destination;
}

/* Copy backwards when the destination overlaps the end of the source. */
void *memmove(void *destination, const void *source, size_t n)
{
    unsigned char *d = destination;
    const unsigned char *s = source;

    if (d <= s || d >= s + n)
        return memcpy(destination, source, n);
    while (n--)
        d[n] = s[n];
    return destination;
}

void *memset(void *destination, int value, size_t n)
{
    void *d = destination;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(value) : "memory");
    return destination;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] - y[i];
    return 0;
}

size_t strlen(const char *s)
{
    size_t length = 0;
    while (s[length])
        length++;
    return length;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n > 0; n--, a++, b++) {
        if (*a != *b || !*a)
            return (unsigned char)*a - (unsigned char)*b;
    }
    return 0;
}
