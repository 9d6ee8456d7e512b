/*
 * An application processor's way from reset to the kernel's C code.
 *
 * A STARTUP IPI starts the CPU the way the PC's first CPU starts: in 16-bit real mode, with
 * no paging and only the first 1 MiB addressable. smp.c copies the code between
 * trampoline_start and trampoline_end to TRAMPOLINE_ADDRESS and points the IPI there. The
 * code then climbs the same steps as GRUB and boot.S did for the boot processor:
 *   real mode -> 32-bit protected mode -> long mode -> smp_ap_main, on a stack of its own.
 *
 * The code is assembled here but runs at TRAMPOLINE_ADDRESS, so every address inside it goes
 * through AT(), and nothing may use RIP-relative addressing. Addresses outside it (the
 * kernel's GDT, smp_ap_main) are absolute and stay valid.
 */
#include "trampoline.h"

#define AT(label)        ((label) - trampoline_start + TRAMPOLINE_ADDRESS)
#define CR0_PE           (1 << 0)
#define CR0_NW           (1 << 29)
#define CR0_CD           (1 << 30)
#define CR0_PG           (1 << 31)
#define CR4_PAE          (1 << 5)
#define MSR_EFER         0xC0000080
#define EFER_LME         (1 << 8)
/* The selectors match boot.S's GDT (code 0x08, data 0x10), so switching to it changes nothing
 * that is loaded. */
#define CODE64           0x08
#define DATA             0x10
#define CODE32           0x18

    .section .rodata
    .global trampoline_start, trampoline_end, trampoline_parameters
    .code16
trampoline_start:
    cli
    cld
    /* CS is TRAMPOLINE_ADDRESS >> 4; with DS at 0, AT() addresses work as they are. */
    xor %ax, %ax
    mov %ax, %ds
    lgdtl AT(trampoline_gdt_pointer)
    /* RESET leaves a CPU with its caches off (CR0.CD and NW set), and INIT leaves both bits
     * as they were: whether this CPU's firmware ever cleared them, nothing promises. With them
     * set it would still work, only many times slower. (TCG and KVM mostly ignore the bits,
     * which hides the mistake.) */
    mov %cr0, %eax
    and $~(CR0_CD | CR0_NW), %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    /* A far jump loads CS from the GDT: from here on the CPU runs 32-bit code. */
    ljmpl $CODE32, $AT(protected_mode)

    .code32
protected_mode:
    mov $DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    /* Long mode as in boot.S, but the page tables already exist: use the boot processor's. */
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov AT(parameter_page_table), %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PG, %eax
    mov %eax, %cr0
    ljmp $CODE64, $AT(long_mode)

    .code64
long_mode:
    /* The kernel's own GDT, so this page is not needed once the CPU runs the kernel. */
    lgdt gdt_pointer
    mov $DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov AT(parameter_stack_top), %rsp
    /* Before any C: the compiler may use SSE registers anywhere (boot.S). */
    movabs $enable_sse, %rax
    call *%rax
    mov AT(parameter_cpu), %rdi
    /* smp_ap_main never returns. A zero frame pointer and a zero return address end
     * backtraces there, instead of in this page. */
    xor %ebp, %ebp
    movabs $smp_ap_main, %rax
    push $0
    jmp *%rax

    .balign 8
trampoline_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* CODE64: as boot.S's */
    .quad 0x00CF92000000FFFF    /* DATA: as boot.S's, flat 4 GiB */
    .quad 0x00CF9A000000FFFF    /* CODE32: flat 4 GiB, 32-bit (D=1) */
trampoline_gdt_end:
trampoline_gdt_pointer:
    .short trampoline_gdt_end - trampoline_gdt - 1
    .long AT(trampoline_gdt)

    .balign 8
trampoline_parameters:
parameter_page_table:
    .quad 0
parameter_stack_top:
    .quad 0
parameter_cpu:
    .quad 0
trampoline_end:
