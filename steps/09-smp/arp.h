#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void arp_receive(const uint8_t *packet, size_t length);
bool arp_send_ipv4(uint32_t next_hop, const void *packet, size_t length);
void arp_poll(void);
void arp_print_cache(void);
