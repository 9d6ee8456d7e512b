/*
 * A recursive-descent JSON reader. Each parse_* function reads one piece of the grammar at
 * p->at and either fills in a value and moves past the piece, or reports an error and leaves
 * nothing allocated behind; so a failure anywhere unwinds to a tree that is freed whole.
 * Recursion goes one level per container, and containers nest at most JSON_MAX_DEPTH deep.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heap.h"
#include "json.h"
#include "kprintf.h"
#include "string.h"
#include "utf8.h"

#define STRINGIFY(x) #x
#define TOO_DEEP(limit) "containers nested deeper than " STRINGIFY(limit)

struct parser {
    char *text;                 /* the tree's own copy of the document */
    size_t length;
    size_t at;                  /* the next byte to read */
    struct json_error *error;
};

static bool parse_value(struct parser *p, struct json_value *value, int depth);

/* Messages are kept to 51 characters: with the offset and the note they fill 95 at most. */
static bool fail_at(struct parser *p, size_t offset, const char *message)
{
    if (p->error) {
        p->error->offset = offset;
        snprintf(p->error->message, sizeof(p->error->message), "%s at byte %zu%s", message,
                 offset, offset >= p->length ? " (end of input)" : "");
    }
    return false;
}

static bool fail(struct parser *p, const char *message)
{
    return fail_at(p, p->at, message);
}

/* The next byte, or -1 at the end: the text may hold any byte, NUL included. */
static int peek(const struct parser *p)
{
    return p->at < p->length ? (unsigned char)p->text[p->at] : -1;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static void skip_whitespace(struct parser *p)
{
    int c = peek(p);

    while (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        p->at++;
        c = peek(p);
    }
}

static void free_value(struct json_value *value)
{
    if (value->type == JSON_ARRAY) {
        for (size_t i = 0; i < value->array.count; i++)
            free_value(&value->array.items[i]);
        kfree(value->array.items);
    } else if (value->type == JSON_OBJECT) {
        for (size_t i = 0; i < value->object.count; i++)
            free_value(&value->object.members[i].value);
        kfree(value->object.members);
    }
}

/* Double a vector's capacity. The old block stays valid (and owned) if this fails. */
static void *grow(void *elements, size_t *capacity, size_t element_size)
{
    size_t wanted = *capacity ? *capacity * 2 : 1;
    void *grown;

    if (wanted > SIZE_MAX / element_size)
        return NULL;
    grown = krealloc(elements, wanted * element_size);
    if (grown)
        *capacity = wanted;
    return grown;
}

static bool parse_literal(struct parser *p, struct json_value *value, const char *word,
                          enum json_type type)
{
    size_t length = strlen(word);

    if (p->length - p->at < length || memcmp(p->text + p->at, word, length) != 0)
        return fail(p, "invalid literal (expected true, false or null)");
    p->at += length;
    value->type = type;
    return true;
}

/* Returns whether there was at least one digit. */
static bool skip_digits(struct parser *p)
{
    size_t start = p->at;

    while (is_digit(peek(p)))
        p->at++;
    return p->at > start;
}

/* The grammar is RFC 8259's: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool parse_number(struct parser *p, struct json_value *value)
{
    size_t start = p->at;

    if (peek(p) == '-')
        p->at++;
    if (peek(p) == '0') {
        p->at++;
        if (is_digit(peek(p)))
            return fail(p, "leading zeros are not allowed in numbers");
    } else if (!skip_digits(p)) {
        return fail(p, "expected a digit after '-'");
    }
    if (peek(p) == '.') {
        p->at++;
        if (!skip_digits(p))
            return fail(p, "expected a digit after '.'");
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->at++;
        if (peek(p) == '+' || peek(p) == '-')
            p->at++;
        if (!skip_digits(p))
            return fail(p, "expected a digit in the exponent");
    }
    value->type = JSON_NUMBER;
    value->number.text = p->text + start;
    value->number.length = p->at - start;
    return true;
}

static int hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_hex4(struct parser *p, uint32_t *value)
{
    *value = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_digit_value(peek(p));

        if (digit < 0)
            return fail(p, "expected 4 hex digits after \\u");
        *value = *value << 4 | (uint32_t)digit;
        p->at++;
    }
    return true;
}

/*
 * \uXXXX, at p->at after the backslash. Characters beyond U+FFFF come as two escapes, a
 * surrogate pair; half a pair stands for no character, so it is an error.
 */
static bool decode_unicode_escape(struct parser *p, size_t start, char **out)
{
    uint32_t code_point, low;

    p->at++;
    if (!read_hex4(p, &code_point))
        return false;
    if (code_point >= 0xdc00 && code_point <= 0xdfff)
        return fail_at(p, start, "lone low surrogate (\\uDC00-\\uDFFF)");
    if (code_point >= 0xd800 && code_point <= 0xdbff) {
        if (p->length - p->at < 2 || p->text[p->at] != '\\' || p->text[p->at + 1] != 'u')
            return fail_at(p, start, "high surrogate not followed by \\uDC00-\\uDFFF");
        p->at += 2;
        if (!read_hex4(p, &low))
            return false;
        if (low < 0xdc00 || low > 0xdfff)
            return fail_at(p, start, "high surrogate not followed by \\uDC00-\\uDFFF");
        code_point = 0x10000 + ((code_point - 0xd800) << 10) + (low - 0xdc00);
    }
    /* At most 4 bytes out for the 6 or 12 just read, so this overwrites only read text. */
    *out += utf8_encode(code_point, (unsigned char *)*out);
    return true;
}

static bool decode_escape(struct parser *p, char **out)
{
    static const char escaped[] = "\"\\/bfnrt";
    static const char meaning[] = "\"\\/\b\f\n\r\t";
    size_t start = p->at;
    int c;

    p->at++;
    c = peek(p);
    if (c == 'u')
        return decode_unicode_escape(p, start, out);
    for (int i = 0; escaped[i]; i++) {
        if (c == escaped[i]) {
            *(*out)++ = meaning[i];
            p->at++;
            return true;
        }
    }
    if (c < 0)
        return fail(p, "unterminated string");
    return fail_at(p, start, "invalid escape in string");
}

static bool copy_utf8(struct parser *p, char **out)
{
    size_t length = utf8_sequence_length((const unsigned char *)p->text + p->at,
                                         p->length - p->at);

    if (length == 0)
        return fail(p, "invalid UTF-8 in string");
    memmove(*out, p->text + p->at, length);
    *out += length;
    p->at += length;
    return true;
}

/*
 * A string, at its opening quote. It is decoded in place: no escape is shorter than what it
 * stands for, so the write position out never passes the read position p->at.
 */
static bool parse_string(struct parser *p, const char **bytes, size_t *length)
{
    char *start = p->text + p->at + 1;
    char *out = start;
    int c;

    p->at++;
    while ((c = peek(p)) != '"') {
        if (c < 0)
            return fail(p, "unterminated string");
        if (c < 0x20)
            return fail(p, "control character in string (must be escaped)");
        if (c == '\\' ? !decode_escape(p, &out) : !copy_utf8(p, &out))
            return false;
    }
    *out = '\0';   /* at or before the closing quote, which is read now */
    p->at++;
    *bytes = start;
    *length = (size_t)(out - start);
    return true;
}

/* Appends item (moving ownership of what it holds into the array), or frees it. */
static bool add_item(struct parser *p, struct json_value *array, size_t *capacity,
                     struct json_value *item)
{
    struct json_value *grown;

    if (array->array.count == *capacity) {
        grown = grow(array->array.items, capacity, sizeof(*grown));
        if (!grown) {
            free_value(item);
            return fail(p, "out of memory");
        }
        array->array.items = grown;
    }
    array->array.items[array->array.count++] = *item;
    return true;
}

static bool add_member(struct parser *p, struct json_value *object, size_t *capacity,
                       struct json_member *member)
{
    struct json_member *grown;

    if (object->object.count == *capacity) {
        grown = grow(object->object.members, capacity, sizeof(*grown));
        if (!grown) {
            free_value(&member->value);
            return fail(p, "out of memory");
        }
        object->object.members = grown;
    }
    object->object.members[object->object.count++] = *member;
    return true;
}

/* At the '['; depth counts the containers around this one. */
static bool parse_array(struct parser *p, struct json_value *array, int depth)
{
    struct json_value item;
    size_t capacity = 0;

    *array = (struct json_value){ .type = JSON_ARRAY };
    if (depth >= JSON_MAX_DEPTH)
        return fail(p, TOO_DEEP(JSON_MAX_DEPTH));
    p->at++;
    skip_whitespace(p);
    if (peek(p) == ']') {
        p->at++;
        return true;
    }
    for (;;) {
        if (!parse_value(p, &item, depth + 1) || !add_item(p, array, &capacity, &item))
            break;
        skip_whitespace(p);
        if (peek(p) == ']') {
            p->at++;
            return true;
        }
        if (peek(p) != ',') {
            fail(p, "expected ',' or ']' after array item");
            break;
        }
        p->at++;
    }
    free_value(array);
    return false;
}

static bool parse_member(struct parser *p, struct json_member *member, int depth)
{
    skip_whitespace(p);
    if (peek(p) != '"')
        return fail(p, "expected a string as object key");
    if (!parse_string(p, &member->key, &member->key_length))
        return false;
    skip_whitespace(p);
    if (peek(p) != ':')
        return fail(p, "expected ':' after object key");
    p->at++;
    return parse_value(p, &member->value, depth + 1);
}

static bool parse_object(struct parser *p, struct json_value *object, int depth)
{
    struct json_member member;
    size_t capacity = 0;

    *object = (struct json_value){ .type = JSON_OBJECT };
    if (depth >= JSON_MAX_DEPTH)
        return fail(p, TOO_DEEP(JSON_MAX_DEPTH));
    p->at++;
    skip_whitespace(p);
    if (peek(p) == '}') {
        p->at++;
        return true;
    }
    for (;;) {
        if (!parse_member(p, &member, depth) || !add_member(p, object, &capacity, &member))
            break;
        skip_whitespace(p);
        if (peek(p) == '}') {
            p->at++;
            return true;
        }
        if (peek(p) != ',') {
            fail(p, "expected ',' or '}' after object member");
            break;
        }
        p->at++;
    }
    free_value(object);
    return false;
}

static bool parse_value(struct parser *p, struct json_value *value, int depth)
{
    skip_whitespace(p);
    switch (peek(p)) {
    case '{': return parse_object(p, value, depth);
    case '[': return parse_array(p, value, depth);
    case '"':
        value->type = JSON_STRING;
        return parse_string(p, &value->string.bytes, &value->string.length);
    case 't': return parse_literal(p, value, "true", JSON_TRUE);
    case 'f': return parse_literal(p, value, "false", JSON_FALSE);
    case 'n': return parse_literal(p, value, "null", JSON_NULL);
    case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
    case '8': case '9':
        return parse_number(p, value);
    default:
        return fail(p, "expected a value");
    }
}

/* The root and the copy of the text share one allocation: the text follows the root. */
struct json_value *json_parse(const char *text, size_t length, struct json_error *error)
{
    struct parser p = { .length = length, .error = error };
    struct json_value *root;

    if (error)
        *error = (struct json_error){ 0 };
    root = length <= SIZE_MAX - sizeof(*root) ? kmalloc(sizeof(*root) + length) : NULL;
    if (!root) {
        fail(&p, "out of memory");
        return NULL;
    }
    p.text = (char *)(root + 1);
    if (length)
        memcpy(p.text, text, length);
    if (!parse_value(&p, root, 0)) {
        kfree(root);
        return NULL;
    }
    skip_whitespace(&p);
    if (p.at < length) {
        fail(&p, "unexpected data after the JSON value");
        json_free(root);
        return NULL;
    }
    return root;
}

void json_free(struct json_value *root)
{
    if (root) {
        free_value(root);
        kfree(root);
    }
}

const struct json_value *json_get(const struct json_value *object, const char *key)
{
    size_t key_length;

    if (!object || object->type != JSON_OBJECT)
        return NULL;
    key_length = strlen(key);
    for (size_t i = 0; i < object->object.count; i++) {
        const struct json_member *member = &object->object.members[i];

        if (member->key_length == key_length && memcmp(member->key, key, key_length) == 0)
            return &member->value;
    }
    return NULL;
}
