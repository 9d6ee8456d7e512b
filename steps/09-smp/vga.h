#pragma once

enum vga_color {
    VGA_BLACK = 0, VGA_BLUE = 1, VGA_GREEN = 2, VGA_CYAN = 3, VGA_RED = 4,
    VGA_LIGHT_GREY = 7, VGA_DARK_GREY = 8, VGA_LIGHT_GREEN = 10, VGA_LIGHT_CYAN = 11,
    VGA_YELLOW = 14, VGA_WHITE = 15,
};

void vga_clear(void);
void vga_set_color(enum vga_color foreground, enum vga_color background);
void vga_putc(char c);
void vga_write(const char *s);
