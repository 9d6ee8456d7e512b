/*
 * SSE2 is part of x86-64 and boot.S has switched it on. AVX (256-bit registers) needs more:
 * the OS must tell the CPU that it manages the larger register state, by setting CR4.OSXSAVE
 * and then XCR0's AVX bit. Only the kernel runs here and nothing switches tasks, so nothing
 * ever saves that state; the bits are the CPU's permission to use it. AVX2 adds the integer
 * and the gather instructions to those registers and needs no further switch.
 */
#include <stdbool.h>
#include <stdint.h>
#include "cpu.h"
#include "kprintf.h"
#include "panic.h"
#include "x86.h"

#define LEAF_FEATURES 1
#define LEAF_EXTENDED_FEATURES 7
#define LEAF_XSAVE 0xD
#define ECX_XSAVE (1u << 26)
#define ECX_AVX (1u << 28)
#define EBX_AVX2 (1u << 5)
#define CR4_OSXSAVE (1u << 18)
#define XCR0_X87 (1u << 0)
#define XCR0_SSE (1u << 1)
#define XCR0_AVX (1u << 2)

static struct cpu_features features;

static uint32_t max_leaf(void)
{
    return cpuid(0, 0).eax;
}

/* XSAVE must exist, and it must manage the x87, SSE and AVX state (CPUID leaf 0xD says so). */
static bool enable_avx(void)
{
    uint32_t wanted = XCR0_X87 | XCR0_SSE | XCR0_AVX;
    struct cpuid_result leaf1 = cpuid(LEAF_FEATURES, 0);

    if (!(leaf1.ecx & ECX_XSAVE) || !(leaf1.ecx & ECX_AVX) || max_leaf() < LEAF_XSAVE)
        return false;
    if ((cpuid(LEAF_XSAVE, 0).eax & wanted) != wanted)
        return false;
    write_cr4(read_cr4() | CR4_OSXSAVE);
    xsetbv(0, wanted);
    return true;
}

void cpu_init(void)
{
    features.avx = enable_avx();
    features.avx2 = features.avx && max_leaf() >= LEAF_EXTENDED_FEATURES &&
                    (cpuid(LEAF_EXTENDED_FEATURES, 0).ebx & EBX_AVX2);
    kprintf("cpu: sse2%s%s\n", features.avx ? " avx" : "", features.avx2 ? " avx2" : "");
}

/*
 * An application processor starts with AVX off (CR4 and XCR0 are each CPU's own), but the
 * engine chose its instructions once for all CPUs (infer.c): each must allow the same ones.
 * SSE and MXCSR were set up by enable_sse, as on the boot processor.
 */
void cpu_init_ap(void)
{
    if (features.avx && !enable_avx())
        panic("cpu: AVX works on the boot processor but not on this one");
}

const struct cpu_features *cpu_features(void)
{
    return &features;
}
