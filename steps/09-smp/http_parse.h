/*
 * Parsing HTTP/1.1 requests (RFC 9112), kept apart from the server so that it has no
 * dependencies beyond memory and strings, and so that it also builds on Linux for fuzzing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 32
#define HTTP_MAX_HEAD_SIZE 8192

struct http_text {
    const char *data;
    size_t length;
};

struct http_header {
    struct http_text name;
    struct http_text value;
};

struct http_request {
    struct http_text method;
    struct http_text target;
    int minor_version;
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t header_count;
    size_t head_length;           /* bytes of request line and headers, blank line included */
    bool chunked;
    bool has_content_length;
    uint64_t content_length;
    bool keep_alive;
};

/* Why a request was refused: the status to answer with and a message naming the problem. */
struct http_error {
    int status;
    const char *message;
};

enum http_parse_result { HTTP_INCOMPLETE, HTTP_COMPLETE, HTTP_INVALID };

enum http_parse_result http_parse_head(const char *buffer, size_t length,
                                       struct http_request *request, struct http_error *error);
const struct http_text *http_find_header(const struct http_request *request, const char *name);
bool http_text_equals(const struct http_text *text, const char *s);
bool http_method_is(const struct http_request *request, const char *method);

/* Chunked transfer coding, decoded as the bytes arrive. */
struct http_chunked_decoder {
    int state;
    uint64_t chunk_remaining;
    size_t line_length;
    size_t size_digits;
    bool line_has_content;
};

/*
 * Feed bytes; decoded data goes to emit(context, data, length). Returns how many bytes were
 * consumed; *result is HTTP_COMPLETE after the last chunk and its trailers, HTTP_INVALID (with
 * error) on malformed input, else HTTP_INCOMPLETE.
 */
size_t http_chunked_decode(struct http_chunked_decoder *decoder, const char *data, size_t length,
                           void (*emit)(void *context, const char *data, size_t length),
                           void *context, enum http_parse_result *result,
                           struct http_error *error);
