#pragma once

#include <stdint.h>

/* What isr.S saves on the stack, in memory order, before calling into C. */
struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    /* Pushed by the CPU itself. */
    uint64_t rip, cs, rflags, rsp, ss;
};

void idt_init(void);
void idt_load(void);
void idt_set_handler(int vector, void (*entry)(void));
void exception_handler(struct trap_frame *frame);
