/* TCP services the kernel offers: echo (port 7, RFC 862) and discard (port 9, RFC 863). */
#pragma once

void services_init(void);
void services_poll(void);
