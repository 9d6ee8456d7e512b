/*
 * IPv4 (RFC 791) out: a header in front of each payload, sent to the next hop through ARP.
 * Packets coming in are ipv4_input.c's.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arp.h"
#include "ipv4.h"
#include "net.h"
#include "string.h"

#define DEFAULT_TTL 64
#define FLAG_DONT_FRAGMENT 0x4000

uint32_t ipv4_address(void)
{
    return net_config()->address;
}

static uint32_t next_hop(uint32_t destination)
{
    const struct net_config *config = net_config();

    if ((destination & config->netmask) == (config->address & config->netmask))
        return destination;
    return config->gateway;
}

bool ipv4_send(uint32_t destination, uint8_t protocol, const void *payload, size_t length)
{
    static uint16_t identification;
    static uint8_t packet[IPV4_HEADER_SIZE + IPV4_MAX_PAYLOAD];
    struct ipv4_header *header = (void *)packet;

    if (length > IPV4_MAX_PAYLOAD)
        return false;
    *header = (struct ipv4_header){
        .version_and_length = IP_VERSION_4 << 4 | IPV4_HEADER_SIZE / 4,
        .total_length = htons((uint16_t)(IPV4_HEADER_SIZE + length)),
        .identification = htons(identification++),
        .flags_and_offset = htons(FLAG_DONT_FRAGMENT),
        .ttl = DEFAULT_TTL,
        .protocol = protocol,
        .source = htonl(ipv4_address()),
        .destination = htonl(destination),
    };
    header->checksum = checksum_finish(checksum_add(0, header, IPV4_HEADER_SIZE));
    memcpy(packet + IPV4_HEADER_SIZE, payload, length);
    return arp_send_ipv4(next_hop(destination), packet, IPV4_HEADER_SIZE + length);
}
