#pragma once

void paging_map_all_ram(void);
