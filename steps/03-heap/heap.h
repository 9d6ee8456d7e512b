#pragma once

#include <stddef.h>

struct heap_stats {
    size_t arena_bytes;  /* held from the frame allocator now (large blocks too) */
    size_t used_bytes;   /* in allocated blocks, headers included */
    size_t free_bytes;   /* in free blocks */
    size_t free_blocks;  /* length of the free list */
    size_t arenas;       /* separate runs of frames the heap grew by */
};

void *kmalloc(size_t size);
void *kcalloc(size_t count, size_t size);
void *krealloc(void *pointer, size_t size);
void kfree(void *pointer);
struct heap_stats heap_stats(void);
void heap_print_stats(void);
