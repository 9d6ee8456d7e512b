/*
 * boot.S identity-mapped the first 4 GiB, which is all of RAM on a small machine. QEMU puts
 * RAM beyond about 3 GiB above the 4 GiB line, so with more memory the frame allocator would
 * hand out frames nobody can touch. Extend the identity map, one page directory (1 GiB of
 * 2 MiB pages) at a time, up to the end of RAM.
 */
#include <stdint.h>
#include "frames.h"
#include "kprintf.h"
#include "memory_map.h"
#include "paging.h"
#include "panic.h"
#include "x86.h"

#define PAGE_PRESENT  (1ull << 0)
#define PAGE_WRITABLE (1ull << 1)
#define PAGE_WRITE_THROUGH (1ull << 3)
#define PAGE_NO_CACHE (1ull << 4)
#define PAGE_HUGE     (1ull << 7)
#define ADDRESS_MASK  0x000FFFFFFFFFF000ull
#define HUGE_PAGE     (UINT64_C(2) << 20)
#define GIGABYTE      (UINT64_C(1) << 30)
#define ENTRIES       512
/* boot.S uses a single PML4 entry, and so one PDPT: 512 GiB of identity map. */
#define IDENTITY_LIMIT (ENTRIES * GIGABYTE)
#define BOOT_MAPPED    (4 * GIGABYTE)

static uint64_t *table_at(uint64_t entry)
{
    return (uint64_t *)(entry & ADDRESS_MASK);
}

static uint64_t new_page_directory(uint64_t first_address)
{
    uint64_t frame = frame_alloc();
    uint64_t *directory = (uint64_t *)frame;

    if (!frame)
        panic("out of memory for page tables");
    for (int i = 0; i < ENTRIES; i++)
        directory[i] = (first_address + i * HUGE_PAGE) | PAGE_PRESENT | PAGE_WRITABLE | PAGE_HUGE;
    return frame;
}

void paging_map_all_ram(void)
{
    uint64_t top = memory_map_highest_usable();
    uint64_t *pdpt = table_at(table_at(read_cr3())[0]);

    if (top > IDENTITY_LIMIT) {
        kprintf("paging: RAM above %lu GiB is not mapped\n", IDENTITY_LIMIT / GIGABYTE);
        top = IDENTITY_LIMIT;
    }
    for (uint64_t address = BOOT_MAPPED; address < top; address += GIGABYTE)
        pdpt[address / GIGABYTE] = new_page_directory(address) | PAGE_PRESENT | PAGE_WRITABLE;
    /* Reloading CR3 flushes the TLB and the paging-structure caches. */
    write_cr3(read_cr3());
    if (top > BOOT_MAPPED)
        kprintf("paging: identity map extended to %lu GiB\n", (top + GIGABYTE - 1) / GIGABYTE);
}

/*
 * Device registers must not be cached: a read has to reach the device every time, and a write
 * must not sit in a cache line. With the default PAT, PCD and PWT together select "uncacheable".
 * The identity map uses 2 MiB pages, so the whole 2 MiB around the registers changes; only
 * call this for ranges with no RAM nearby (the local APIC and the I/O APIC qualify).
 */
void paging_map_uncached(uint64_t address, uint64_t size)
{
    uint64_t *pdpt = table_at(table_at(read_cr3())[0]);

    for (uint64_t page = address & ~(HUGE_PAGE - 1); page < address + size; page += HUGE_PAGE) {
        uint64_t *directory = table_at(pdpt[page / GIGABYTE]);
        directory[page / HUGE_PAGE % ENTRIES] |= PAGE_NO_CACHE | PAGE_WRITE_THROUGH;
        invlpg(page);
    }
}
