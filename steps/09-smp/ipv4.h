#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IP_PROTOCOL_ICMP 1
#define IP_PROTOCOL_TCP  6
#define IPV4_HEADER_SIZE 20
#define IPV4_MAX_PAYLOAD 1480

void ipv4_receive(const uint8_t *packet, size_t length);
bool ipv4_send(uint32_t destination, uint8_t protocol, const void *payload, size_t length);
uint32_t ipv4_address(void);
