/*
 * The request head is parsed only once it has fully arrived (up to the blank line), in one
 * pass over the buffer; the parsed request points into that buffer. Anything RFC 9112 lets a
 * server reject is rejected, with the status it calls for: a lenient parser is how request
 * smuggling and header confusion start.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "http_parse.h"
#include "string.h"

#define MAX_CONTENT_LENGTH_DIGITS 15
#define MAX_CHUNK_SIZE_DIGITS 15
#define MAX_CHUNK_LINE 4096

struct cursor {
    const char *p;
    const char *end;
};

static bool invalid(struct http_error *error, int status, const char *message)
{
    error->status = status;
    error->message = message;
    return false;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool equals_ignoring_case(const char *a, size_t length, const char *b)
{
    size_t i = 0;

    for (; i < length && b[i]; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return i == length && b[i] == '\0';
}

bool http_text_equals(const struct http_text *text, const char *s)
{
    return equals_ignoring_case(text->data, text->length, s);
}

/* Methods are case-sensitive (RFC 9110), unlike header names. */
bool http_method_is(const struct http_request *request, const char *method)
{
    return strlen(method) == request->method.length &&
           memcmp(request->method.data, method, request->method.length) == 0;
}

/* tchar from RFC 9110: the characters allowed in methods and header names. */
static bool is_token_char(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    for (const char *p = "!#$%&'*+-.^_`|~"; *p; p++)
        if (c == *p)
            return true;
    return false;
}

static bool is_whitespace(char c)
{
    return c == ' ' || c == '\t';
}

/* The next line without its line ending (CRLF, or a bare LF, which RFC 9112 allows). */
static bool next_line(struct cursor *cursor, struct http_text *line)
{
    const char *start = cursor->p;

    while (cursor->p < cursor->end && *cursor->p != '\n')
        cursor->p++;
    if (cursor->p == cursor->end)
        return false;
    line->data = start;
    line->length = (size_t)(cursor->p - start);
    if (line->length > 0 && start[line->length - 1] == '\r')
        line->length--;
    cursor->p++;
    return true;
}

/* Where the head ends: just past the first empty line. 0 if it has not arrived yet. */
static size_t head_end(const char *buffer, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        if (buffer[i] != '\n')
            continue;
        if (i + 1 < length && buffer[i + 1] == '\n')
            return i + 2;
        if (i + 2 < length && buffer[i + 1] == '\r' && buffer[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static bool take_token(struct http_text *line, size_t *at, struct http_text *token)
{
    size_t start = *at;

    while (*at < line->length && is_token_char(line->data[*at]))
        (*at)++;
    token->data = line->data + start;
    token->length = *at - start;
    return token->length > 0;
}

static bool parse_version(const char *v, size_t length, struct http_request *request,
                          struct http_error *error)
{
    if (length != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return invalid(error, 400, "malformed HTTP version in the request line");
    if (v[5] != '1')
        return invalid(error, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    request->minor_version = v[7] - '0';
    return true;
}

/* method SP request-target SP HTTP-version */
static bool parse_request_line(struct http_text *line, struct http_request *request,
                               struct http_error *error)
{
    size_t at = 0, target_start;

    if (!take_token(line, &at, &request->method) || at >= line->length || line->data[at] != ' ')
        return invalid(error, 400, "malformed request line: expected a method and a space");
    target_start = ++at;
    while (at < line->length && line->data[at] > ' ' && line->data[at] < 0x7F)
        at++;
    request->target = (struct http_text){ line->data + target_start, at - target_start };
    if (request->target.length == 0 || at >= line->length || line->data[at] != ' ')
        return invalid(error, 400, "malformed request line: expected a target and a space");
    if (request->target.data[0] != '/')
        return invalid(error, 400, "the request target must be a path starting with '/'");
    at++;
    return parse_version(line->data + at, line->length - at, request, error);
}

static struct http_text trim(const char *data, size_t length)
{
    while (length > 0 && is_whitespace(data[0])) {
        data++;
        length--;
    }
    while (length > 0 && is_whitespace(data[length - 1]))
        length--;
    return (struct http_text){ data, length };
}

static bool parse_header(struct http_text *line, struct http_request *request,
                         struct http_error *error)
{
    struct http_header *header;
    size_t at = 0;

    if (is_whitespace(line->data[0]))
        return invalid(error, 400, "obsolete header line folding is not accepted");
    if (request->header_count == HTTP_MAX_HEADERS)
        return invalid(error, 431, "too many header fields");
    header = &request->headers[request->header_count++];
    if (!take_token(line, &at, &header->name) || at >= line->length || line->data[at] != ':')
        return invalid(error, 400, "malformed header field: expected a name and ':'");
    header->value = trim(line->data + at + 1, line->length - at - 1);
    for (size_t i = 0; i < header->value.length; i++) {
        unsigned char c = (unsigned char)header->value.data[i];
        if ((c < ' ' && c != '\t') || c == 0x7F)
            return invalid(error, 400, "control character in a header field value");
    }
    return true;
}

const struct http_text *http_find_header(const struct http_request *request, const char *name)
{
    for (size_t i = 0; i < request->header_count; i++)
        if (http_text_equals(&request->headers[i].name, name))
            return &request->headers[i].value;
    return NULL;
}

static bool parse_content_length(const struct http_text *value, uint64_t *length)
{
    uint64_t result = 0;

    if (value->length == 0 || value->length > MAX_CONTENT_LENGTH_DIGITS)
        return false;
    for (size_t i = 0; i < value->length; i++) {
        if (value->data[i] < '0' || value->data[i] > '9')
            return false;
        result = result * 10 + (uint64_t)(value->data[i] - '0');
    }
    *length = result;
    return true;
}

/* Every Content-Length field must agree, or the body's end is ambiguous. */
static bool read_content_length(struct http_request *request, struct http_error *error)
{
    for (size_t i = 0; i < request->header_count; i++) {
        uint64_t length;
        if (!http_text_equals(&request->headers[i].name, "content-length"))
            continue;
        if (!parse_content_length(&request->headers[i].value, &length))
            return invalid(error, 400, "Content-Length is not a number");
        if (request->has_content_length && length != request->content_length)
            return invalid(error, 400, "conflicting Content-Length fields");
        request->has_content_length = true;
        request->content_length = length;
    }
    return true;
}

static size_t count_headers(const struct http_request *request, const char *name)
{
    size_t count = 0;

    for (size_t i = 0; i < request->header_count; i++)
        if (http_text_equals(&request->headers[i].name, name))
            count++;
    return count;
}

/*
 * A second Transfer-Encoding field could be read by another server as "chunked, gzip" and
 * frame the body differently: that disagreement is request smuggling, so refuse it.
 */
static bool read_framing(struct http_request *request, struct http_error *error)
{
    const struct http_text *encoding = http_find_header(request, "transfer-encoding");

    if (!read_content_length(request, error))
        return false;
    if (!encoding)
        return true;
    if (count_headers(request, "transfer-encoding") > 1)
        return invalid(error, 400, "more than one Transfer-Encoding field");
    if (request->has_content_length)
        return invalid(error, 400, "both Transfer-Encoding and Content-Length were sent");
    if (request->minor_version == 0)
        return invalid(error, 400, "Transfer-Encoding is not allowed in HTTP/1.0");
    if (!http_text_equals(encoding, "chunked"))
        return invalid(error, 501, "the only supported transfer coding is chunked");
    request->chunked = true;
    return true;
}

/* Does a comma-separated header value list this token? */
static bool lists_token(const struct http_text *value, const char *token)
{
    size_t start = 0;

    for (size_t i = 0; i <= value->length; i++) {
        if (i < value->length && value->data[i] != ',')
            continue;
        struct http_text item = trim(value->data + start, i - start);
        if (http_text_equals(&item, token))
            return true;
        start = i + 1;
    }
    return false;
}

static void read_connection(struct http_request *request)
{
    const struct http_text *connection = http_find_header(request, "connection");

    request->keep_alive = request->minor_version >= 1;
    if (connection && lists_token(connection, "close"))
        request->keep_alive = false;
    else if (connection && lists_token(connection, "keep-alive"))
        request->keep_alive = true;
}

static bool parse_lines(struct cursor *cursor, struct http_request *request,
                        struct http_error *error)
{
    struct http_text line;

    /* RFC 9112 asks servers to ignore empty lines before a request line. */
    do {
        if (!next_line(cursor, &line))
            return invalid(error, 400, "incomplete request head");
    } while (line.length == 0);
    if (!parse_request_line(&line, request, error))
        return false;
    while (next_line(cursor, &line) && line.length > 0)
        if (!parse_header(&line, request, error))
            return false;
    if (request->minor_version >= 1 && count_headers(request, "host") != 1)
        return invalid(error, 400, "HTTP/1.1 requests must have exactly one Host header");
    return read_framing(request, error);
}

enum http_parse_result http_parse_head(const char *buffer, size_t length,
                                       struct http_request *request, struct http_error *error)
{
    size_t end = head_end(buffer, length < HTTP_MAX_HEAD_SIZE ? length : HTTP_MAX_HEAD_SIZE);
    struct cursor cursor = { buffer, buffer + end };

    if (end == 0) {
        if (length < HTTP_MAX_HEAD_SIZE)
            return HTTP_INCOMPLETE;
        invalid(error, 431, "the request head is larger than 8 KiB");
        return HTTP_INVALID;
    }
    *request = (struct http_request){ .head_length = end };
    if (!parse_lines(&cursor, request, error))
        return HTTP_INVALID;
    read_connection(request);
    return HTTP_COMPLETE;
}

enum chunked_state { CHUNK_SIZE, CHUNK_EXTENSION, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER,
                     CHUNK_DONE };

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static enum http_parse_result chunk_error(struct http_error *error, const char *message)
{
    invalid(error, 400, message);
    return HTTP_INVALID;
}

/* A line around the data ended: after a size line comes data (or trailers after size 0). */
static enum http_parse_result chunked_line_end(struct http_chunked_decoder *d,
                                               struct http_error *error)
{
    bool empty = !d->line_has_content;

    d->line_length = 0;
    d->line_has_content = false;
    switch (d->state) {
    case CHUNK_DATA_END:
        d->state = CHUNK_SIZE;
        d->size_digits = 0;
        return HTTP_INCOMPLETE;
    case CHUNK_SIZE:
    case CHUNK_EXTENSION:
        if (d->size_digits == 0)
            return chunk_error(error, "missing chunk size");
        d->state = d->chunk_remaining ? CHUNK_DATA : CHUNK_TRAILER;
        return HTTP_INCOMPLETE;
    default:
        if (!empty)
            return HTTP_INCOMPLETE;
        d->state = CHUNK_DONE;
        return HTTP_COMPLETE;
    }
}

/* One byte of the lines around the data: sizes, extensions, CRLFs and trailers. */
static enum http_parse_result chunked_line_byte(struct http_chunked_decoder *d, char c,
                                                struct http_error *error)
{
    if (++d->line_length > MAX_CHUNK_LINE)
        return chunk_error(error, "chunk header or trailer line too long");
    if (c == '\n')
        return chunked_line_end(d, error);
    if (c == '\r')
        return HTTP_INCOMPLETE;
    d->line_has_content = true;
    if (d->state == CHUNK_DATA_END)
        return chunk_error(error, "chunk data longer than its size");
    if (d->state == CHUNK_SIZE && hex_value(c) >= 0) {
        if (++d->size_digits > MAX_CHUNK_SIZE_DIGITS)
            return chunk_error(error, "chunk size too large");
        d->chunk_remaining = d->chunk_remaining * 16 + (uint64_t)hex_value(c);
        return HTTP_INCOMPLETE;
    }
    if (d->state == CHUNK_SIZE && (c == ';' || is_whitespace(c)) && d->size_digits > 0) {
        d->state = CHUNK_EXTENSION;
        return HTTP_INCOMPLETE;
    }
    if (d->state == CHUNK_SIZE)
        return chunk_error(error, "malformed chunk size");
    return HTTP_INCOMPLETE;
}

size_t http_chunked_decode(struct http_chunked_decoder *d, const char *data, size_t length,
                           void (*emit)(void *context, const char *data, size_t length),
                           void *context, enum http_parse_result *result,
                           struct http_error *error)
{
    size_t at = 0;

    *result = HTTP_INCOMPLETE;
    while (at < length && *result == HTTP_INCOMPLETE) {
        if (d->state == CHUNK_DATA) {
            size_t take = length - at;
            if (take > d->chunk_remaining)
                take = (size_t)d->chunk_remaining;
            emit(context, data + at, take);
            at += take;
            d->chunk_remaining -= take;
            if (d->chunk_remaining == 0)
                d->state = CHUNK_DATA_END;
            continue;
        }
        *result = chunked_line_byte(d, data[at++], error);
    }
    return at;
}
