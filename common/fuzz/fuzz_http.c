/*
 * libFuzzer target for the kernel's HTTP request parser, steps/07-http/http_parse.c, built
 * unchanged on Linux. For any bytes:
 *
 *  - http_parse_head answers INCOMPLETE only while no blank line has come in the first
 *    8 KiB; INVALID comes with a status the server documents and a message; COMPLETE gives a
 *    request whose every field lies inside the head and keeps the limits (8 KiB, 32 headers),
 *    with unambiguous framing.
 *  - The server parses again each time bytes arrive, so every prefix that stops before the
 *    blank line must be INCOMPLETE, and the bytes after a head must not change the result.
 *  - After a complete head, http_chunked_decode on the rest, fed whole and fed a byte at a
 *    time (as slow clients send it), consumes the same bytes, emits the same data and ends
 *    the same way.
 *
 * Each parse gets a buffer of exactly its size, so AddressSanitizer sees any read past it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http_parse.h"

struct output {
    char *data;
    size_t length;
};

static void require(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_http: %s\n", what);
        abort();
    }
}

static char *copy(const uint8_t *data, size_t size)
{
    char *buffer = malloc(size ? size : 1);

    require(buffer != NULL, "out of host memory");
    memcpy(buffer, data, size);
    return buffer;
}

static bool inside(const char *p, size_t length, const char *head, size_t head_length)
{
    return p >= head && length <= head_length && (size_t)(p - head) <= head_length - length;
}

static bool is_token(const struct http_text *text)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (text->length == 0)
        return false;
    for (size_t i = 0; i < text->length; i++) {
        char c = text->data[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (c == '\0' || !strchr(extra, c)))
            return false;
    }
    return true;
}

static size_t count(const struct http_request *r, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < r->header_count; i++)
        n += http_text_equals(&r->headers[i].name, name);
    return n;
}

static void check_error(const struct http_error *error)
{
    int s = error->status;

    require(s == 400 || s == 431 || s == 501 || s == 505, "an undocumented error status");
    require(error->message != NULL && error->message[0] != '\0', "an error without a message");
}

static void check_request(const struct http_request *r, const char *head, size_t size)
{
    size_t h = r->head_length;

    require(h > 0 && h <= size && h <= HTTP_MAX_HEAD_SIZE, "head_length out of range");
    require(head[h - 1] == '\n', "the head does not end with a line feed");
    require(is_token(&r->method) && inside(r->method.data, r->method.length, head, h),
            "the method is not a token inside the head");
    require(r->target.length > 0 && r->target.data[0] == '/' &&
                inside(r->target.data, r->target.length, head, h),
            "the target is not a path inside the head");
    /* HTTP/1.2 would be answered as 1.1 (RFC 9110 2.5), so any 1.x may parse. */
    require(r->minor_version >= 0 && r->minor_version <= 9, "an HTTP version other than 1.x");
    require(r->header_count <= HTTP_MAX_HEADERS, "too many headers accepted");
    for (size_t i = 0; i < r->header_count; i++) {
        const struct http_header *f = &r->headers[i];
        require(is_token(&f->name) && inside(f->name.data, f->name.length, head, h),
                "a header name is not a token inside the head");
        require(inside(f->value.data, f->value.length, head, h), "a value outside the head");
        for (size_t j = 0; j < f->value.length; j++) {
            unsigned char c = (unsigned char)f->value.data[j];
            require((c >= ' ' || c == '\t') && c != 0x7F, "a control character in a value");
        }
    }
    require(!(r->chunked && r->has_content_length), "both chunked and a Content-Length");
    require(!r->chunked || r->minor_version >= 1, "chunked in HTTP/1.0");
    require(r->minor_version == 0 || count(r, "host") == 1,
            "an HTTP/1.1 request without exactly one Host accepted");
    require(!r->chunked || count(r, "transfer-encoding") == 1,
            "chunked with more than one Transfer-Encoding field");
    if (!http_find_header(r, "connection"))
        require(r->keep_alive == (r->minor_version >= 1),
                "keep-alive differs from the version's default without a Connection header");
}

/* The same parse of a copy, compared field by field as offsets into the head. */
static void require_same(const struct http_request *a, const char *a_base,
                         const struct http_request *b, const char *b_base)
{
    require(a->head_length == b->head_length && a->minor_version == b->minor_version &&
                a->header_count == b->header_count && a->chunked == b->chunked &&
                a->has_content_length == b->has_content_length &&
                a->content_length == b->content_length && a->keep_alive == b->keep_alive,
            "the bytes after the head changed the request");
    require(a->method.data - a_base == b->method.data - b_base &&
                a->target.data - a_base == b->target.data - b_base &&
                a->target.length == b->target.length,
            "the bytes after the head moved the request line");
}

static void check_head(const uint8_t *data, size_t size, struct http_request *request,
                       enum http_parse_result *result)
{
    char *buffer = copy(data, size);
    struct http_error error = { 0 };

    *result = http_parse_head(buffer, size, request, &error);
    if (*result == HTTP_INCOMPLETE)
        require(size < HTTP_MAX_HEAD_SIZE, "INCOMPLETE with 8 KiB or more received");
    if (*result == HTTP_INVALID)
        check_error(&error);
    if (*result == HTTP_COMPLETE) {
        size_t h = request->head_length;
        struct http_request alone;
        char *head = copy(data, h), *prefix = copy(data, h - 1);

        check_request(request, buffer, size);
        require(http_parse_head(prefix, h - 1, &alone, &error) == HTTP_INCOMPLETE,
                "a prefix that stops before the blank line was not INCOMPLETE");
        require(http_parse_head(head, h, &alone, &error) == HTTP_COMPLETE,
                "the head alone did not parse");
        require_same(request, buffer, &alone, head);
        free(head);
        free(prefix);
    }
    free(buffer);
}

static void collect(void *context, const char *data, size_t length)
{
    struct output *out = context;

    memcpy(out->data + out->length, data, length);
    out->length += length;
}

static void check_chunked(const uint8_t *data, size_t size)
{
    struct http_chunked_decoder whole = { 0 }, bytewise = { 0 };
    struct http_error whole_error = { 0 }, byte_error = { 0 };
    enum http_parse_result whole_result, byte_result = HTTP_INCOMPLETE;
    struct output whole_out = { copy(data, size), 0 }, byte_out = { copy(data, size), 0 };
    char *input = copy(data, size);
    size_t used = http_chunked_decode(&whole, input, size, collect, &whole_out, &whole_result,
                                      &whole_error);
    size_t byte_used = 0;

    require(used <= size && whole_out.length <= used, "the decoder emitted more than it read");
    require(whole_result != HTTP_INCOMPLETE || used == size,
            "the decoder stopped early without an end or an error");
    while (byte_used < size && byte_result == HTTP_INCOMPLETE) {
        char *one = copy(data + byte_used, 1);
        size_t n = http_chunked_decode(&bytewise, one, 1, collect, &byte_out, &byte_result,
                                       &byte_error);
        require(n <= 1, "the decoder read more than it was given");
        byte_used += n;
        free(one);
        if (n == 0)
            break;
    }
    require(byte_used == used && byte_result == whole_result &&
                byte_out.length == whole_out.length &&
                memcmp(byte_out.data, whole_out.data, whole_out.length) == 0,
            "decoding a byte at a time differs from decoding at once");
    if (whole_result == HTTP_INVALID) {
        require(whole_error.status == 400, "a chunked error is not a 400");
        require(whole_error.message && whole_error.message[0], "a chunked error without message");
    }
    free(input);
    free(whole_out.data);
    free(byte_out.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_request request;
    enum http_parse_result result;

    check_head(data, size, &request, &result);
    if (result == HTTP_COMPLETE)
        check_chunked(data + request.head_length, size - request.head_length);
    return 0;
}
