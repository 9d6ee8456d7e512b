/* The parts of the Multiboot2 boot information the kernel reads. */
#pragma once

#include <stdint.h>

#define MULTIBOOT2_BOOTLOADER_MAGIC 0x36D76289

enum multiboot2_tag_type {
    MULTIBOOT2_TAG_END = 0,
    MULTIBOOT2_TAG_CMDLINE = 1,
    MULTIBOOT2_TAG_MEMORY_MAP = 6,
};

struct multiboot2_tag {
    uint32_t type;
    uint32_t size;
};

struct multiboot2_tag_string {
    struct multiboot2_tag tag;
    char string[];
};

/* The BIOS's (E820) memory map, as GRUB passes it on. */
enum multiboot2_memory_type {
    MULTIBOOT2_MEMORY_AVAILABLE = 1,
    MULTIBOOT2_MEMORY_RESERVED = 2,
    MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE = 3,
    MULTIBOOT2_MEMORY_NVS = 4,
    MULTIBOOT2_MEMORY_BADRAM = 5,
};

struct multiboot2_memory_entry {
    uint64_t base;
    uint64_t length;
    uint32_t type;
    uint32_t reserved;
};

struct multiboot2_tag_memory_map {
    struct multiboot2_tag tag;
    uint32_t entry_size;
    uint32_t entry_version;
    uint8_t entries[];
};

void multiboot2_init(uint32_t info_address);
uint64_t multiboot2_info_address(void);
uint64_t multiboot2_info_size(void);
const struct multiboot2_tag *multiboot2_find_tag(uint32_t type);
const char *multiboot2_cmdline(void);
