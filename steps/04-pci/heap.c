/*
 * The kernel heap: variable-sized blocks carved out of runs of frames.
 *
 * Every block starts with a 16-byte header holding its size, so the memory handed out stays
 * 16-byte aligned. Free blocks form a list sorted by address; that order lets kfree merge a
 * block with the free neighbours right before and after it, so freed memory does not stay
 * chopped into small pieces. When no free block is big enough, the heap grows by asking the
 * frame allocator for another run of frames.
 *
 * A large block (256 KiB or more) gets a run of frames of its own instead, and kfree hands the
 * run straight back to the frame allocator, as C libraries hand large blocks to mmap: a large
 * block never splits a free block that small ones then cut up, and its memory is free for any
 * use again the moment it is freed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "frames.h"
#include "heap.h"
#include "kprintf.h"
#include "panic.h"
#include "string.h"

#define ALIGNMENT 16
#define BLOCK_ALLOCATED 0xA110CA7Eu
#define BLOCK_FREE      0xF4EEB10Cu
#define BLOCK_LARGE     0x1A46EB10u
/* The heap grows by at least this much, so small allocations do not each cost a frame run;
 * a block this big or bigger is large, and has its own run. */
#define MINIMUM_GROWTH (256 * 1024)

struct block {
    size_t size;       /* of the whole block, header included; a multiple of ALIGNMENT */
    uint32_t magic;    /* BLOCK_ALLOCATED, BLOCK_FREE or BLOCK_LARGE: catches bad frees */
    uint32_t reserved;
};

struct free_block {
    struct block header;
    struct free_block *next;
};

#define HEADER_SIZE sizeof(struct block)
#define MINIMUM_BLOCK sizeof(struct free_block)

_Static_assert(sizeof(struct block) % ALIGNMENT == 0, "headers must keep payloads aligned");

static struct free_block *free_list;
static struct heap_stats stats;

static size_t align_up(size_t value, size_t alignment)
{
    return (value + alignment - 1) & ~(alignment - 1);
}

static char *end_of(void *block)
{
    return (char *)block + ((struct block *)block)->size;
}

/* Put a block into the sorted free list, merging it with the neighbours it touches. */
static void insert_free(struct free_block *block)
{
    struct free_block *previous = NULL, *next = free_list;

    while (next && next < block) {
        previous = next;
        next = next->next;
    }
    block->header.magic = BLOCK_FREE;
    block->next = next;
    if (next && end_of(block) == (char *)next) {
        block->header.size += next->header.size;
        block->next = next->next;
        stats.free_blocks--;
    }
    if (previous && end_of(previous) == (char *)block) {
        previous->header.size += block->header.size;
        previous->next = block->next;
    } else {
        if (previous)
            previous->next = block;
        else
            free_list = block;
        stats.free_blocks++;
    }
}

static bool grow(size_t needed)
{
    size_t bytes = align_up(needed > MINIMUM_GROWTH ? needed : MINIMUM_GROWTH, FRAME_SIZE);
    uint64_t frames = frame_alloc_contiguous(bytes / FRAME_SIZE);
    struct free_block *block = (struct free_block *)frames;

    if (!frames)
        return false;
    block->header.size = bytes;
    stats.arena_bytes += bytes;
    stats.free_bytes += bytes;
    stats.arenas++;
    insert_free(block);
    return true;
}

/* First fit: take the lowest block that is big enough, and give back what it has to spare. */
static struct block *take_first_fit(size_t size)
{
    struct free_block **link = &free_list;

    for (struct free_block *block = free_list; block; link = &block->next, block = block->next) {
        if (block->header.size < size)
            continue;
        if (block->header.size - size >= MINIMUM_BLOCK) {
            struct free_block *rest = (struct free_block *)((char *)block + size);
            rest->header = (struct block){ .size = block->header.size - size,
                                           .magic = BLOCK_FREE };
            rest->next = block->next;
            *link = rest;
            block->header.size = size;
        } else {
            *link = block->next;
            stats.free_blocks--;
        }
        block->header.magic = BLOCK_ALLOCATED;
        stats.used_bytes += block->header.size;
        stats.free_bytes -= block->header.size;
        return &block->header;
    }
    return NULL;
}

/* A large block: its own run of frames, counted as arena while it lives. */
static struct block *take_large(size_t size)
{
    size_t bytes = align_up(size, FRAME_SIZE);
    struct block *block = (struct block *)frame_alloc_contiguous(bytes / FRAME_SIZE);

    if (!block)
        return NULL;
    *block = (struct block){ .size = bytes, .magic = BLOCK_LARGE };
    stats.arena_bytes += bytes;
    stats.used_bytes += bytes;
    return block;
}

static void give_back_large(struct block *block)
{
    stats.arena_bytes -= block->size;
    stats.used_bytes -= block->size;
    block->magic = BLOCK_FREE;
    frame_free_contiguous((uint64_t)block, block->size / FRAME_SIZE);
}

void *kmalloc(size_t size)
{
    size_t block_size;
    struct block *block;

    if (size == 0 || size > SIZE_MAX / 2)
        return NULL;
    block_size = align_up(size + HEADER_SIZE, ALIGNMENT);
    if (block_size < MINIMUM_BLOCK)
        block_size = MINIMUM_BLOCK;
    if (block_size >= MINIMUM_GROWTH) {
        block = take_large(block_size);
        return block ? (char *)block + HEADER_SIZE : NULL;
    }
    block = take_first_fit(block_size);
    if (!block && grow(block_size))
        block = take_first_fit(block_size);
    return block ? (char *)block + HEADER_SIZE : NULL;
}

static struct block *block_of(void *pointer, const char *caller)
{
    struct block *block = (struct block *)((char *)pointer - HEADER_SIZE);

    if ((uintptr_t)pointer % ALIGNMENT != 0 ||
        (block->magic != BLOCK_ALLOCATED && block->magic != BLOCK_LARGE))
        panic("%s(%p): not an allocated heap block%s", caller, pointer,
              block->magic == BLOCK_FREE ? " (freed twice?)" : "");
    return block;
}

void kfree(void *pointer)
{
    struct block *block;

    if (!pointer)
        return;
    block = block_of(pointer, "kfree");
    if (block->magic == BLOCK_LARGE) {
        give_back_large(block);
        return;
    }
    stats.used_bytes -= block->size;
    stats.free_bytes += block->size;
    insert_free((struct free_block *)block);
}

void *kcalloc(size_t count, size_t size)
{
    void *pointer;

    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    pointer = kmalloc(count * size);
    if (pointer)
        memset(pointer, 0, count * size);
    return pointer;
}

void *krealloc(void *pointer, size_t size)
{
    size_t capacity;
    void *moved;

    if (!pointer)
        return kmalloc(size);
    if (size == 0) {
        kfree(pointer);
        return NULL;
    }
    capacity = block_of(pointer, "krealloc")->size - HEADER_SIZE;
    if (size <= capacity)
        return pointer;
    moved = kmalloc(size);
    if (moved) {
        memcpy(moved, pointer, capacity);
        kfree(pointer);
    }
    return moved;
}

struct heap_stats heap_stats(void)
{
    return stats;
}

void heap_print_stats(void)
{
    kprintf("heap: %zu bytes arena, %zu used, %zu free, %zu blocks\n", stats.arena_bytes,
            stats.used_bytes, stats.free_bytes, stats.free_blocks);
}
