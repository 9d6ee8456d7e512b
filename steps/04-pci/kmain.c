/*
 * The first C code. boot.S has switched to 64-bit long mode, identity-mapped 4 GiB and set up
 * a stack; everything from here on is ordinary C.
 */
#include <stdint.h>
#include "cmdline.h"
#include "console.h"
#include "frames.h"
#include "heap.h"
#include "idt.h"
#include "kprintf.h"
#include "ktest.h"
#include "memory_map.h"
#include "memtest.h"
#include "multiboot2.h"
#include "paging.h"
#include "pci.h"
#include "panic.h"
#include "vga.h"
#include "x86.h"

void kmain(uint32_t multiboot_magic, uint32_t multiboot_info)
{
    console_init();
    vga_set_color(VGA_LIGHT_GREEN, VGA_BLACK);
    kprintf("ringzero 04-pci: booting\n");
    vga_set_color(VGA_LIGHT_GREY, VGA_BLACK);
    idt_init();
    if (multiboot_magic != MULTIBOOT2_BOOTLOADER_MAGIC)
        panic("not started by a Multiboot2 boot loader (magic 0x%x)", multiboot_magic);
    multiboot2_init(multiboot_info);
    cmdline_init(multiboot2_cmdline());
    kprintf("cmdline: %s\n", cmdline_text());
    memory_map_init();
    frames_init();
    paging_map_all_ram();
    memtest_run();
    heap_print_stats();
    pci_init();
    pci_print_devices();
    pci_probe_drivers();
    ktest_run_requested();
    kprintf("ready\n");
    cpu_halt_forever();
}
