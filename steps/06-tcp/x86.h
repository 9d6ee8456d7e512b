/* Instructions C cannot express, as tiny inline functions. */
#pragma once

#include <stdint.h>

__attribute__((noreturn)) static inline void cpu_halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline void outw(uint16_t port, uint16_t value)
{
    __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t value;
    __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline void outl(uint16_t port, uint32_t value)
{
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

#define DEFINE_READ_CR(n)                                        \
    static inline uint64_t read_cr##n(void)                      \
    {                                                            \
        uint64_t value;                                          \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(value));    \
        return value;                                            \
    }
DEFINE_READ_CR(0)
DEFINE_READ_CR(2)
DEFINE_READ_CR(3)
DEFINE_READ_CR(4)

static inline void write_cr3(uint64_t value)
{
    __asm__ volatile("mov %0, %%cr3" : : "r"(value) : "memory");
}

static inline uint64_t rdtsc(void)
{
    uint32_t low, high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return (uint64_t)high << 32 | low;
}

/*
 * Halt until an interrupt, with interrupts enabled for the HLT alone; returns the TSC ticks
 * spent halted. STI takes effect only after the next instruction, so an interrupt already
 * pending is taken inside the HLT, ending it at once, instead of just before it and lost.
 */
static inline uint64_t halt_until_interrupt(void)
{
    uint64_t start = rdtsc();

    __asm__ volatile("sti; hlt; cli" : : : "memory");
    return rdtsc() - start;
}
