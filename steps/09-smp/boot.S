/*
 * From GRUB to C in long mode.
 *
 * GRUB enters _start in 32-bit protected mode with paging off, EAX holding the Multiboot2
 * magic and EBX the physical address of the boot information. Long mode needs three things
 * before the jump: page tables (paging is mandatory in 64-bit mode), PAE with EFER.LME set,
 * and a GDT with a 64-bit code segment.
 */
#define MB2_MAGIC        0xE85250D6
#define MB2_ARCH_I386    0
#define PAGE_PRESENT     (1 << 0)
#define PAGE_WRITABLE    (1 << 1)
#define PAGE_HUGE        (1 << 7)
#define CR0_PE           (1 << 0)
#define CR0_MP           (1 << 1)
#define CR0_EM           (1 << 2)
#define CR0_TS           (1 << 3)
#define CR0_PG           (1 << 31)
#define CR4_PAE          (1 << 5)
#define CR4_OSFXSR       (1 << 9)
#define CR4_OSXMMEXCPT   (1 << 10)
#define MXCSR_DEFAULT    0x1F80
#define MSR_EFER         0xC0000080
#define EFER_LME         (1 << 8)
#define CPUID_EXT_FEATS  0x80000001
#define CPUID_LONG_MODE  (1 << 29)
#define STACK_SIZE       16384
#define VGA_TEXT         0xB8000
#define VGA_WHITE_ON_RED 0x4F00

    .section .multiboot2, "a"
    .balign 8
mb2_header:
    .long MB2_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header
    .long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
    /* End tag: no optional requests, GRUB's defaults suit us. */
    .short 0
    .short 0
    .long 8
mb2_header_end:

    .section .text
    .code32
    .global _start
_start:
    mov $stack_top, %esp
    /* Keep GRUB's handoff for kmain: EDI and ESI are the first two C arguments in 64-bit code. */
    mov %eax, %edi
    mov %ebx, %esi

    call check_long_mode
    call build_page_tables
    call enter_long_mode
    lgdt gdt_pointer
    /* A far jump loads CS from the new GDT; only then does the CPU run 64-bit code. */
    ljmp $(gdt_code - gdt), $long_mode_start

/* CPUID leaf 0x80000001 reports long mode; older CPUs do not even have that leaf. */
check_long_mode:
    mov $0x80000000, %eax
    cpuid
    cmp $CPUID_EXT_FEATS, %eax
    jb no_long_mode
    mov $CPUID_EXT_FEATS, %eax
    cpuid
    test $CPUID_LONG_MODE, %edx
    jz no_long_mode
    ret

/* There is no console driver yet, so write straight into VGA text memory, then stop. */
no_long_mode:
    mov $no_long_mode_message, %esi
    mov $VGA_TEXT, %edi
1:  movzbl (%esi), %eax
    test %eax, %eax
    jz halt32
    or $VGA_WHITE_ON_RED, %eax
    mov %ax, (%edi)
    inc %esi
    add $2, %edi
    jmp 1b
halt32:
    cli
    hlt
    jmp halt32

/*
 * Identity-map the first 4 GiB with 2 MiB pages: one PML4 entry, four PDPT entries, and four
 * page directories of 512 entries each. 4 GiB covers the kernel, the VGA buffer and the
 * memory-mapped devices that PCI places just below 4 GiB.
 */
build_page_tables:
    mov $pdpt, %eax
    or $(PAGE_PRESENT | PAGE_WRITABLE), %eax
    mov %eax, pml4

    mov $0, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $page_directories, %eax
    or $(PAGE_PRESENT | PAGE_WRITABLE), %eax
    mov %eax, pdpt(, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jne 1b

    /* Entry i of the 2048 consecutive directory entries maps physical address i * 2 MiB. */
    mov $0, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $(PAGE_PRESENT | PAGE_WRITABLE | PAGE_HUGE), %eax
    mov %eax, page_directories(, %ecx, 8)
    /* Bits 32-35 of the physical address go in the entry's upper half. */
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, page_directories + 4(, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jne 2b
    ret

enter_long_mode:
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4

    mov $pml4, %eax
    mov %eax, %cr3

    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr

    /* Turning on paging with EFER.LME set activates long mode (in 32-bit compatibility). */
    mov %cr0, %eax
    or $(CR0_PG | CR0_PE), %eax
    mov %eax, %cr0
    ret

    .code64
long_mode_start:
    /* Data segment registers are ignored in 64-bit mode but must hold a valid selector. */
    mov $(gdt_data - gdt), %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs

    mov $stack_top, %rsp
    call enable_sse
    /* A zero frame pointer marks the end of the call chain for backtraces. */
    xor %ebp, %ebp
    call kmain
halt64:
    cli
    hlt
    jmp halt64

/*
 * The C code from here on may use SSE (the model's arithmetic needs it, and GCC uses it for
 * any float). Every x86-64 CPU has SSE2, but it faults until the OS says it is ready: an FPU
 * is present and no task switch is pending (EM and TS clear, MP set), the OS saves SSE state
 * with FXSAVE (OSFXSR) and handles SIMD exceptions (OSXMMEXCPT). Then put the x87 and SSE
 * control words in their documented start state: round to nearest, exceptions masked, no
 * flush-to-zero, so results match an ordinary Linux process's bit for bit.
 * Application processors start with SSE off too and call this as well (trampoline.S).
 */
    .global enable_sse
enable_sse:
    mov %cr0, %rax
    and $~(CR0_EM | CR0_TS), %rax
    or $CR0_MP, %rax
    mov %rax, %cr0
    mov %cr4, %rax
    or $(CR4_OSFXSR | CR4_OSXMMEXCPT), %rax
    mov %rax, %cr4
    fninit
    ldmxcsr mxcsr_default
    ret

    .section .rodata
mxcsr_default:
    .long MXCSR_DEFAULT
no_long_mode_message:
    .asciz "ringzero: this CPU has no long mode (64-bit) support; halting."

    /* In .data, not .rodata: the CPU writes the accessed bit of a descriptor it loads. */
    .section .data
    .balign 8
gdt:
    .quad 0
gdt_code:
    /* Present, ring 0, code, readable, and L=1: a 64-bit code segment. */
    .quad 0x00AF9A000000FFFF
gdt_data:
    /* Present, ring 0, data, writable. */
    .quad 0x00CF92000000FFFF
gdt_end:

    /* Application processors switch to this GDT too (trampoline.S). */
    .global gdt_pointer
gdt_pointer:
    .short gdt_end - gdt - 1
    .quad gdt

    .section .bss
    .balign 4096
pml4:
    .skip 4096
pdpt:
    .skip 4096
page_directories:
    .skip 4 * 4096
    .balign 16
stack_bottom:
    .skip STACK_SIZE
stack_top:
