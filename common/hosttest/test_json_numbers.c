/*
 * json_number_int64 and json_number_scaled: a table of edge cases, then random numbers
 * written in many equivalent ways, checked against 128-bit arithmetic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "test_json.h"

#define NO 0, 0   /* for a case that must fail: ok is false, the value is not looked at */

struct number_case {
    const char *text;
    int64_t scale;    /* 0: test json_number_int64 */
    bool ok;
    int64_t value;
};

static const struct number_case number_cases[] = {
    { "0", 0, true, 0 }, { "-0", 0, true, 0 }, { "7", 0, true, 7 }, { "-7", 0, true, -7 },
    { "9223372036854775807", 0, true, INT64_MAX },
    { "-9223372036854775808", 0, true, INT64_MIN },
    { "9223372036854775808", 0, NO }, { "-9223372036854775809", 0, NO },
    { "18446744073709551616", 0, NO }, { "99999999999999999999999999", 0, NO },
    { "1.0", 0, true, 1 }, { "1.5", 0, NO }, { "-2.000", 0, true, -2 }, { "0.1", 0, NO },
    { "1e2", 0, true, 100 }, { "1E+2", 0, true, 100 }, { "100e-2", 0, true, 1 },
    { "123e-1", 0, NO }, { "1.23e2", 0, true, 123 }, { "1.234e2", 0, NO },
    { "0.000e5", 0, true, 0 }, { "0e99999999999999999999999", 0, true, 0 },
    { "0e-99999999999999999999999", 0, true, 0 }, { "1e18", 0, true, 1000000000000000000 },
    { "1e19", 0, NO }, { "9.223372036854775807e18", 0, true, INT64_MAX },
    { "-9.223372036854775808e18", 0, true, INT64_MIN }, { "9.223372036854775808e18", 0, NO },
    { "92233720368547758070e-1", 0, true, INT64_MAX },
    { "922337203685477580700000000000000e-14", 0, true, INT64_MAX },
    { "1e-400", 0, NO }, { "1e99999999999999999999", 0, NO },
    { "1e-99999999999999999999", 0, NO }, { "12345678901234567890e-10", 0, NO },
    { "10000000000000000000000000000000000000000e-40", 0, true, 1 },
    { "0.00000000000000000000000000000000000000001e41", 0, true, 1 },
    { "0.7", 1000000, true, 700000 }, { "1", 1000000, true, 1000000 },
    { "-1.25", 1000000, true, -1250000 }, { "0", 1000000, true, 0 },
    { "0.0000005", 1000000, true, 1 }, { "-0.0000005", 1000000, true, -1 },
    { "0.00000049999999999999999999", 1000000, true, 0 },
    { "0.00000050000000000000000001", 1000000, true, 1 }, { "5e-7", 1000000, true, 1 },
    { "4.9999999e-7", 1000000, true, 0 }, { "1e-6", 1000000, true, 1 },
    { "1e-7", 1000000, true, 0 }, { "1e-300", 1000000, true, 0 }, { "-1e-300", 1000000, true, 0 },
    { "1.5", 1, true, 2 }, { "2.5", 1, true, 3 }, { "-2.5", 1, true, -3 }, { "-0.4", 1, true, 0 },
    { "0.49999999999999999999999999999", 1, true, 0 }, { "0.5", 1, true, 1 },
    { "0.1", 3, true, 0 }, { "0.5", 3, true, 2 }, { "0.16666", 3, true, 0 },
    { "0.1666666666666666666666666666667", 3, true, 1 },
    { "0.1666666666666666666666666666666", 3, true, 0 },
    { "9223372036854.775807", 1000000, true, INT64_MAX },
    { "9223372036854.7758074999", 1000000, true, INT64_MAX },
    { "9223372036854.7758075", 1000000, NO }, { "9223372036854.775808", 1000000, NO },
    { "-9223372036854.775808", 1000000, true, INT64_MIN },
    { "-9223372036854.7758085", 1000000, NO },
    { "92.23372036854775807", JSON_MAX_SCALE, true, INT64_MAX },
    { "92.233720368547758075", JSON_MAX_SCALE, NO },
    { "1e-17", JSON_MAX_SCALE, true, 1 }, { "5e-18", JSON_MAX_SCALE, true, 1 },
    { "4.99999999999999999999e-18", JSON_MAX_SCALE, true, 0 },
    { "1e2", 1000000, true, 100000000 }, { "1e13", 1000000, NO },
    { "1", JSON_MAX_SCALE + 1, NO }, { "1", -1, NO }, { "1", INT64_MIN, NO },
};

static void test_number_cases(void)
{
    for (size_t i = 0; i < sizeof(number_cases) / sizeof(number_cases[0]); i++) {
        const struct number_case *c = &number_cases[i];
        struct json_value *number = parse_text(c->text);
        int64_t value = 12345;
        bool ok;

        if (!number)
            continue;
        ok = c->scale ? json_number_scaled(number, c->scale, &value)
                      : json_number_int64(number, &value);
        check(ok == c->ok && (!ok || value == c->value) && (ok || value == 12345),
              "%s * %ld: got %s %ld, wanted %s %ld", c->text, (long)c->scale,
              ok ? "ok" : "fail", (long)value, c->ok ? "ok" : "fail", (long)c->value);
        json_free(number);
    }
}

static void test_number_misuse(void)
{
    struct json_value *string = parse_text("\"1\"");
    struct json_value *number = parse_text("1");
    int64_t value = 5;

    check(!json_number_int64(string, &value) && !json_number_scaled(string, 1, &value) &&
              !json_number_int64(NULL, &value) && value == 5,
          "non-numbers are refused");
    check(!json_number_scaled(number, 0, &value) && value == 5, "scale 0 is refused");
    json_free(string);
    json_free(number);
}

/* Thousands of digits: the exponent must be applied exactly, not clamped early. */
static void test_long_numbers(void)
{
    static const struct { const char *prefix; char fill; const char *suffix; bool ok; } cases[] = {
        { "0.", '0', "1e3001", true }, { "1", '0', "e-3000", true }, { "1", '0', "e-2980", false },
        { "-0.", '0', "5e3001", true }, { "1.", '0', "", true },
    };
    char text[3100];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_value *number;
        int64_t value = 0;
        bool ok;

        strcpy(text, cases[i].prefix);
        memset(text + strlen(cases[i].prefix), cases[i].fill, 3000);
        strcpy(text + strlen(cases[i].prefix) + 3000, cases[i].suffix);
        number = parse_text(text);
        ok = json_number_int64(number, &value);
        check(ok == cases[i].ok && (!ok || value == (text[0] == '-' ? -5 : 1)),
              "%s<3000 zeros>%s: %s %ld", cases[i].prefix, cases[i].suffix, ok ? "ok" : "fail",
              (long)value);
        json_free(number);
    }
}

typedef unsigned __int128 u128;

/* Exactly D * 10^E * scale rounded half away from zero, with the sign, as json.c should. */
static bool reference_scaled(uint64_t digits, int exponent, bool negative, int64_t scale,
                             bool exact_only, int64_t *out)
{
    u128 magnitude = (u128)digits * (u128)scale, power = 1, limit;

    if (exponent >= 0) {
        for (int i = 0; i < exponent && magnitude; i++) {
            magnitude *= 10;
            if (magnitude > ((u128)1 << 64))
                return false;
        }
    } else {
        for (int i = 0; i < -exponent; i++)
            power *= 10;
        if (exact_only && magnitude % power)
            return false;
        magnitude = magnitude / power + (magnitude % power * 2 >= power);
    }
    limit = negative ? (u128)INT64_MAX + 1 : (u128)INT64_MAX;
    if (magnitude > limit)
        return false;
    *out = negative ? (int64_t)(-(__int128)magnitude) : (int64_t)magnitude;
    return true;
}

/* D * 10^E written one of several ways: split anywhere, zeros in front, exponent varied. */
static void write_number(char *text, uint64_t digits, int exponent, bool negative)
{
    char mantissa[24];
    int n = sprintf(mantissa, "%lu", (unsigned long)digits);
    int at = sprintf(text, "%s", negative ? "-" : "");
    int split = 1 + (int)random_below((uint64_t)n), shown_exponent;

    if (digits && random_below(4) == 0) {
        int zeros = (int)random_below(25);

        at += sprintf(text + at, "0.%.*s%s", zeros, "0000000000000000000000000", mantissa);
        shown_exponent = exponent + zeros + n;
    } else {
        /* Zeros after the fraction change nothing; a fraction of only zeros neither. */
        int trailing_zeros = split < n ? (int)random_below(4) : 1 + (int)random_below(3);

        at += sprintf(text + at, "%.*s", split, mantissa);
        if (split < n || random_below(3) == 0)
            at += sprintf(text + at, ".%s%.*s", mantissa + split, trailing_zeros, "000");
        shown_exponent = exponent + (n - split);
    }
    if (shown_exponent != 0 || random_below(3) == 0)
        sprintf(text + at, "%s%s%d", random_below(2) ? "e" : "E",
                shown_exponent >= 0 && random_below(2) ? "+" : "", shown_exponent);
}

static void test_random_numbers(void)
{
    static const int64_t scales[] = { 1, 2, 3, 7, 10, 1000, 1000000, 999999937,
                                      1000000000000, JSON_MAX_SCALE };
    int mismatches = 0;

    for (int i = 0; i < 300000; i++) {
        int length = (int)random_below(19);
        uint64_t digits = 0;
        int exponent = (int)random_below(51) - 30;
        bool negative = random_below(2), exact_only = random_below(3) == 0, ok, expected_ok;
        int64_t scale = random_below(4) ? scales[random_below(10)]
                                        : 1 + (int64_t)random_below(JSON_MAX_SCALE);
        int64_t value = 0, expected = 0;
        struct json_value *number;
        char text[96];

        for (int d = 0; d < length; d++)
            digits = digits * 10 + random_below(10);
        if (exact_only)
            scale = 1;
        write_number(text, digits, exponent, negative);
        number = parse_text(text);
        if (!number)
            continue;
        ok = exact_only ? json_number_int64(number, &value)
                        : json_number_scaled(number, scale, &value);
        expected_ok = reference_scaled(digits, exponent, negative, scale, exact_only, &expected);
        if (ok != expected_ok || (ok && value != expected))
            if (mismatches++ < 10)
                check(false, "%s * %ld: got %s %ld, wanted %s %ld", text, (long)scale,
                      ok ? "ok" : "fail", (long)value, expected_ok ? "ok" : "fail",
                      (long)expected);
        json_free(number);
    }
    check(mismatches == 0, "%d random numbers disagreed with 128-bit arithmetic", mismatches);
}

void test_numbers(void)
{
    test_number_cases();
    test_number_misuse();
    test_long_numbers();
    test_random_numbers();
}
