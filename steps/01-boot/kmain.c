/*
 * The first C code. boot.S has switched to 64-bit long mode, identity-mapped 4 GiB and set up
 * a stack; everything from here on is ordinary C.
 */
#include <stdint.h>
#include "vga.h"
#include "x86.h"

#define MULTIBOOT2_BOOTLOADER_MAGIC 0x36D76289

void kmain(uint32_t multiboot_magic, uint32_t multiboot_info)
{
    (void)multiboot_info;
    vga_clear();
    vga_set_color(VGA_LIGHT_GREEN, VGA_BLACK);
    vga_write("ringzero 01-boot: hello from 64-bit long mode\n");
    vga_set_color(VGA_LIGHT_GREY, VGA_BLACK);
    if (multiboot_magic != MULTIBOOT2_BOOTLOADER_MAGIC)
        vga_write("warning: not started by a Multiboot2 boot loader\n");
    vga_write("Paging identity-maps the first 4 GiB with 2 MiB pages. Halting.\n");
    cpu_halt_forever();
}
