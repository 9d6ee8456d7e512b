/*
 * The Interrupt Descriptor Table tells the CPU where to go on each of the 256 vectors. This
 * step fills in the 32 CPU exceptions, so a bug turns into a readable report on the serial
 * console instead of a silent triple fault and reboot.
 */
#include <stdbool.h>
#include <stdint.h>
#include "idt.h"
#include "kprintf.h"
#include "panic.h"
#include "percpu.h"
#include "x86.h"

#define EXCEPTION_COUNT 32
#define KERNEL_CODE_SELECTOR 0x08
#define GATE_PRESENT_INTERRUPT 0x8E
#define PAGE_FAULT 14

struct idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attributes;
    uint16_t offset_middle;
    uint32_t offset_high;
    uint32_t reserved;
} __attribute__((packed));

struct idt_pointer {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

extern const uint64_t exception_entries[EXCEPTION_COUNT];

static struct idt_gate idt[256];

static const char *const exception_names[EXCEPTION_COUNT] = {
    "#DE divide error", "#DB debug", "NMI non-maskable interrupt", "#BP breakpoint",
    "#OF overflow", "#BR bound range exceeded", "#UD invalid opcode", "#NM device not available",
    "#DF double fault", "coprocessor segment overrun", "#TS invalid TSS", "#NP segment not present",
    "#SS stack-segment fault", "#GP general protection fault", "#PF page fault", "reserved",
    "#MF x87 floating-point error", "#AC alignment check", "#MC machine check",
    "#XM SIMD floating-point error", "#VE virtualization exception", "#CP control protection",
    "reserved", "reserved", "reserved", "reserved", "reserved", "reserved",
    "#HV hypervisor injection", "#VC VMM communication", "#SX security exception", "reserved",
};

static void set_gate(int vector, uint64_t handler)
{
    idt[vector] = (struct idt_gate){
        .offset_low = handler & 0xFFFF,
        .selector = KERNEL_CODE_SELECTOR,
        .type_attributes = GATE_PRESENT_INTERRUPT,
        .offset_middle = (handler >> 16) & 0xFFFF,
        .offset_high = handler >> 32,
    };
}

void idt_init(void)
{
    for (int vector = 0; vector < EXCEPTION_COUNT; vector++)
        set_gate(vector, exception_entries[vector]);
    idt_load();
}

/* Every CPU shares the one table, but each must be told where it is. */
void idt_load(void)
{
    struct idt_pointer pointer = { .limit = sizeof(idt) - 1, .base = (uint64_t)idt };

    __asm__ volatile("lidt %0" : : "m"(pointer));
}

/* For the vectors interrupts.c and smp.c install: the device lines, and the APIC wake-up and
 * spurious interrupts (stubs in isr.S). */
void idt_set_handler(int vector, void (*entry)(void))
{
    set_gate(vector, (uint64_t)entry);
}

static void print_registers(const struct trap_frame *f)
{
    kprintf("  RIP=0x%016lx RSP=0x%016lx RBP=0x%016lx RFLAGS=0x%016lx\n",
            f->rip, f->rsp, f->rbp, f->rflags);
    kprintf("  RAX=0x%016lx RBX=0x%016lx RCX=0x%016lx RDX=0x%016lx\n",
            f->rax, f->rbx, f->rcx, f->rdx);
    kprintf("  RSI=0x%016lx RDI=0x%016lx R8 =0x%016lx R9 =0x%016lx\n",
            f->rsi, f->rdi, f->r8, f->r9);
    kprintf("  R10=0x%016lx R11=0x%016lx R12=0x%016lx R13=0x%016lx\n",
            f->r10, f->r11, f->r12, f->r13);
    kprintf("  R14=0x%016lx R15=0x%016lx CS=0x%lx SS=0x%lx\n", f->r14, f->r15, f->cs, f->ss);
    kprintf("  CR0=0x%016lx CR3=0x%016lx CR4=0x%016lx\n", read_cr0(), read_cr3(), read_cr4());
}

/* A page fault's error code says what the access was; spell it out. */
static void print_page_fault(uint64_t error_code)
{
    kprintf("  CR2=0x%016lx (%s, %s, %s mode)\n", read_cr2(),
            error_code & 1 ? "protection violation" : "page not present",
            error_code & 2 ? "write" : "read", error_code & 4 ? "user" : "kernel");
}

void exception_handler(struct trap_frame *frame)
{
    static bool reporting;

    /* A fault while reporting a fault would recurse forever; stop at the second one. */
    if (reporting) {
        kprintf("EXCEPTION %lu while reporting an exception\n", frame->vector);
        stop_after_failure();
    }
    reporting = true;
    kprintf("EXCEPTION %lu %s, error code 0x%lx\n", frame->vector,
            exception_names[frame->vector], frame->error_code);
    kprintf("  on CPU %d\n", this_cpu()->index);
    if (frame->vector == PAGE_FAULT)
        print_page_fault(frame->error_code);
    print_registers(frame);
    print_backtrace(frame->rip, frame->rbp);
    stop_after_failure();
}
