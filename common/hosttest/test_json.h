/* What the host unit tests share; test_json.c defines it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "json.h"

/* Counts a passed or failed check; a failure prints the message. Returns ok. */
__attribute__((format(printf, 2, 3))) bool check(bool ok, const char *format, ...);
/* bytes made printable for a message; valid until the fourth call after. */
const char *show(const char *bytes, size_t length);
/* A fixed-seed generator, so that every run tests the same cases. */
uint64_t random_below(uint64_t limit);
/* json_parse from a copy of exactly length bytes, so that reading past the end is caught. */
struct json_value *parse_exact(const char *text, size_t length, struct json_error *error);
/* json_parse of a NUL-terminated document that must be valid; NULL and a failure if not. */
struct json_value *parse_text(const char *text);

void test_numbers(void);
void test_utf8(void);
void test_strbuf(void);
void test_writer(void);
