/*
 * Tests the grader asks for on the kernel command line. They live in the kernel because they
 * exercise the kernel's own code; the grader judges what they print.
 *
 *   test=printf               print a battery of kprintf cases for the grader to recompute
 *   fault=divide              divide by zero
 *   fault=pagefault:ADDR      read from hex address ADDR
 *   fault=pagefault-write:ADDR write to it
 *   fault=breakpoint          int3
 *   fault=invalid-opcode      ud2
 */
#include <stdint.h>
#include "cmdline.h"
#include "kprintf.h"
#include "ktest.h"
#include "panic.h"
#include "string.h"

/* The arguments are printed as the C source that passed them, so the grader can read them. */
#define PRINTF_CASE(format, ...) \
    print_case(format, #__VA_ARGS__, format, __VA_ARGS__)

static int printf_cases;

__attribute__((format(printf, 3, 4)))
static void print_case(const char *shown_format, const char *shown_args, const char *format, ...)
{
    char result[128];
    va_list args;

    va_start(args, format);
    vsnprintf(result, sizeof(result), format, args);
    va_end(args);
    kprintf("printf \"%s\" (%s) -> [%s]\n", shown_format, shown_args, result);
    printf_cases++;
}

static void run_printf_cases(void)
{
    PRINTF_CASE("%d", 0);
    PRINTF_CASE("%d", 42);
    PRINTF_CASE("%d", -42);
    PRINTF_CASE("%i", 2147483647);
    PRINTF_CASE("%d", -2147483647 - 1);
    PRINTF_CASE("%u", 4294967295U);
    PRINTF_CASE("%u", -1);
    PRINTF_CASE("%x", 0xdeadbeef);
    PRINTF_CASE("%X", 0xdeadbeef);
    PRINTF_CASE("%x", -1);
    PRINTF_CASE("%5d|", 42);
    PRINTF_CASE("%-5d|", 42);
    PRINTF_CASE("%05d", 42);
    PRINTF_CASE("%05d", -42);
    PRINTF_CASE("%08x", 0xbeef);
    PRINTF_CASE("%2d", 12345);
    PRINTF_CASE("%ld", 9223372036854775807L);
    PRINTF_CASE("%ld", -9223372036854775807L - 1);
    PRINTF_CASE("%lu", 18446744073709551615UL);
    PRINTF_CASE("%lx", 0x123456789abcdefUL);
    PRINTF_CASE("%llX", 0xfedcba9876543210ULL);
    PRINTF_CASE("%lld", -1234567890123LL);
    PRINTF_CASE("%zu", 4096UL);
    PRINTF_CASE("%zx", 65535UL);
    PRINTF_CASE("%016lx", 0xffUL);
    PRINTF_CASE("%p", (void *)0x1000);
    PRINTF_CASE("%p", (void *)0xffff800000001234UL);
    PRINTF_CASE("%s", "ring zero");
    PRINTF_CASE("%s|%s", "", "x");
    PRINTF_CASE("%8s|", "pad");
    PRINTF_CASE("%-8s|", "pad");
    PRINTF_CASE("%c%c%c", 'r', 'z', '0');
    PRINTF_CASE("%3c|", 'c');
    PRINTF_CASE("100%% %d%%", 5);
    PRINTF_CASE("[%d %u %x %s %c]", -1, 1U, 255, "mix", '!');
    kprintf("printf: %d cases\n", printf_cases);
}

/* noinline keeps each fault in a function of its own name, which the grader looks up. */
/* Both operands volatile: with a constant 1 / x, GCC computes the quotient without dividing. */
__attribute__((noinline)) void trigger_divide_error(void)
{
    volatile int one = 1, zero = 0;
    volatile int result = one / zero;
    (void)result;
}

__attribute__((noinline)) void trigger_page_fault(uint64_t address)
{
    volatile uint64_t value = *(volatile uint64_t *)address;
    (void)value;
}

__attribute__((noinline)) void trigger_page_fault_write(uint64_t address)
{
    *(volatile uint64_t *)address = 0;
}

__attribute__((noinline)) void trigger_breakpoint(void)
{
    __asm__ volatile("int3");
}

__attribute__((noinline)) void trigger_invalid_opcode(void)
{
    __asm__ volatile("ud2");
}

static uint64_t parse_hex(const char *text)
{
    uint64_t value = 0;

    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        text += 2;
    for (; *text; text++) {
        char c = *text;
        int digit = c >= '0' && c <= '9' ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (digit < 0)
            panic("fault=pagefault: '%s' is not a hex address", text);
        value = value << 4 | (uint64_t)digit;
    }
    return value;
}

static void trigger_fault(const char *kind)
{
    kprintf("triggering fault: %s\n", kind);
    if (strcmp(kind, "divide") == 0)
        trigger_divide_error();
    else if (strncmp(kind, "pagefault:", 10) == 0)
        trigger_page_fault(parse_hex(kind + 10));
    else if (strncmp(kind, "pagefault-write:", 16) == 0)
        trigger_page_fault_write(parse_hex(kind + 16));
    else if (strcmp(kind, "breakpoint") == 0)
        trigger_breakpoint();
    else if (strcmp(kind, "invalid-opcode") == 0)
        trigger_invalid_opcode();
    else
        panic("unknown fault=%s", kind);
    panic("fault=%s did not fault", kind);
}

void ktest_run_requested(void)
{
    char value[64];

    if (cmdline_get("test", value, sizeof(value)) && strcmp(value, "printf") == 0)
        run_printf_cases();
    if (cmdline_get("fault", value, sizeof(value)))
        trigger_fault(value);
}
