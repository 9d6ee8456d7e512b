/*
 * A growable byte buffer, for building a response whose size is not known in advance: bytes,
 * C strings, printf-style text and base64 appended at the end.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heap.h"
#include "kprintf.h"
#include "strbuf.h"
#include "string.h"

void strbuf_init(struct strbuf *b)
{
    *b = (struct strbuf){ 0 };
}

void strbuf_free(struct strbuf *b)
{
    kfree(b->data);
    strbuf_init(b);
}

/* Room for extra more bytes and the NUL after them. Doubling keeps appends linear overall. */
static bool reserve(struct strbuf *b, size_t extra)
{
    size_t needed, capacity;
    char *grown;

    if (b->failed)
        return false;
    if (extra >= SIZE_MAX - b->length) {
        b->failed = true;
        return false;
    }
    needed = b->length + extra + 1;
    if (needed <= b->capacity)
        return true;
    capacity = b->capacity < 64 ? 64 : b->capacity;
    while (capacity < needed)
        capacity = capacity <= SIZE_MAX / 2 ? capacity * 2 : needed;
    grown = krealloc(b->data, capacity);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->capacity = capacity;
    return true;
}

void strbuf_append(struct strbuf *b, const void *bytes, size_t length)
{
    if (!reserve(b, length))
        return;
    if (length)
        memcpy(b->data + b->length, bytes, length);
    b->length += length;
    b->data[b->length] = '\0';
}

void strbuf_append_str(struct strbuf *b, const char *s)
{
    strbuf_append(b, s, strlen(s));
}

/* Format into the free space; if it did not fit, grow to the size it reported and again. */
void strbuf_printf(struct strbuf *b, const char *format, ...)
{
    va_list args;
    int needed;

    if (!reserve(b, 0))
        return;
    va_start(args, format);
    needed = vsnprintf(b->data + b->length, b->capacity - b->length, format, args);
    va_end(args);
    if (needed < 0) {   /* the C library's encoding error, or more output than an int counts */
        b->data[b->length] = '\0';
        b->failed = true;
        return;
    }
    if ((size_t)needed >= b->capacity - b->length) {
        if (!reserve(b, (size_t)needed)) {
            b->data[b->length] = '\0';
            return;
        }
        va_start(args, format);
        vsnprintf(b->data + b->length, b->capacity - b->length, format, args);
        va_end(args);
    }
    b->length += (size_t)needed;
}

/* Base64 (RFC 4648) with padding: three bytes become four characters. */
void strbuf_append_base64(struct strbuf *b, const void *bytes, size_t length)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = bytes;

    for (size_t i = 0; i < length; i += 3) {
        uint32_t group = (uint32_t)in[i] << 16;
        char out[4];
        if (i + 1 < length)
            group |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < length)
            group |= in[i + 2];
        out[0] = alphabet[group >> 18];
        out[1] = alphabet[(group >> 12) & 63];
        out[2] = i + 1 < length ? alphabet[(group >> 6) & 63] : '=';
        out[3] = i + 2 < length ? alphabet[group & 63] : '=';
        strbuf_append(b, out, 4);
    }
}
