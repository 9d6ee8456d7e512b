/*
 * The console: everything the kernel prints goes to the VGA screen, for a person watching,
 * and to COM1, for a terminal, a log file or the grader.
 */
#include "console.h"
#include "serial.h"
#include "vga.h"

void console_init(void)
{
    vga_clear();
    serial_init();
}

void console_putc(char c)
{
    vga_putc(c);
    serial_putc(c);
}
