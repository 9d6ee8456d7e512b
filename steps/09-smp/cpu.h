/* What the processor can do beyond SSE2, and turning it on. */
#pragma once

#include <stdbool.h>

struct cpu_features {
    bool avx;
    bool avx2;
};

void cpu_init(void);
void cpu_init_ap(void);
const struct cpu_features *cpu_features(void);
