/*
 * A growable byte buffer for building responses.
 *
 * Appending never fails visibly: if memory runs out, failed is set, and from then on every
 * append does nothing. So a response is built without checking each step, and checked once.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
    char *data;       /* NULL until something is appended; then always followed by a NUL */
    size_t length, capacity;
    bool failed;      /* an allocation failed, so data holds less than was appended */
};

void strbuf_init(struct strbuf *b);
void strbuf_free(struct strbuf *b);
void strbuf_append(struct strbuf *b, const void *bytes, size_t length);
void strbuf_append_str(struct strbuf *b, const char *s);
void strbuf_append_base64(struct strbuf *b, const void *bytes, size_t length);
__attribute__((format(printf, 2, 3))) void strbuf_printf(struct strbuf *b, const char *format,
                                                         ...);

