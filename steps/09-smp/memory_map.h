#pragma once

#include <stddef.h>
#include <stdint.h>

/* A range of physical RAM the firmware says is free to use. */
struct memory_region {
    uint64_t base;
    uint64_t end;
};

void memory_map_init(void);
size_t memory_map_usable_count(void);
const struct memory_region *memory_map_usable(size_t index);
uint64_t memory_map_usable_bytes(void);
uint64_t memory_map_highest_usable(void);
