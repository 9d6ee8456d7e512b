/*
 * The VGA text screen: 80x25 cells at physical address 0xB8000, each cell a character byte
 * followed by a colour byte. The BIOS left the card in this mode and GRUB kept it, so writing
 * to memory is all it takes to show text.
 */
#include <stdint.h>
#include "vga.h"

#define VGA_COLUMNS 80
#define VGA_ROWS    25

static volatile uint16_t *const screen = (volatile uint16_t *)0xB8000;
static int row, column;
static uint8_t color = VGA_LIGHT_GREY | VGA_BLACK << 4;

static uint16_t cell(char c)
{
    return (uint16_t)(uint8_t)c | (uint16_t)color << 8;
}

void vga_set_color(enum vga_color foreground, enum vga_color background)
{
    color = (uint8_t)(foreground | background << 4);
}

void vga_clear(void)
{
    for (int i = 0; i < VGA_COLUMNS * VGA_ROWS; i++)
        screen[i] = cell(' ');
    row = column = 0;
}

/* Move every line up by one and blank the last, so the newest output stays visible. */
static void scroll(void)
{
    for (int i = 0; i < VGA_COLUMNS * (VGA_ROWS - 1); i++)
        screen[i] = screen[i + VGA_COLUMNS];
    for (int i = 0; i < VGA_COLUMNS; i++)
        screen[(VGA_ROWS - 1) * VGA_COLUMNS + i] = cell(' ');
    row = VGA_ROWS - 1;
}

static void newline(void)
{
    column = 0;
    if (++row == VGA_ROWS)
        scroll();
}

void vga_putc(char c)
{
    if (c == '\n') {
        newline();
        return;
    }
    if (c == '\r') {
        column = 0;
        return;
    }
    screen[row * VGA_COLUMNS + column] = cell(c);
    if (++column == VGA_COLUMNS)
        newline();
}

void vga_write(const char *s)
{
    while (*s)
        vga_putc(*s++);
}
