/*
 * IPv4 (RFC 791): check each packet's header before believing any of it, then hand the payload
 * to its protocol. Fragments are counted and dropped: nothing this kernel talks to needs them,
 * and reassembly is a classic way to be made to hold memory for a peer that never finishes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arp.h"
#include "icmp.h"
#include "ipv4.h"
#include "net.h"
#include "string.h"
#include "tcp.h"

#define IP_VERSION_4 4
#define DEFAULT_TTL 64
#define FLAG_DONT_FRAGMENT 0x4000
#define FLAG_MORE_FRAGMENTS 0x2000
#define FRAGMENT_OFFSET_MASK 0x1FFF

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

uint32_t ipv4_address(void)
{
    return net_config()->address;
}

static bool for_us(uint32_t destination)
{
    const struct net_config *config = net_config();

    return destination == config->address || destination == 0xFFFFFFFF ||
           destination == (config->address | ~config->netmask);
}

/* Returns the header length, or 0 after counting why the packet is unusable. */
static size_t check_header(const struct ipv4_header *header, size_t length)
{
    size_t header_length = (size_t)(header->version_and_length & 0x0F) * 4;

    if (length < IPV4_HEADER_SIZE || header->version_and_length >> 4 != IP_VERSION_4 ||
        header_length < IPV4_HEADER_SIZE || header_length > length) {
        net_counters.bad_ip_header++;
        return 0;
    }
    if (checksum_finish(checksum_add(0, header, header_length)) != 0) {
        net_counters.bad_ip_checksum++;
        return 0;
    }
    if (ntohs(header->total_length) < header_length || ntohs(header->total_length) > length) {
        net_counters.bad_ip_length++;
        return 0;
    }
    return header_length;
}

static void dispatch(uint8_t protocol, uint32_t source, uint32_t destination,
                     const uint8_t *payload, size_t length)
{
    switch (protocol) {
    case IP_PROTOCOL_ICMP:
        icmp_receive(source, payload, length);
        break;
    case IP_PROTOCOL_TCP:
        tcp_receive(source, destination, payload, length);
        break;
    default:
        net_counters.unknown_protocol++;
    }
}

void ipv4_receive(const uint8_t *packet, size_t length)
{
    const struct ipv4_header *header = (const void *)packet;
    size_t header_length = check_header(header, length);

    if (!header_length)
        return;
    if (ntohs(header->flags_and_offset) & (FLAG_MORE_FRAGMENTS | FRAGMENT_OFFSET_MASK)) {
        net_counters.ip_fragments++;
        return;
    }
    if (!for_us(ntohl(header->destination))) {
        net_counters.not_our_address++;
        return;
    }
    /* total_length, not the frame's length: Ethernet pads short frames to 60 bytes. */
    dispatch(header->protocol, ntohl(header->source), ntohl(header->destination),
             packet + header_length, ntohs(header->total_length) - header_length);
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
