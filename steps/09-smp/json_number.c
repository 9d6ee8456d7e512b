/*
 * JSON numbers as integers, without floating point (the kernel has none yet), and exactly:
 * the text is decimal, so scaling it by an integer is school arithmetic on its digits.
 *
 * A number is read as a string of digits with a decimal point somewhere: "-12.5e1" is the
 * digits 125 with the point after the 3rd digit (2 before it, moved 1 right by the exponent).
 * The point may lie before the first digit ("0.5e-3") or beyond the last ("1e6").
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "json.h"

/* Far beyond the digits of any text the kernel could hold, and far from overflowing int64. */
#define EXPONENT_LIMIT 100000000000000000LL

struct decimal {
    bool negative;
    const char *digits;       /* the integer digits, maybe a '.', then the fraction digits */
    size_t integer_count;     /* digits before the '.' */
    size_t count;             /* all digits */
    int64_t point;            /* how many digits stand left of the point, after the exponent */
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static unsigned digit_at(const struct decimal *d, size_t i)
{
    return (unsigned)(d->digits[i < d->integer_count ? i : i + 1] - '0');
}

/* The text was validated by the parser, so this only has to take it apart. */
static struct decimal read_decimal(const struct json_value *number)
{
    const char *s = number->number.text;
    const char *end = s + number->number.length;
    struct decimal d = { .negative = *s == '-' };
    int64_t exponent = 0;
    bool exponent_negative = false;

    s += d.negative;
    d.digits = s;
    for (; s < end && is_digit(*s); s++)
        d.integer_count++;
    d.count = d.integer_count;
    if (s < end && *s == '.')
        for (s++; s < end && is_digit(*s); s++)
            d.count++;
    if (s < end) {
        s++;   /* 'e' or 'E' */
        exponent_negative = *s == '-';
        if (*s == '-' || *s == '+')
            s++;
        for (; s < end; s++)
            if (exponent < EXPONENT_LIMIT)
                exponent = exponent * 10 + (*s - '0');
    }
    d.point = (int64_t)d.integer_count + (exponent_negative ? -exponent : exponent);
    return d;
}

/*
 * floor(fraction * factor), where the fraction is the digits from first on, behind the point.
 * Long multiplication from the last digit back: carry is floor(tail * factor) for the digits
 * done so far, so it stays below factor and digit * factor + carry below 10 * factor.
 * *exact tells whether the product had no further fraction.
 */
static uint64_t fraction_times(const struct decimal *d, size_t first, uint64_t factor,
                               bool *exact)
{
    uint64_t carry = 0, sum;
    int64_t zeros_after_point = d->point < 0 ? -d->point : 0;

    *exact = true;
    for (size_t i = d->count; i-- > first;) {
        sum = digit_at(d, i) * factor + carry;
        *exact = *exact && sum % 10 == 0;
        carry = sum / 10;
    }
    /* Zeros between the point and the first digit: each one divides by 10, till nothing is left. */
    for (; zeros_after_point > 0 && carry; zeros_after_point--) {
        *exact = *exact && carry % 10 == 0;
        carry /= 10;
    }
    return carry;
}

/*
 * |number| * scale, rounded to nearest with halves up, in *magnitude; false if it exceeds
 * 64 bits. The fraction part is computed times 2 * scale: its lowest bit is then the rounding.
 */
static bool scale_decimal(const struct decimal *d, uint64_t scale, uint64_t *magnitude,
                          bool *exact)
{
    size_t integer_end = d->point <= 0                  ? 0
                         : (uint64_t)d->point < d->count ? (size_t)d->point
                                                         : d->count;
    uint64_t whole = 0, twice_fraction;

    for (size_t i = 0; i < integer_end; i++)
        if (__builtin_mul_overflow(whole, 10, &whole) ||
            __builtin_add_overflow(whole, digit_at(d, i), &whole))
            return false;
    for (int64_t zeros = d->point - (int64_t)d->count; whole && zeros > 0; zeros--)
        if (__builtin_mul_overflow(whole, 10, &whole))
            return false;
    twice_fraction = fraction_times(d, integer_end, 2 * scale, exact);
    *exact = *exact && twice_fraction % 2 == 0;
    if (__builtin_mul_overflow(whole, scale, &whole) ||
        __builtin_add_overflow(whole, twice_fraction / 2 + twice_fraction % 2, &whole))
        return false;
    *magnitude = whole;
    return true;
}

static bool apply_sign(bool negative, uint64_t magnitude, int64_t *out)
{
    if (!negative) {
        if (magnitude > INT64_MAX)
            return false;
        *out = (int64_t)magnitude;
        return true;
    }
    if (magnitude > (uint64_t)INT64_MAX + 1)
        return false;
    /* -(2^63) is an int64_t, 2^63 is not: take one off before negating. */
    *out = magnitude ? -(int64_t)(magnitude - 1) - 1 : 0;
    return true;
}

static bool number_times(const struct json_value *number, int64_t scale, bool exact_only,
                         int64_t *out)
{
    struct decimal d;
    uint64_t magnitude;
    bool exact;

    if (!number || number->type != JSON_NUMBER || scale < 1 || scale > JSON_MAX_SCALE)
        return false;
    d = read_decimal(number);
    if (!scale_decimal(&d, (uint64_t)scale, &magnitude, &exact) || (exact_only && !exact))
        return false;
    return apply_sign(d.negative, magnitude, out);
}

bool json_number_int64(const struct json_value *number, int64_t *out)
{
    return number_times(number, 1, true, out);
}

bool json_number_scaled(const struct json_value *number, int64_t scale, int64_t *out)
{
    return number_times(number, scale, false, out);
}
