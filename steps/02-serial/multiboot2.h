/* The parts of the Multiboot2 boot information the kernel reads. */
#pragma once

#include <stdint.h>

#define MULTIBOOT2_BOOTLOADER_MAGIC 0x36D76289

enum multiboot2_tag_type {
    MULTIBOOT2_TAG_END = 0,
    MULTIBOOT2_TAG_CMDLINE = 1,
};

struct multiboot2_tag {
    uint32_t type;
    uint32_t size;
};

struct multiboot2_tag_string {
    struct multiboot2_tag tag;
    char string[];
};

void multiboot2_init(uint32_t info_address);
const struct multiboot2_tag *multiboot2_find_tag(uint32_t type);
const char *multiboot2_cmdline(void);
