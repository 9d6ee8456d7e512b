/*
 * libFuzzer target for the JSON module. For any bytes:
 *  - json_parse either fails with an error inside the input, or gives a tree whose strings
 *    are well-formed UTF-8 and whose numbers convert without trouble;
 *  - a tree written back out (strings through json_write_string) parses to the same tree;
 *  - json_write_string of the raw bytes is always a valid JSON string, equal to them when
 *    they are well-formed UTF-8;
 *  - failing any one allocation makes json_parse fail cleanly, leaking nothing.
 * AddressSanitizer and UBSan catch the rest; kernel_shim counts blocks to catch leaks at once.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "kernel_shim.h"
#include "strbuf.h"
#include "utf8.h"

static void require(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_json: %s\n", what);
        abort();
    }
}

static bool is_utf8(const char *bytes, size_t length)
{
    size_t at = 0, sequence;

    while (at < length) {
        sequence = utf8_sequence_length((const unsigned char *)bytes + at, length - at);
        if (sequence == 0)
            return false;
        at += sequence;
    }
    return true;
}

static void check_string(const char *bytes, size_t length)
{
    require(is_utf8(bytes, length), "a parsed string is not UTF-8");
    require(bytes[length] == '\0', "a parsed string is not followed by a NUL");
}

static void check_number(const struct json_value *number)
{
    struct json_value *alone = json_parse(number->number.text, number->number.length, NULL);
    int64_t integer, scaled, thousand;

    require(alone && alone->type == JSON_NUMBER, "a number's text is not a number by itself");
    json_free(alone);
    if (json_number_int64(number, &integer)) {
        require(json_number_scaled(number, 1, &scaled) && scaled == integer,
                "an integer scaled by 1 changed");
        if (integer > -1000000 && integer < 1000000)
            require(json_number_scaled(number, 1000, &thousand) && thousand == integer * 1000,
                    "an integer scaled by 1000 is not 1000 times it");
    }
    json_number_scaled(number, JSON_MAX_SCALE, &scaled);
}

static void check_tree(const struct json_value *value)
{
    switch (value->type) {
    case JSON_NUMBER:
        check_number(value);
        break;
    case JSON_STRING:
        check_string(value->string.bytes, value->string.length);
        break;
    case JSON_ARRAY:
        for (size_t i = 0; i < value->array.count; i++)
            check_tree(&value->array.items[i]);
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < value->object.count; i++) {
            check_string(value->object.members[i].key, value->object.members[i].key_length);
            check_tree(&value->object.members[i].value);
        }
        break;
    default:
        break;
    }
}

static void write_tree(struct strbuf *b, const struct json_value *value)
{
    static const char *const literals[] = { "null", "false", "true" };

    switch (value->type) {
    case JSON_NUMBER:
        strbuf_append(b, value->number.text, value->number.length);
        break;
    case JSON_STRING:
        json_write_string(b, value->string.bytes, value->string.length);
        break;
    case JSON_ARRAY:
        strbuf_append_str(b, "[");
        for (size_t i = 0; i < value->array.count; i++) {
            strbuf_append_str(b, i ? "," : "");
            write_tree(b, &value->array.items[i]);
        }
        strbuf_append_str(b, "]");
        break;
    case JSON_OBJECT:
        strbuf_append_str(b, "{");
        for (size_t i = 0; i < value->object.count; i++) {
            strbuf_append_str(b, i ? "," : "");
            json_write_string(b, value->object.members[i].key, value->object.members[i].key_length);
            strbuf_append_str(b, ":");
            write_tree(b, &value->object.members[i].value);
        }
        strbuf_append_str(b, "}");
        break;
    default:
        strbuf_append_str(b, literals[value->type]);
    }
}

static bool same_bytes(const char *a, size_t a_length, const char *b, size_t b_length)
{
    return a_length == b_length && memcmp(a, b, a_length) == 0;
}

static bool same_tree(const struct json_value *a, const struct json_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case JSON_NUMBER:
        return same_bytes(a->number.text, a->number.length, b->number.text, b->number.length);
    case JSON_STRING:
        return same_bytes(a->string.bytes, a->string.length, b->string.bytes, b->string.length);
    case JSON_ARRAY:
        if (a->array.count != b->array.count)
            return false;
        for (size_t i = 0; i < a->array.count; i++)
            if (!same_tree(&a->array.items[i], &b->array.items[i]))
                return false;
        return true;
    case JSON_OBJECT:
        if (a->object.count != b->object.count)
            return false;
        for (size_t i = 0; i < a->object.count; i++) {
            const struct json_member *x = &a->object.members[i], *y = &b->object.members[i];

            if (!same_bytes(x->key, x->key_length, y->key, y->key_length) ||
                !same_tree(&x->value, &y->value))
                return false;
        }
        return true;
    default:
        return true;
    }
}

static void check_rewrite(const struct json_value *root)
{
    struct strbuf b;
    struct json_value *again;

    strbuf_init(&b);
    write_tree(&b, root);
    require(!b.failed, "strbuf failed");
    again = json_parse(b.data, b.length, NULL);
    require(again && same_tree(root, again), "a tree written out does not parse back the same");
    json_free(again);
    strbuf_free(&b);
}

static void check_writer(const uint8_t *data, size_t size)
{
    struct strbuf b;
    struct json_value *value;

    strbuf_init(&b);
    json_write_string(&b, data, size);
    value = json_parse(b.data, b.length, NULL);
    require(value && value->type == JSON_STRING, "json_write_string wrote invalid JSON");
    if (is_utf8((const char *)data, size))
        require(same_bytes(value->string.bytes, value->string.length, (const char *)data, size),
                "valid UTF-8 changed in a write and parse");
    json_free(value);
    strbuf_free(&b);
}

/* Fail one of the allocations a successful parse made, picked by the input's bytes. */
static void check_out_of_memory(const uint8_t *data, size_t size, long allocations)
{
    struct json_error error;
    uint64_t hash = 14695981039346656037ULL;

    for (size_t i = 0; i < size; i++)
        hash = (hash ^ data[i]) * 1099511628211ULL;
    shim_fail_after = (long)(hash % (uint64_t)allocations);
    require(json_parse((const char *)data, size, &error) == NULL &&
                strstr(error.message, "out of memory") != NULL,
            "a failed allocation did not fail the parse");
    shim_fail_after = -1;
    require(shim_live_blocks == 0, "a failed allocation leaked blocks");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_error error;
    long allocations = shim_allocations;
    struct json_value *root = json_parse((const char *)data, size, &error);

    allocations = shim_allocations - allocations;
    if (root) {
        check_tree(root);
        check_rewrite(root);
        json_free(root);
        check_out_of_memory(data, size, allocations);
    } else {
        require(error.offset <= size && strstr(error.message, " at byte ") != NULL,
                "an error without a place");
    }
    check_writer(data, size);
    require(shim_live_blocks == 0, "blocks leaked");
    return 0;
}
