/*
 * Unit tests for json.c, json_number.c, strbuf.c and utf8.c, run on the host. Every document
 * is parsed from a buffer of exactly its length, so AddressSanitizer sees any read past it.
 * Ends with the line "N passed, N failed"; the exit status is 1 if anything failed.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "kernel_shim.h"
#include "test_json.h"

#define DOC(literal) { literal, sizeof(literal) - 1 }

struct document {
    const char *text;
    size_t length;
};

static int passed, failed;

bool check(bool ok, const char *format, ...)
{
    va_list args;

    if (ok) {
        passed++;
        return true;
    }
    failed++;
    printf("FAIL: ");
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    printf("\n");
    return false;
}

/* bytes made printable for a failure message; the buffer is reused by the next call. */
const char *show(const char *bytes, size_t length)
{
    static char shown[4][256];
    static int next;
    char *out = shown[next++ % 4];
    size_t used = 0;

    for (size_t i = 0; i < length && used + 8 < sizeof(shown[0]); i++) {
        unsigned char c = (unsigned char)bytes[i];
        used += (size_t)sprintf(out + used, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
    }
    out[used] = '\0';
    return out;
}

/* xorshift64* */
uint64_t random_below(uint64_t limit)
{
    static uint64_t state = 0x9e3779b97f4a7c15ULL;

    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dULL % limit;
}

/* Parse from a copy of exactly length bytes, so that reading past the end is caught. */
struct json_value *parse_exact(const char *text, size_t length, struct json_error *error)
{
    char *copy = malloc(length ? length : 1);
    struct json_value *root;

    memcpy(copy, text, length);
    root = json_parse(copy, length, error);
    free(copy);
    return root;
}

struct json_value *parse_text(const char *text)
{
    struct json_error error;
    struct json_value *root = parse_exact(text, strlen(text), &error);

    if (!root)
        check(false, "parse '%s': %s", show(text, strlen(text)), error.message);
    return root;
}

static bool string_is(const struct json_value *value, const char *bytes, size_t length)
{
    return value && value->type == JSON_STRING && value->string.length == length &&
           memcmp(value->string.bytes, bytes, length) == 0 && value->string.bytes[length] == 0;
}

static void test_valid_documents(void)
{
    static const struct document valid[] = {
        DOC("null"), DOC("true"), DOC("false"), DOC("0"), DOC("-0"), DOC("1"), DOC("-1"),
        DOC("0.5"), DOC("-0.0e0"), DOC("1e5"), DOC("1E5"), DOC("1e+5"), DOC("1e-5"),
        DOC("123.456e-789"), DOC("12345678901234567890123456789"), DOC("\"\""),
        DOC("\"abc\""), DOC("[]"), DOC("{}"), DOC("[[]]"), DOC("[{}]"), DOC("{\"\":{}}"),
        DOC(" \t\r\n[ 1 , 2 ] \n"), DOC("[1,\"a\",true,false,null,{},[],-2.5]"),
        DOC("{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":{\"e\":\"f\"}}"),
        DOC("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), DOC("\"\\u0000\""), DOC("\"\\uD83D\\uDE00\""),
        DOC("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""), DOC("\"\xF4\x8F\xBF\xBF\""),
        DOC("\"\xEF\xBF\xBF\x7F\""), DOC("{\"a\":1,\"a\":2}"), DOC("[ ]"), DOC("{ }"),
    };

    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        struct json_error error;
        struct json_value *root = parse_exact(valid[i].text, valid[i].length, &error);

        check(root != NULL, "valid document '%s' rejected: %s",
              show(valid[i].text, valid[i].length), root ? "" : error.message);
        json_free(root);
    }
}

struct bad_document {
    const char *text;
    size_t length;
    size_t offset;   /* where the error must be reported */
};

#define BAD(literal, offset) { literal, sizeof(literal) - 1, offset }

static void test_invalid_documents(void)
{
    static const struct bad_document invalid[] = {
        BAD("", 0), BAD("  ", 2), BAD("[1,]", 3), BAD("[1 2]", 3), BAD("[,1]", 1),
        BAD("{\"a\" 1}", 5), BAD("{\"a\":1,}", 7), BAD("{,}", 1), BAD("{a:1}", 1),
        BAD("{\"a\":}", 5), BAD("{\"a\"}", 4), BAD("{1:2}", 1), BAD("[1,2", 4),
        BAD("{\"a\":1", 6), BAD("[", 1), BAD("]", 0), BAD("}", 0),
        BAD("01", 1), BAD("-01", 2), BAD("00", 1), BAD("+1", 0), BAD(".5", 0), BAD("1.", 2),
        BAD("1.e5", 2), BAD("1e", 2), BAD("1e+", 3), BAD("1E-", 3), BAD("-", 1),
        BAD("--1", 1), BAD("-a", 1), BAD("0x10", 1), BAD("1.5.5", 3),
        BAD("NaN", 0), BAD("Infinity", 0), BAD("-Infinity", 1), BAD("nan", 0),
        BAD("True", 0), BAD("FALSE", 0), BAD("Null", 0), BAD("nul", 0), BAD("tru", 0),
        BAD("nulll", 4), BAD("truefalse", 4), BAD("[1]x", 3), BAD("1 2", 2), BAD("{}{}", 2),
        BAD("/*c*/1", 0), BAD("1//c", 1), BAD("# c\n1", 0), BAD("'a'", 0),
        BAD("\"abc", 4), BAD("\"", 1), BAD("\"a\x01\"", 2), BAD("\"\x1f\"", 1),
        BAD("\"a\nb\"", 2), BAD("\"\t\"", 1), BAD("\"\\x\"", 1), BAD("\"\\a\"", 1),
        BAD("\"\\'\"", 1), BAD("\"\\U0041\"", 1), BAD("\"\\", 2), BAD("\"\\u12\"", 5),
        BAD("\"\\u12G4\"", 5), BAD("\"\\u", 3), BAD("\"\\uD800\"", 1), BAD("\"\\uDC00\"", 1),
        BAD("\"\\uDFFF\\uD800\"", 1), BAD("\"\\uD800\\u0041\"", 1), BAD("\"\\uD800x\"", 1),
        BAD("\"\\uD800\\n\"", 1), BAD("\"\\uD800\\uD800\"", 1), BAD("\"\\uD800\\uDC0\"", 12),
        BAD("\"\\uD800\\", 1), BAD("\"\\uDBFF\"", 1),
        BAD("\xEF\xBB\xBF" "1", 0), BAD("\f1", 0), BAD("\v1", 0), BAD("1\f", 1),
        BAD("\xC2\xA0" "1", 0), BAD("\x00", 0), BAD("1\x00", 1), BAD("\"a\"\x00", 3),
        BAD("\"\xC0\xAF\"", 1), BAD("\"\xC1\xBF\"", 1), BAD("\"\xE0\x80\xAF\"", 1),
        BAD("\"\xE0\x9F\xBF\"", 1), BAD("\"\xF0\x80\x80\xAF\"", 1), BAD("\"\xF0\x8F\xBF\xBF\"", 1),
        BAD("\"\xED\xA0\x80\"", 1), BAD("\"\xED\xBF\xBF\"", 1), BAD("\"\xF4\x90\x80\x80\"", 1),
        BAD("\"\xF5\x80\x80\x80\"", 1), BAD("\"\xFF\"", 1), BAD("\"\xFE\"", 1),
        BAD("\"\x80\"", 1), BAD("\"\xBF\"", 1), BAD("\"a\xE2\x82\"", 2), BAD("\"\xE2\x82", 1),
        BAD("\"\xF0\x9F\x98\"", 1), BAD("\"\xC3\"", 1), BAD("\"\xC3" "A\"", 1),
        BAD("[\"a\",\"\xE9\"]", 6), BAD("{\"\xE9\":1}", 2), BAD("\xC3\xA9", 0),
        BAD("[1,,2]", 3), BAD("{\"a\":1,,\"b\":2}", 7), BAD("{\"a\"::1}", 5),
        BAD("[\"a\":1]", 4), BAD("{\"a\",1}", 4), BAD("[1;2]", 2),
    };

    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        const struct bad_document *bad = &invalid[i];
        struct json_error error;
        struct json_value *root = parse_exact(bad->text, bad->length, &error);
        char suffix[48];

        snprintf(suffix, sizeof(suffix), " at byte %zu", bad->offset);
        if (!check(root == NULL, "invalid document '%s' accepted", show(bad->text, bad->length))) {
            json_free(root);
            continue;
        }
        check(error.offset == bad->offset && strstr(error.message, suffix) != NULL,
              "'%s': error at %zu, wanted %zu: %s", show(bad->text, bad->length), error.offset,
              bad->offset, error.message);
    }
}

static void test_error_messages(void)
{
    static const struct { const char *text, *message; } cases[] = {
        { "{\"temperature\" 1}", "expected ':' after object key at byte 15" },
        { "[1,2", "expected ',' or ']' after array item at byte 4 (end of input)" },
        { "[1,]", "expected a value at byte 3" },
        { "01", "leading zeros are not allowed in numbers at byte 1" },
        { "\"\\uDE00\"", "lone low surrogate (\\uDC00-\\uDFFF) at byte 1" },
        { "\"\xFF\"", "invalid UTF-8 in string at byte 1" },
        { "{\"a\":1}]", "unexpected data after the JSON value at byte 7" },
        { "\"a\x02\"", "control character in string (must be escaped) at byte 2" },
    };
    struct json_error error;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check(parse_exact(cases[i].text, strlen(cases[i].text), &error) == NULL &&
                  strcmp(error.message, cases[i].message) == 0,
              "message for '%s' is '%s', wanted '%s'", show(cases[i].text, strlen(cases[i].text)),
              error.message, cases[i].message);
    }
    check(json_parse("[", 1, NULL) == NULL, "json_parse with a NULL error pointer");
}

static void test_tree_shape(void)
{
    struct json_value *root = parse_text(
        "{\"model\":\"m\",\"n\":[1,-2.5e3,true,false,null,\"s\",[],{}],\"o\":{\"k\":\"v\"},"
        "\"dup\":1,\"dup\":2,\"a\\u0000b\":3}");
    const struct json_value *n, *o, *dup;

    if (!root)
        return;
    check(root->type == JSON_OBJECT && root->object.count == 6, "root object has 6 members");
    check(root->object.members[0].key_length == 5 &&
              memcmp(root->object.members[0].key, "model", 6) == 0,
          "first member key, NUL-terminated");
    check(string_is(json_get(root, "model"), "m", 1), "json_get model");
    n = json_get(root, "n");
    check(n && n->type == JSON_ARRAY && n->array.count == 8, "array of 8");
    if (n && n->type == JSON_ARRAY && n->array.count == 8) {
        check(n->array.items[0].type == JSON_NUMBER && n->array.items[0].number.length == 1 &&
                  n->array.items[0].number.text[0] == '1',
              "number text 1");
        check(n->array.items[1].number.length == 6 &&
                  memcmp(n->array.items[1].number.text, "-2.5e3", 6) == 0,
              "number text -2.5e3");
        check(n->array.items[2].type == JSON_TRUE && n->array.items[3].type == JSON_FALSE &&
                  n->array.items[4].type == JSON_NULL,
              "literals");
        check(string_is(&n->array.items[5], "s", 1), "string in array");
        check(n->array.items[6].type == JSON_ARRAY && n->array.items[6].array.count == 0,
              "empty array");
        check(n->array.items[7].type == JSON_OBJECT && n->array.items[7].object.count == 0,
              "empty object");
    }
    o = json_get(root, "o");
    check(string_is(json_get(o, "k"), "v", 1), "nested json_get");
    check(json_get(o, "missing") == NULL, "json_get of a missing key");
    check(json_get(n, "k") == NULL && json_get(NULL, "k") == NULL, "json_get on a non-object");
    dup = json_get(root, "dup");
    check(dup && dup->number.text[0] == '1', "duplicate keys: json_get returns the first");
    check(root->object.members[4].key_length == 3 &&
              root->object.members[4].value.number.text[0] == '2',
          "duplicate keys: both kept in order");
    check(json_get(root, "a") == NULL, "a key with a NUL inside does not match its prefix");
    check(root->object.members[5].key_length == 3 &&
              memcmp(root->object.members[5].key, "a\0b", 3) == 0,
          "key with an escaped NUL");
    json_free(root);
}

static void expect_string(const char *json, const char *bytes, size_t length)
{
    struct json_value *root = parse_text(json);

    check(string_is(root, bytes, length), "'%s' decodes to '%s'", show(json, strlen(json)),
          show(bytes, length));
    json_free(root);
}

static void test_string_decoding(void)
{
    expect_string("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    expect_string("\"\\u0000\"", "\0", 1);
    expect_string("\"a\\u0000b\\u0000\"", "a\0b\0", 4);
    expect_string("\"\\u0041\\u00e9\\u00E9\"", "A\xC3\xA9\xC3\xA9", 5);
    expect_string("\"\\u20ac\\u20AC\"", "\xE2\x82\xAC\xE2\x82\xAC", 6);
    expect_string("\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
                  "\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF", 11);
    expect_string("\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80", 4);
    expect_string("\"\\ud83d\\ude00x\"", "\xF0\x9F\x98\x80x", 5);
    expect_string("\"\\uD800\\uDC00\"", "\xF0\x90\x80\x80", 4);
    expect_string("\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4);
    expect_string("\"\xF0\x9F\x98\x80\\n\xE2\x82\xAC\"", "\xF0\x9F\x98\x80\n\xE2\x82\xAC", 8);
    expect_string("\"\\uFEFF\"", "\xEF\xBB\xBF", 3);
    expect_string("\"\\\\u0041\"", "\\u0041", 6);
}

/* depth arrays (or objects) nested around a 0. */
static char *nested(int depth, bool objects, size_t *length)
{
    char *text = malloc((size_t)depth * 6 + 2);
    size_t at = 0;

    for (int i = 0; i < depth; i++)
        at += (size_t)sprintf(text + at, objects ? "{\"\":" : "[");
    text[at++] = '0';
    for (int i = 0; i < depth; i++)
        text[at++] = objects ? '}' : ']';
    *length = at;
    return text;
}

static void test_depth(void)
{
    static const int depths[] = { 1, 63, 64, 65, 100, 100000 };
    struct json_error error;

    for (int objects = 0; objects <= 1; objects++) {
        for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
            size_t length;
            char *text = nested(depths[i], objects, &length);
            struct json_value *root = parse_exact(text, length, &error);
            size_t deepest = objects ? (size_t)JSON_MAX_DEPTH * 4 : JSON_MAX_DEPTH;

            if (depths[i] <= JSON_MAX_DEPTH)
                check(root != NULL, "depth %d accepted", depths[i]);
            else
                check(!root && error.offset == deepest &&
                          strstr(error.message, "nested deeper than 64"),
                      "depth %d %s: '%s' at %zu", depths[i], objects ? "objects" : "arrays",
                      error.message, error.offset);
            json_free(root);
            free(text);
        }
    }
}

/* A cut-off document must fail cleanly, never read past its end, never leak. */
static void test_prefixes(void)
{
    static const char *documents[] = {
        "{\"a\":[1,-2.5e+3,true,false,null,\"s\\u00e9\\uD83D\\uDE00\\n\"],\"b\":{\"c\":{}}}",
        "[\"\xF0\x9F\x98\x80\xE2\x82\xAC\xC3\xA9\",0.5e-1,[[[]]]]",
    };

    for (size_t d = 0; d < sizeof(documents) / sizeof(documents[0]); d++) {
        size_t length = strlen(documents[d]);

        for (size_t cut = 0; cut < length; cut++) {
            struct json_error error;
            struct json_value *root = parse_exact(documents[d], cut, &error);

            check(root == NULL && error.offset <= cut,
                  "prefix of %zu bytes: error at %zu: %s", cut, error.offset, error.message);
            json_free(root);
        }
    }
}

/* Fail each allocation in turn: every failure must report and free everything. */
static void test_out_of_memory(void)
{
    static const char *documents[] = {
        "{\"a\":[1,2,3,4,5,6,7,8,9,10,[[],{}]],\"b\":{\"c\":{\"d\":\"e\"},\"f\":[{},{},{}]},"
        "\"g\":1,\"h\":2,\"i\":3,\"j\":4,\"k\":5}",
        "[[[[[[[[1,2,3,4,5]]]]]]]]",
    };

    for (size_t d = 0; d < sizeof(documents) / sizeof(documents[0]); d++) {
        for (long budget = 0;; budget++) {
            struct json_error error;
            struct json_value *root;
            long live = shim_live_blocks;

            shim_fail_after = budget;
            root = parse_exact(documents[d], strlen(documents[d]), &error);
            shim_fail_after = -1;
            if (root) {
                check(budget > 5, "document %zu needs %ld allocations", d, budget);
                json_free(root);
                break;
            }
            check(shim_live_blocks == live && strstr(error.message, "out of memory"),
                  "allocation %ld failed: %ld blocks leaked, '%s'", budget,
                  shim_live_blocks - live, error.message);
        }
    }
}

int main(void)
{
    test_valid_documents();
    test_invalid_documents();
    test_error_messages();
    test_tree_shape();
    test_string_decoding();
    test_depth();
    test_prefixes();
    test_out_of_memory();
    test_numbers();
    test_utf8();
    test_strbuf();
    test_writer();
    check(shim_live_blocks == 0, "%ld heap blocks leaked", shim_live_blocks);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
