/*
 * Formatted output. One formatter serves two destinations, the console and a buffer, through a
 * small "sink" that receives one character at a time.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "console.h"
#include "kprintf.h"
#include "percpu.h"
#include "spinlock.h"

struct sink {
    void (*put)(struct sink *sink, char c);
    char *buffer;
    size_t size;
    size_t written; /* every character produced, even past the buffer's end */
};

struct spec {
    bool left_justify;
    bool zero_pad;
    int width;
    int length; /* 0: int, 1: long, 2: long long, 3: size_t */
    char conversion;
};

static void emit(struct sink *sink, char c)
{
    sink->put(sink, c);
    sink->written++;
}

static void emit_padding(struct sink *sink, char pad, int count)
{
    while (count-- > 0)
        emit(sink, pad);
}

/* Write text into a field of spec->width, padded on the side the flags ask for. */
static void emit_field(struct sink *sink, const struct spec *spec, const char *sign,
                       const char *text, int length)
{
    int sign_length = sign[0] ? 1 : 0;
    int padding = spec->width - length - sign_length;

    if (!spec->left_justify && !spec->zero_pad)
        emit_padding(sink, ' ', padding);
    if (sign_length)
        emit(sink, sign[0]);
    if (!spec->left_justify && spec->zero_pad)
        emit_padding(sink, '0', padding);
    for (int i = 0; i < length; i++)
        emit(sink, text[i]);
    if (spec->left_justify)
        emit_padding(sink, ' ', padding);
}

/* Digits are produced least significant first, into the end of a buffer. */
static int format_unsigned(char *end, uint64_t value, unsigned base, bool uppercase)
{
    const char *digits = uppercase ? "0123456789ABCDEF" : "0123456789abcdef";
    int length = 0;

    do {
        *--end = digits[value % base];
        value /= base;
        length++;
    } while (value);
    return length;
}

static void emit_number(struct sink *sink, const struct spec *spec, uint64_t magnitude,
                        bool negative, unsigned base)
{
    char digits[24];
    char *end = digits + sizeof(digits);
    int length = format_unsigned(end, magnitude, base, spec->conversion == 'X');

    emit_field(sink, spec, negative ? "-" : "", end - length, length);
}

static int64_t signed_argument(const struct spec *spec, va_list *args)
{
    switch (spec->length) {
    case 0:  return va_arg(*args, int);
    case 1:  return va_arg(*args, long);
    case 2:  return va_arg(*args, long long);
    default: return (int64_t)va_arg(*args, size_t);
    }
}

static uint64_t unsigned_argument(const struct spec *spec, va_list *args)
{
    switch (spec->length) {
    case 0:  return va_arg(*args, unsigned int);
    case 1:  return va_arg(*args, unsigned long);
    case 2:  return va_arg(*args, unsigned long long);
    default: return va_arg(*args, size_t);
    }
}

static void emit_signed(struct sink *sink, const struct spec *spec, va_list *args)
{
    int64_t value = signed_argument(spec, args);
    /* Negate in unsigned arithmetic: -INT64_MIN does not fit in an int64_t. */
    uint64_t magnitude = value < 0 ? -(uint64_t)value : (uint64_t)value;

    emit_number(sink, spec, magnitude, value < 0, 10);
}

static void emit_pointer(struct sink *sink, va_list *args)
{
    struct spec hex = { .zero_pad = true, .width = 16, .conversion = 'x' };

    emit(sink, '0');
    emit(sink, 'x');
    emit_number(sink, &hex, (uintptr_t)va_arg(*args, void *), false, 16);
}

static void emit_string(struct sink *sink, const struct spec *spec, const char *s)
{
    int length = 0;

    if (!s)
        s = "(null)";
    while (s[length])
        length++;
    emit_field(sink, spec, "", s, length);
}

static void emit_conversion(struct sink *sink, const struct spec *spec, va_list *args)
{
    char c;

    switch (spec->conversion) {
    case 'd': case 'i': emit_signed(sink, spec, args); break;
    case 'u': emit_number(sink, spec, unsigned_argument(spec, args), false, 10); break;
    case 'x': case 'X': emit_number(sink, spec, unsigned_argument(spec, args), false, 16); break;
    case 'p': emit_pointer(sink, args); break;
    case 's': emit_string(sink, spec, va_arg(*args, const char *)); break;
    case 'c':
        c = (char)va_arg(*args, int);
        emit_field(sink, spec, "", &c, 1);
        break;
    case '%': emit(sink, '%'); break;
    default:
        /* Show an unknown conversion rather than guess at its argument. */
        emit(sink, '%');
        emit(sink, spec->conversion);
    }
}

/* Parse flags, width and length after a '%'; returns where the conversion character is. */
static const char *parse_spec(const char *p, struct spec *spec)
{
    *spec = (struct spec){ 0 };
    for (;; p++) {
        if (*p == '-')
            spec->left_justify = true;
        else if (*p == '0')
            spec->zero_pad = true;
        else
            break;
    }
    while (*p >= '0' && *p <= '9')
        spec->width = spec->width * 10 + (*p++ - '0');
    if (*p == 'z') {
        spec->length = 3;
        p++;
    }
    while (*p == 'l' && spec->length < 2) {
        spec->length++;
        p++;
    }
    spec->conversion = *p;
    return p;
}

static void format(struct sink *sink, const char *fmt, va_list args)
{
    va_list remaining;
    struct spec spec;

    /* Copy the list so helpers can take it by pointer and consume arguments as they go. */
    va_copy(remaining, args);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            emit(sink, *p);
            continue;
        }
        p = parse_spec(p + 1, &spec);
        if (!*p)
            break;
        emit_conversion(sink, &spec, &remaining);
    }
    va_end(remaining);
}

static void put_console(struct sink *sink, char c)
{
    (void)sink;
    console_putc(c);
}

/* Keep the last byte for the terminator; count what did not fit, as C's snprintf does. */
static void put_buffer(struct sink *sink, char c)
{
    if (sink->written + 1 < sink->size)
        sink->buffer[sink->written] = c;
}

/*
 * One CPU prints at a time, so messages from several CPUs do not mix mid-line. A CPU that
 * faults while printing already holds the lock; its exception report must get through rather
 * than wait for itself forever.
 */
static struct spinlock console_lock = SPINLOCK_INIT;
static atomic_int console_owner = -1;

int vkprintf(const char *fmt, va_list args)
{
    struct sink sink = { .put = put_console };
    int cpu = this_cpu()->index;
    bool nested = atomic_load_explicit(&console_owner, memory_order_relaxed) == cpu;

    if (!nested) {
        spin_lock(&console_lock);
        atomic_store_explicit(&console_owner, cpu, memory_order_relaxed);
    }
    format(&sink, fmt, args);
    if (!nested) {
        atomic_store_explicit(&console_owner, -1, memory_order_relaxed);
        spin_unlock(&console_lock);
    }
    return (int)sink.written;
}

int kprintf(const char *fmt, ...)
{
    va_list args;
    int written;

    va_start(args, fmt);
    written = vkprintf(fmt, args);
    va_end(args);
    return written;
}

int vsnprintf(char *buffer, size_t size, const char *fmt, va_list args)
{
    struct sink sink = { .put = put_buffer, .buffer = buffer, .size = size };

    format(&sink, fmt, args);
    if (size > 0)
        buffer[sink.written < size ? sink.written : size - 1] = '\0';
    return (int)sink.written;
}

int snprintf(char *buffer, size_t size, const char *fmt, ...)
{
    va_list args;
    int written;

    va_start(args, fmt);
    written = vsnprintf(buffer, size, fmt, args);
    va_end(args);
    return written;
}
