/*
 * The kernel command line is what follows the kernel's path on GRUB's `multiboot2` line.
 * The grader uses it to ask for a test (`test=printf`) or a deliberate fault (`fault=divide`).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmdline.h"
#include "kprintf.h"
#include "string.h"

static const char *cmdline = "";

void cmdline_init(const char *text)
{
    cmdline = text;
}

const char *cmdline_text(void)
{
    return cmdline;
}

static size_t word_length(const char *word)
{
    size_t length = 0;
    while (word[length] && word[length] != ' ')
        length++;
    return length;
}

/* Copy the value of `name=value` into value (truncated to size); true if the option is there. */
bool cmdline_get(const char *name, char *value, size_t size)
{
    size_t name_length = strlen(name);

    for (const char *word = cmdline; *word; ) {
        size_t length = word_length(word);
        if (length > name_length && strncmp(word, name, name_length) == 0 &&
            word[name_length] == '=') {
            size_t value_length = length - name_length - 1;
            if (value_length >= size)
                value_length = size - 1;
            for (size_t i = 0; i < value_length; i++)
                value[i] = word[name_length + 1 + i];
            value[value_length] = '\0';
            return true;
        }
        word += length;
        while (*word == ' ')
            word++;
    }
    return false;
}

static bool parse_decimal(const char *text, uint64_t *number)
{
    uint64_t result = 0;

    if (*text == '\0')
        return false;
    for (const char *digit = text; *digit; digit++) {
        if (*digit < '0' || *digit > '9' || result > (UINT64_MAX - 9) / 10)
            return false;
        result = result * 10 + (uint64_t)(*digit - '0');
    }
    *number = result;
    return true;
}

/*
 * The value of `name=N`, N in decimal from minimum to maximum. False if the option is missing,
 * and also if it is not such a number, which is then said on the console: a mistyped option
 * should not be ignored in silence.
 */
bool cmdline_get_number(const char *name, uint64_t minimum, uint64_t maximum, uint64_t *number)
{
    char value[24];
    uint64_t parsed;

    if (!cmdline_get(name, value, sizeof(value)))
        return false;
    if (parse_decimal(value, &parsed) && parsed >= minimum && parsed <= maximum) {
        *number = parsed;
        return true;
    }
    kprintf("cmdline: %s=%s is not a number from %lu to %lu; ignored\n", name, value, minimum,
            maximum);
    return false;
}
