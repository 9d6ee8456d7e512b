/*
 * The first C code. boot.S has switched to 64-bit long mode, identity-mapped 4 GiB and set up
 * a stack; everything from here on is ordinary C.
 */
#include <stdint.h>
#include "api.h"
#include "clock.h"
#include "cmdline.h"
#include "console.h"
#include "e1000.h"
#include "frames.h"
#include "heap.h"
#include "http_server.h"
#include "icmp.h"
#include "idt.h"
#include "infer.h"
#include "interrupts.h"
#include "kprintf.h"
#include "ktest.h"
#include "memory_map.h"
#include "memtest.h"
#include "multiboot2.h"
#include "net.h"
#include "paging.h"
#include "pci.h"
#include "rtc.h"
#include "serial.h"
#include "services.h"
#include "shell.h"
#include "slots.h"
#include "panic.h"
#include "tcp.h"
#include "vga.h"
#include "x86.h"

#define PING_TIMEOUT_MS 2000
#define HTTP_PORT 80

/* Show the path to the gateway works: ARP resolves it, then it answers a ping. */
static void ping_gateway(void)
{
    char gateway[16];
    uint16_t sequence = 0;

    format_ipv4(gateway, sizeof(gateway), net_config()->gateway);
    icmp_ping(net_config()->gateway, sequence);
    if (!net_poll_until(icmp_replied, &sequence, PING_TIMEOUT_MS))
        kprintf("ping %s: no reply within %d ms\n", gateway, PING_TIMEOUT_MS);
}

/* Asked with interrupts off, just before halting: has a device brought in work meanwhile? */
static bool work_waiting(void)
{
    return net_frame_waiting() || serial_has_input() || tcp_work_waiting() ||
           http_server_work_waiting();
}

void kmain(uint32_t multiboot_magic, uint32_t multiboot_info)
{
    console_init();
    vga_set_color(VGA_LIGHT_GREEN, VGA_BLACK);
    kprintf("ringzero 07-http: booting\n");
    vga_set_color(VGA_LIGHT_GREY, VGA_BLACK);
    idt_init();
    if (multiboot_magic != MULTIBOOT2_BOOTLOADER_MAGIC)
        panic("not started by a Multiboot2 boot loader (magic 0x%x)", multiboot_magic);
    multiboot2_init(multiboot_info);
    cmdline_init(multiboot2_cmdline());
    kprintf("cmdline: %s\n", cmdline_text());
    interrupts_init();
    memory_map_init();
    frames_init();
    paging_map_all_ram();
    memtest_run();
    heap_print_stats();
    infer_init();
    clock_init();
    pci_init();
    pci_print_devices();
    e1000_register();
    pci_probe_drivers();
    ktest_run_requested();
    if (!net_ready())
        panic("no network card found: QEMU needs -device e1000");
    net_configure();
    if (!cmdline_has("noping"))
        ping_gateway();
    tcp_init();
    services_init();
    rtc_init();
    slots_init();
    http_server_start(HTTP_PORT, api_handle);
    serial_enable_receive_interrupt();
    kprintf("ready\n");
    for (;;) {
        net_poll();
        services_poll();
        http_server_poll(clock_ms());
        tcp_poll(clock_ms());
        shell_poll();
        wait_for_interrupt(work_waiting);
    }
}
