/*
 * A strict JSON reader (RFC 8259) that turns a document into a tree, and the one writer the
 * API needs beside strbuf_printf: a string, escaped (json_write.c).
 *
 * Strict means: one value with optional whitespace (space, tab, LF, CR) around it; no
 * comments, trailing commas, NaN or Infinity; numbers exactly as the RFC's grammar has them
 * (no "01", "+1", ".5" or "1."); strings of well-formed UTF-8 with control characters escaped
 * and only the RFC's escapes; no container nested deeper than JSON_MAX_DEPTH.
 *
 * Duplicate keys are accepted, as the RFC allows: members keeps every one, in document order,
 * and json_get returns the first. (Refusing them would cost a sort of each object's keys, or
 * quadratic time on hostile input.)
 *
 * The tree owns a copy of the text, and strings and numbers point into that copy: strings are
 * decoded where they stand, which never makes them longer. The size of the text is the
 * caller's to limit: a tree takes up to 25 bytes of heap per byte of text ("[0,0,0,...]"),
 * and up to 37 for a moment while a long array grows.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "strbuf.h"

#define JSON_MAX_DEPTH 64
#define JSON_MAX_SCALE 100000000000000000LL   /* 10^17, see json_number_scaled */

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
                 JSON_OBJECT };

struct json_member;

struct json_value {
    enum json_type type;
    union {
        struct {
            const char *text;     /* the number as written, e.g. "-1.5e3"; not NUL-terminated */
            size_t length;
        } number;
        struct {
            const char *bytes;    /* decoded UTF-8; may hold NULs, but a NUL also follows it */
            size_t length;
        } string;
        struct {
            struct json_value *items;
            size_t count;
        } array;
        struct {
            struct json_member *members;   /* in document order */
            size_t count;
        } object;
    };
};

struct json_member {
    const char *key;              /* decoded like a string, NUL follows it */
    size_t key_length;
    struct json_value value;
};

struct json_error {
    size_t offset;                /* of the byte where reading stopped */
    char message[96];             /* e.g. "expected ':' after object key at byte 17" */
};

/*
 * The root of a new tree, or NULL with *error filled in (error may be NULL). Recursion takes
 * about 100 bytes of stack per nesting level (gcc -O2): 6.5 KiB at JSON_MAX_DEPTH.
 */
struct json_value *json_parse(const char *text, size_t length, struct json_error *error);
/* Frees a whole tree; takes a root from json_parse (or NULL), never a value inside one. */
void json_free(struct json_value *root);

/* The value of object's first member named key, or NULL if none or object is not an object. */
const struct json_value *json_get(const struct json_value *object, const char *key);

/*
 * Numbers as integers, computed exactly from the digits. Both return false, leaving *out
 * alone, if number is not a JSON_NUMBER or the result does not fit in an int64_t.
 *
 * json_number_int64: the number, if it is an integer ("1.0" and "2e3" are too).
 * json_number_scaled: number * scale rounded to the nearest integer, halves away from zero;
 * with scale 1000000, "0.7" gives 700000 and "-0.0000005" gives -1. scale must be 1 to
 * JSON_MAX_SCALE.
 */
bool json_number_int64(const struct json_value *number, int64_t *out);
bool json_number_scaled(const struct json_value *number, int64_t scale, int64_t *out);

/*
 * bytes as a JSON string: in quotes, with '"', '\' and the control characters escaped.
 * Well-formed UTF-8 is copied as it is; each byte that does not begin a well-formed sequence
 * becomes \ufffd (the replacement character), so the output is always valid JSON.
 */
void json_write_string(struct strbuf *b, const void *bytes, size_t length);
