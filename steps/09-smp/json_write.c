/*
 * The one thing the API writes that needs care: a string, escaped for JSON. Everything else in
 * a response is numbers and fixed text, which strbuf_printf writes as they are.
 */
#include <stddef.h>
#include "json.h"
#include "strbuf.h"
#include "string.h"
#include "utf8.h"

/* The escape for a byte that JSON does not allow raw in a string, or NULL. */
static const char *short_escape(unsigned char c)
{
    switch (c) {
    case '"':  return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default:   return NULL;
    }
}

static void write_escape(struct strbuf *b, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    const char *escape = short_escape(c);
    char unicode[] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

    if (escape)
        strbuf_append_str(b, escape);
    else
        strbuf_append(b, unicode, sizeof(unicode));
}

/* How many bytes from the start need no escaping: printable ASCII and well-formed UTF-8. */
static size_t plain_run(const unsigned char *bytes, size_t length)
{
    size_t at = 0, sequence;

    while (at < length) {
        if (bytes[at] < 0x80) {
            if (bytes[at] < 0x20 || bytes[at] == '"' || bytes[at] == '\\')
                break;
            at++;
            continue;
        }
        sequence = utf8_sequence_length(bytes + at, length - at);
        if (sequence == 0)
            break;
        at += sequence;
    }
    return at;
}

void json_write_string(struct strbuf *b, const void *bytes, size_t length)
{
    const unsigned char *s = bytes;
    size_t at = 0, run;

    strbuf_append(b, "\"", 1);
    while (at < length) {
        run = plain_run(s + at, length - at);
        strbuf_append(b, s + at, run);
        at += run;
        if (at == length)
            break;
        if (s[at] < 0x80)
            write_escape(b, s[at]);
        else
            strbuf_append_str(b, "\\ufffd");
        at++;
    }
    strbuf_append(b, "\"", 1);
}
