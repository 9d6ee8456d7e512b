/* The console: the VGA screen and COM1 together. */
#pragma once

void console_init(void);
void console_putc(char c);
