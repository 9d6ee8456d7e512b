/*
 * Which physical memory is RAM the kernel may use? Only the firmware knows: the BIOS's E820
 * map, which GRUB passes on in a Multiboot2 tag. Everything else in the physical address space
 * is a hole, a ROM, a device's registers or memory the firmware keeps for itself.
 */
#include <stddef.h>
#include <stdint.h>
#include "kprintf.h"
#include "memory_map.h"
#include "multiboot2.h"
#include "panic.h"

#define MAX_USABLE_REGIONS 64
#define PAGE_SIZE 4096

static struct memory_region usable[MAX_USABLE_REGIONS];
static size_t usable_count;

static const char *type_name(uint32_t type)
{
    switch (type) {
    case MULTIBOOT2_MEMORY_AVAILABLE:        return "usable";
    case MULTIBOOT2_MEMORY_RESERVED:         return "reserved";
    case MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE: return "ACPI reclaimable";
    case MULTIBOOT2_MEMORY_NVS:              return "ACPI NVS";
    case MULTIBOOT2_MEMORY_BADRAM:           return "bad RAM";
    default:                                 return "unknown";
    }
}

/* The allocator works in whole pages, so trim each region inward to page boundaries. */
static void add_usable(uint64_t base, uint64_t length)
{
    uint64_t start = (base + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
    uint64_t end = (base + length) & ~(uint64_t)(PAGE_SIZE - 1);

    if (end <= start)
        return;
    if (usable_count == MAX_USABLE_REGIONS) {
        kprintf("mmap: more than %d usable regions, ignoring 0x%lx-0x%lx\n",
                MAX_USABLE_REGIONS, start, end);
        return;
    }
    usable[usable_count++] = (struct memory_region){ start, end };
}

void memory_map_init(void)
{
    const struct multiboot2_tag_memory_map *map =
        (const void *)multiboot2_find_tag(MULTIBOOT2_TAG_MEMORY_MAP);

    if (!map)
        panic("the boot loader passed no memory map");
    for (uint32_t offset = sizeof(*map); offset < map->tag.size; offset += map->entry_size) {
        const struct multiboot2_memory_entry *entry =
            (const void *)((const uint8_t *)map + offset);
        kprintf("mmap: 0x%016lx-0x%016lx %s\n", entry->base, entry->base + entry->length,
                type_name(entry->type));
        if (entry->type == MULTIBOOT2_MEMORY_AVAILABLE)
            add_usable(entry->base, entry->length);
    }
    kprintf("memory: usable %lu KiB in %zu regions\n", memory_map_usable_bytes() / 1024,
            usable_count);
}

size_t memory_map_usable_count(void)
{
    return usable_count;
}

const struct memory_region *memory_map_usable(size_t index)
{
    return &usable[index];
}

uint64_t memory_map_usable_bytes(void)
{
    uint64_t total = 0;

    for (size_t i = 0; i < usable_count; i++)
        total += usable[i].end - usable[i].base;
    return total;
}

uint64_t memory_map_highest_usable(void)
{
    uint64_t highest = 0;

    for (size_t i = 0; i < usable_count; i++)
        if (usable[i].end > highest)
            highest = usable[i].end;
    return highest;
}
