#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void icmp_receive(uint32_t source, const uint8_t *message, size_t length);
void icmp_ping(uint32_t destination, uint16_t sequence);
bool icmp_replied(const void *sequence);
