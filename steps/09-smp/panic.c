/*
 * When the kernel cannot go on: say why, show how it got there, and stop in a way a test can
 * tell apart from a crash.
 */
#include <stdarg.h>
#include <stdint.h>
#include "kprintf.h"
#include "panic.h"
#include "x86.h"

/* QEMU's isa-debug-exit device: writing v makes QEMU exit with status (v << 1) | 1. */
#define QEMU_DEBUG_EXIT_PORT 0xF4
#define QEMU_EXIT_FAILURE 1

#define MAX_FRAMES 32
#define IDENTITY_MAPPED_LIMIT 0x100000000ull

/*
 * Each frame built with frame pointers starts with the caller's RBP, followed by the return
 * address. boot.S zeroes RBP before calling kmain, which ends the chain. A corrupted RBP must
 * not fault here, so only follow pointers that are aligned, mapped, and move up the stack.
 */
void print_backtrace(uint64_t instruction, uint64_t frame_pointer)
{
    kprintf("backtrace (resolve with addr2line -f -e kernel.elf):\n");
    kprintf("  #0 0x%016lx\n", instruction);
    for (int depth = 1; depth < MAX_FRAMES; depth++) {
        if (frame_pointer == 0 || frame_pointer % 8 != 0 ||
            frame_pointer >= IDENTITY_MAPPED_LIMIT)
            return;
        const uint64_t *frame = (const uint64_t *)frame_pointer;
        uint64_t return_address = frame[1];
        if (return_address == 0)
            return;
        kprintf("  #%d 0x%016lx\n", depth, return_address);
        if (frame[0] <= frame_pointer)
            return;
        frame_pointer = frame[0];
    }
}

/* Under QEMU, exit so the grader sees the failure at once; on real hardware, halt. */
void stop_after_failure(void)
{
    outl(QEMU_DEBUG_EXIT_PORT, QEMU_EXIT_FAILURE);
    cpu_halt_forever();
}

void panic(const char *format, ...)
{
    va_list args;

    __asm__ volatile("cli");
    kprintf("PANIC: ");
    va_start(args, format);
    vkprintf(format, args);
    va_end(args);
    kprintf("\n");
    /* Start from panic's caller: panic itself is no news. */
    const uint64_t *frame = __builtin_frame_address(0);
    print_backtrace(frame[1], frame[0]);
    stop_after_failure();
}
