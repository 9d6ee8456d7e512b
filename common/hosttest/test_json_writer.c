/*
 * utf8.c against a decoder written the other way (bit masks, then range checks), strbuf.c,
 * and json_write_string, with the property parse(write(x)) == x.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "kernel_shim.h"
#include "strbuf.h"
#include "test_json.h"
#include "utf8.h"

/* The length of the sequence at s and its code point in *code_point, or 0 if malformed. */
static size_t reference_utf8(const unsigned char *s, size_t available, uint32_t *code_point)
{
    size_t length;
    uint32_t minimum;

    if (available == 0)
        return 0;
    if (s[0] < 0x80) {
        *code_point = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0) {
        length = 2, *code_point = s[0] & 0x1f, minimum = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        length = 3, *code_point = s[0] & 0x0f, minimum = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        length = 4, *code_point = s[0] & 0x07, minimum = 0x10000;
    } else {
        return 0;
    }
    if (available < length)
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *code_point = *code_point << 6 | (s[i] & 0x3f);
    }
    if (*code_point < minimum || *code_point > 0x10ffff ||
        (*code_point >= 0xd800 && *code_point <= 0xdfff))
        return 0;
    return length;
}

static void test_utf8_sequences(void)
{
    static const unsigned char last_bytes[] = { 0x7f, 0x80, 0xbf, 0xc0 };
    long mismatches = 0;
    uint32_t code_point;

    for (uint32_t b = 0; b < 1u << 24; b++) {
        unsigned char s[4] = { (unsigned char)(b >> 16), (unsigned char)(b >> 8),
                               (unsigned char)b, 0 };

        for (size_t available = 0; available <= 3; available++)
            mismatches += utf8_sequence_length(s, available) !=
                          reference_utf8(s, available, &code_point);
        for (size_t i = 0; i < sizeof(last_bytes); i++) {
            s[3] = last_bytes[i];
            mismatches += utf8_sequence_length(s, 4) != reference_utf8(s, 4, &code_point);
        }
    }
    check(mismatches == 0, "utf8_sequence_length disagrees %ld times", mismatches);
}

static void test_utf8_encode(void)
{
    long mismatches = 0;

    for (uint32_t c = 0; c <= 0x10ffff; c++) {
        unsigned char s[UTF8_MAX_LENGTH];
        uint32_t decoded = 0;
        size_t length;

        if (c >= 0xd800 && c <= 0xdfff)
            continue;
        length = utf8_encode(c, s);
        mismatches += reference_utf8(s, length, &decoded) != length || decoded != c;
    }
    check(mismatches == 0, "utf8_encode wrong for %ld code points", mismatches);
}

void test_utf8(void)
{
    test_utf8_sequences();
    test_utf8_encode();
}

static bool holds(const struct strbuf *b, const char *bytes, size_t length)
{
    return b->length == length && b->data && memcmp(b->data, bytes, length) == 0 &&
           b->data[length] == '\0' && b->capacity > length;
}

static void test_strbuf_growth(void)
{
    struct strbuf b;
    char expected[10000], long_word[300];

    strbuf_init(&b);
    check(b.data == NULL && b.length == 0 && !b.failed, "a new strbuf is empty");
    strbuf_append(&b, "", 0);
    check(holds(&b, "", 0), "appending nothing gives an empty string");
    strbuf_append_str(&b, "abc");
    strbuf_append(&b, "d\0e", 3);
    check(holds(&b, "abcd\0e", 6), "append and append_str, NUL included");
    strbuf_free(&b);
    check(b.data == NULL && b.length == 0, "strbuf_free empties");

    for (size_t i = 0; i < sizeof(expected); i++) {
        expected[i] = (char)('a' + i % 26);
        strbuf_append(&b, &expected[i], 1);
    }
    check(holds(&b, expected, sizeof(expected)), "10000 one-byte appends");
    strbuf_free(&b);

    memset(long_word, 'x', sizeof(long_word) - 1);
    long_word[sizeof(long_word) - 1] = '\0';
    strbuf_printf(&b, "%d|%s|%lu", -42, "ok", 18446744073709551615UL);
    check(holds(&b, "-42|ok|18446744073709551615", 27), "strbuf_printf into an empty buffer");
    strbuf_printf(&b, "<%s>", long_word);
    check(b.length == 27 + 301 && b.data[27] == '<' && b.data[327] == '>' &&
              b.data[328] == '\0' && b.data[200] == 'x',
          "strbuf_printf that has to grow the buffer");
    strbuf_free(&b);
}

static void test_strbuf_failure(void)
{
    struct strbuf b;
    char big[200];

    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    strbuf_init(&b);
    shim_fail_after = 0;
    strbuf_append_str(&b, "abc");
    shim_fail_after = -1;
    strbuf_append_str(&b, "def");
    strbuf_printf(&b, "%d", 1);
    check(b.failed && b.length == 0 && b.data == NULL, "appends after a failed one do nothing");
    strbuf_free(&b);
    check(!b.failed, "strbuf_free clears failed");

    strbuf_append_str(&b, "abc");
    shim_fail_after = 0;
    strbuf_printf(&b, "%s", big);
    shim_fail_after = -1;
    check(b.failed && holds(&b, "abc", 3), "a failed printf leaves what was there");
    strbuf_free(&b);

    strbuf_append_str(&b, "abc");
    strbuf_append(&b, big, SIZE_MAX - 2);
    check(b.failed && holds(&b, "abc", 3), "a length that would overflow fails, reading nothing");
    strbuf_free(&b);
}

void test_strbuf(void)
{
    test_strbuf_growth();
    test_strbuf_failure();
}

static const struct { const char *in; size_t length; const char *out; } writer_cases[] = {
    { "", 0, "\"\"" },
    { "abc", 3, "\"abc\"" },
    { "a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"" },
    { "\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"" },
    { "\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"" },
    { "a\0b", 3, "\"a\\u0000b\"" },
    { "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9, "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"" },
    { "\xFF", 1, "\"\\ufffd\"" },
    { "a\x80z", 3, "\"a\\ufffdz\"" },
    { "\xC0\xAF", 2, "\"\\ufffd\\ufffd\"" },
    { "\xE2\x82", 2, "\"\\ufffd\\ufffd\"" },
    { "\xE2\x82" "a", 3, "\"\\ufffd\\ufffda\"" },
    { "\xED\xA0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"" },
    { "\xF4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
    { "\xF0\x9F\x98", 3, "\"\\ufffd\\ufffd\\ufffd\"" },
    { "\xC3\xA9\xC3", 3, "\"\xC3\xA9\\ufffd\"" },
};

static void test_writer_cases(void)
{
    for (size_t i = 0; i < sizeof(writer_cases) / sizeof(writer_cases[0]); i++) {
        struct strbuf b;
        const char *expected = writer_cases[i].out;

        strbuf_init(&b);
        json_write_string(&b, writer_cases[i].in, writer_cases[i].length);
        check(holds(&b, expected, strlen(expected)), "write '%s' gave '%s', wanted '%s'",
              show(writer_cases[i].in, writer_cases[i].length), show(b.data, b.length),
              show(expected, strlen(expected)));
        strbuf_free(&b);
    }
}

/* What json_write_string must turn bytes into: each byte no sequence starts at is U+FFFD. */
static size_t reference_replace(const unsigned char *in, size_t length, unsigned char *out)
{
    size_t at = 0, written = 0, sequence;
    uint32_t code_point;

    while (at < length) {
        sequence = reference_utf8(in + at, length - at, &code_point);
        if (sequence == 0) {
            memcpy(out + written, "\xEF\xBF\xBD", 3);
            written += 3;
            at++;
        } else {
            memcpy(out + written, in + at, sequence);
            written += sequence;
            at += sequence;
        }
    }
    return written;
}

static uint32_t random_code_point(void)
{
    static const uint32_t ranges[][2] = {
        { 0, 0x1f }, { 0x20, 0x7f }, { 0x80, 0x7ff }, { 0x800, 0xd7ff }, { 0xe000, 0xffff },
        { 0x10000, 0x10ffff }, { '"', '"' }, { '\\', '\\' },
    };
    const uint32_t *range = ranges[random_below(sizeof(ranges) / sizeof(ranges[0]))];

    return range[0] + (uint32_t)random_below(range[1] - range[0] + 1);
}

/* Write bytes as a JSON string and read it back: it must parse, to expected. */
static bool round_trips(const unsigned char *bytes, size_t length, const unsigned char *expected,
                        size_t expected_length)
{
    struct strbuf b;
    struct json_error error;
    struct json_value *value;
    bool ok;

    strbuf_init(&b);
    json_write_string(&b, bytes, length);
    value = parse_exact(b.data, b.length, &error);
    ok = value && value->type == JSON_STRING && value->string.length == expected_length &&
         memcmp(value->string.bytes, expected, expected_length) == 0;
    if (!ok)
        check(false, "round trip of '%s' through '%s': %s", show((const char *)bytes, length),
              show(b.data, b.length), value ? "changed" : error.message);
    json_free(value);
    strbuf_free(&b);
    return ok;
}

static void test_round_trips(void)
{
    unsigned char text[400], replaced[1200];
    int failures = 0;

    for (int i = 0; i < 20000; i++) {
        size_t length = 0, characters = random_below(80);

        for (size_t c = 0; c < characters; c++)
            length += utf8_encode(random_code_point(), text + length);
        failures += !round_trips(text, length, text, length);
    }
    check(failures == 0, "%d valid UTF-8 strings did not survive write and parse", failures);

    failures = 0;
    for (int i = 0; i < 20000; i++) {
        size_t length = random_below(100);

        /* Extra continuation bytes, so that some random sequences are well formed. */
        for (size_t b = 0; b < length; b++)
            text[b] = (unsigned char)(random_below(3) ? random_below(256)
                                                      : 0x80 + random_below(64));
        failures += !round_trips(text, length, replaced,
                                 reference_replace(text, length, replaced));
    }
    check(failures == 0, "%d byte strings did not come back with U+FFFD replacements", failures);
}

void test_writer(void)
{
    test_writer_cases();
    test_round_trips();
}
