#pragma once

#include <stdint.h>

void paging_map_all_ram(void);
void paging_map_uncached(uint64_t address, uint64_t size);
