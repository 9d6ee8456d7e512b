/* The parts of the Multiboot2 boot information the kernel reads. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define MULTIBOOT2_BOOTLOADER_MAGIC 0x36D76289

enum multiboot2_tag_type {
    MULTIBOOT2_TAG_END = 0,
    MULTIBOOT2_TAG_CMDLINE = 1,
    MULTIBOOT2_TAG_MODULE = 3,
    MULTIBOOT2_TAG_MEMORY_MAP = 6,
    /* Copies of the ACPI RSDP GRUB found: version 1 (RSDT only) and version 2 (XSDT too). */
    MULTIBOOT2_TAG_ACPI_OLD = 14,
    MULTIBOOT2_TAG_ACPI_NEW = 15,
};

struct multiboot2_tag {
    uint32_t type;
    uint32_t size;
};

struct multiboot2_tag_string {
    struct multiboot2_tag tag;
    char string[];
};

/* A file GRUB loaded next to the kernel (`module2` in grub.cfg): where it is, and its string. */
struct multiboot2_tag_module {
    struct multiboot2_tag tag;
    uint32_t start;
    uint32_t end;
    char string[];
};

struct multiboot2_module {
    const void *data;
    uint64_t size;
    const char *name;
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
bool multiboot2_module(int index, struct multiboot2_module *module);
bool multiboot2_find_module(const char *name, struct multiboot2_module *module);
