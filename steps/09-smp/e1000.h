#pragma once

void e1000_register(void);
void e1000_print_counters(void);
