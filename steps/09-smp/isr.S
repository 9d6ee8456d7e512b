/*
 * Entry points for the 32 CPU exceptions and the 16 device interrupt lines. Some exceptions
 * push an error code and some do not; each stub pushes a zero where the CPU did not, then the
 * vector number, so every entry reaches C with the same struct trap_frame layout (idt.h).
 */
.macro exception_without_error_code vector
exception_entry_\vector:
    pushq $0
    pushq $\vector
    jmp exception_common
.endm

.macro exception_with_error_code vector
exception_entry_\vector:
    pushq $\vector
    jmp exception_common
.endm

.macro interrupt line
interrupt_entry_\line:
    pushq $0
    pushq $(32 + \line)
    jmp interrupt_common
.endm

/* Save every register, call a C function with the trap frame, restore, and return. */
.macro call_with_trap_frame function
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    /* The C calling convention expects the direction flag clear. */
    cld
    call \function
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    /* Drop the vector number and the error code. */
    add $16, %rsp
    iretq
.endm

    .text
.irp vector, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    exception_without_error_code \vector
.endr
.irp vector, 8,10,11,12,13,14,17,21,29,30
    exception_with_error_code \vector
.endr
.irp line, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    interrupt \line
.endr

exception_common:
    call_with_trap_frame exception_handler

interrupt_common:
    call_with_trap_frame interrupt_dispatch

    .section .rodata
    .balign 8
    .global exception_entries
exception_entries:
.irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_entry_\vector
.endr
    .global interrupt_entries
interrupt_entries:
.irp line, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .quad interrupt_entry_\line
.endr

/*
 * The local APIC's two interrupts (apic.c). A CPU enables interrupts only inside the HLT of a
 * wait (wait.c): the wake-up IPI has nothing to do but end that HLT, so it signals end of
 * interrupt and returns.
 */
    .text
    .global wakeup_interrupt_entry
wakeup_interrupt_entry:
    push %rax
    mov lapic_eoi_register, %rax
    movl $0, (%rax)
    pop %rax
    iretq

/* A spurious interrupt is never in service, so it must not be acknowledged. */
    .global spurious_interrupt_entry
spurious_interrupt_entry:
    iretq
