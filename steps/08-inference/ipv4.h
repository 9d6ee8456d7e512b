#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IP_PROTOCOL_ICMP 1
#define IP_PROTOCOL_TCP  6
#define IPV4_HEADER_SIZE 20
#define IPV4_MAX_PAYLOAD 1480
#define IP_VERSION_4 4

struct ipv4_header {
    uint8_t version_and_length;  /* version in the high nibble, header length in 32-bit words */
    uint8_t type_of_service;
    uint16_t total_length;
    uint16_t identification;
    uint16_t flags_and_offset;
    uint8_t ttl;
    uint8_t protocol;
    uint16_t checksum;
    uint32_t source;
    uint32_t destination;
} __attribute__((packed));

/* ipv4_input.c: a packet from the NIC, to its protocol. */
void ipv4_receive(const uint8_t *packet, size_t length);
bool ipv4_send(uint32_t destination, uint8_t protocol, const void *payload, size_t length);
uint32_t ipv4_address(void);
