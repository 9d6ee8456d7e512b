/* UTF-8: checking that bytes are well formed, and encoding a code point. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define UTF8_MAX_LENGTH 4

size_t utf8_sequence_length(const unsigned char *bytes, size_t available);
size_t utf8_encode(uint32_t code_point, unsigned char *out);
