/*
 * IPv4 (RFC 791) in: check each packet's header before believing any of it, then hand the
 * payload to its protocol. Fragments are counted and dropped: nothing this kernel talks to
 * needs them, and reassembly is a classic way to be made to hold memory for a peer that never
 * finishes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "icmp.h"
#include "ipv4.h"
#include "net.h"
#include "tcp.h"

#define FLAG_MORE_FRAGMENTS 0x2000
#define FRAGMENT_OFFSET_MASK 0x1FFF

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
