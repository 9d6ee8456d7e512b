#pragma once

#include <stdbool.h>

bool serial_init(void);
void serial_putc(char c);
int serial_getc(void);
bool serial_has_input(void);
void serial_enable_receive_interrupt(void);
