/*
 * The physical page-frame allocator: one bit per 4 KiB frame of RAM, set while the frame is in
 * use. A bitmap is small (32 KiB describes 1 GiB), can find runs of consecutive frames, and
 * makes double frees easy to catch.
 *
 * Every frame starts out used; frames_init frees the usable regions of the memory map and then
 * takes back what is already occupied: low memory, the kernel image, the Multiboot2
 * information, the modules GRUB loaded (the model and its tokenizer) and the bitmap itself.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "frames.h"
#include "kprintf.h"
#include "memory_map.h"
#include "multiboot2.h"
#include "panic.h"
#include "string.h"

#define BITS_PER_WORD 64
#define ALL_USED (~(uint64_t)0)
/* Below 1 MiB live the BIOS data area and ROMs; step 09 also needs a page there for SMP. */
#define LOW_MEMORY_END 0x100000

extern char kernel_start[], kernel_end[];

static uint64_t *bitmap;
static size_t frame_count;
static size_t free_count;
static size_t search_hint;

static bool is_used(size_t frame)
{
    return bitmap[frame / BITS_PER_WORD] & (1ull << (frame % BITS_PER_WORD));
}

static void mark_used(size_t frame)
{
    bitmap[frame / BITS_PER_WORD] |= 1ull << (frame % BITS_PER_WORD);
    free_count--;
}

static void mark_free(size_t frame)
{
    bitmap[frame / BITS_PER_WORD] &= ~(1ull << (frame % BITS_PER_WORD));
    free_count++;
}

static uint64_t align_up(uint64_t value, uint64_t alignment)
{
    return (value + alignment - 1) & ~(alignment - 1);
}

static bool overlaps(uint64_t a_start, uint64_t a_end, uint64_t b_start, uint64_t b_end)
{
    return a_start < b_end && b_start < a_end;
}

static bool overlaps_module(uint64_t start, uint64_t end)
{
    struct multiboot2_module module;

    for (int i = 0; multiboot2_module(i, &module); i++)
        if (overlaps(start, end, (uint64_t)module.data, (uint64_t)module.data + module.size))
            return true;
    return false;
}

/* Memory the bitmap must not be placed over: it is in use before the allocator exists. */
static bool overlaps_occupied(uint64_t start, uint64_t end)
{
    uint64_t info = multiboot2_info_address();

    return overlaps(start, end, 0, LOW_MEMORY_END) ||
           overlaps(start, end, (uint64_t)kernel_start, (uint64_t)kernel_end) ||
           overlaps(start, end, info, info + multiboot2_info_size()) ||
           overlaps_module(start, end);
}

/* Find room for the bitmap: the first page-aligned gap in a usable region below 4 GiB. */
static uint64_t place_bitmap(uint64_t bytes)
{
    for (size_t i = 0; i < memory_map_usable_count(); i++) {
        const struct memory_region *region = memory_map_usable(i);
        for (uint64_t start = region->base; start + bytes <= region->end &&
             start + bytes <= 0x100000000ull; start += FRAME_SIZE)
            if (!overlaps_occupied(start, start + bytes))
                return start;
    }
    panic("no room for the frame bitmap (%lu bytes)", bytes);
}

static void reserve_range(uint64_t start, uint64_t end)
{
    for (uint64_t frame = start / FRAME_SIZE; frame < align_up(end, FRAME_SIZE) / FRAME_SIZE &&
         frame < frame_count; frame++)
        if (!is_used(frame))
            mark_used(frame);
}

void frames_init(void)
{
    struct multiboot2_module module;
    uint64_t bitmap_bytes;

    frame_count = memory_map_highest_usable() / FRAME_SIZE;
    bitmap_bytes = align_up(align_up(frame_count, BITS_PER_WORD) / 8, FRAME_SIZE);
    bitmap = (uint64_t *)place_bitmap(bitmap_bytes);
    memset(bitmap, 0xFF, bitmap_bytes);

    for (size_t i = 0; i < memory_map_usable_count(); i++) {
        const struct memory_region *region = memory_map_usable(i);
        for (uint64_t address = region->base; address < region->end; address += FRAME_SIZE)
            if (is_used(address / FRAME_SIZE))
                mark_free(address / FRAME_SIZE);
    }
    reserve_range(0, LOW_MEMORY_END);
    reserve_range((uint64_t)kernel_start, (uint64_t)kernel_end);
    reserve_range(multiboot2_info_address(),
                  multiboot2_info_address() + multiboot2_info_size());
    for (int i = 0; multiboot2_module(i, &module); i++)
        reserve_range((uint64_t)module.data, (uint64_t)module.data + module.size);
    reserve_range((uint64_t)bitmap, (uint64_t)bitmap + bitmap_bytes);
    kprintf("frames: %zu free frames (%zu KiB), bitmap of %lu KiB at 0x%lx\n", free_count,
            free_count * (FRAME_SIZE / 1024), bitmap_bytes / 1024, (uint64_t)bitmap);
}

/*
 * Search from the hint, so frames come out lowest first and a search does not rescan the full
 * words at the bottom every time. Lowest first also matters in this step: the identity map
 * covers 4 GiB until paging_map_all_ram has mapped the rest, and it allocates from low memory.
 */
static size_t find_free_run(size_t start, size_t count)
{
    size_t run = 0;

    for (size_t frame = start; frame < frame_count; frame++) {
        if (run == 0 && frame % BITS_PER_WORD == 0 &&
            bitmap[frame / BITS_PER_WORD] == ALL_USED) {
            frame += BITS_PER_WORD - 1;
            continue;
        }
        run = is_used(frame) ? 0 : run + 1;
        if (run == count)
            return frame + 1 - count;
    }
    return frame_count;
}

uint64_t frame_alloc_contiguous(size_t count)
{
    size_t first = find_free_run(search_hint, count);

    if (first == frame_count && search_hint != 0)
        first = find_free_run(0, count);
    if (first == frame_count)
        return 0;
    for (size_t frame = first; frame < first + count; frame++)
        mark_used(frame);
    if (count == 1)
        search_hint = first + 1;
    return (uint64_t)first * FRAME_SIZE;
}

uint64_t frame_alloc(void)
{
    return frame_alloc_contiguous(1);
}

void frame_free_contiguous(uint64_t address, size_t count)
{
    size_t first = address / FRAME_SIZE;

    if (address % FRAME_SIZE || first + count > frame_count)
        panic("frame_free: 0x%lx is not a frame of RAM", address);
    for (size_t frame = first; frame < first + count; frame++) {
        if (!is_used(frame))
            panic("frame_free: frame 0x%lx is already free", (uint64_t)frame * FRAME_SIZE);
        mark_free(frame);
    }
    if (first < search_hint)
        search_hint = first;
}

void frame_free(uint64_t address)
{
    frame_free_contiguous(address, 1);
}

size_t frames_free_count(void)
{
    return free_count;
}
