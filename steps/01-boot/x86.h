/* Instructions C cannot express, as tiny inline functions. */
#pragma once

#include <stdint.h>

__attribute__((noreturn)) static inline void cpu_halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}
