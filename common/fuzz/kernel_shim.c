/* Maps the kernel heap onto malloc; snprintf and vsnprintf come from the host's libc. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "heap.h"
#include "kernel_shim.h"

long shim_live_blocks;
long shim_allocations;
long shim_fail_after = -1;

static bool allocation_allowed(void)
{
    if (shim_fail_after == 0)
        return false;
    if (shim_fail_after > 0)
        shim_fail_after--;
    return true;
}

void *kmalloc(size_t size)
{
    void *block;

    if (size == 0 || size > SIZE_MAX / 2 || !allocation_allowed())
        return NULL;
    block = malloc(size);
    if (block) {
        shim_live_blocks++;
        shim_allocations++;
    }
    return block;
}

void *kcalloc(size_t count, size_t size)
{
    void *block;

    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    block = kmalloc(count * size);
    if (block)
        memset(block, 0, count * size);
    return block;
}

void kfree(void *pointer)
{
    if (pointer) {
        shim_live_blocks--;
        free(pointer);
    }
}

void *krealloc(void *pointer, size_t size)
{
    void *moved;

    if (!pointer)
        return kmalloc(size);
    if (size == 0) {
        kfree(pointer);
        return NULL;
    }
    if (!allocation_allowed())
        return NULL;
    moved = realloc(pointer, size);
    if (moved)
        shim_allocations++;
    return moved;
}
