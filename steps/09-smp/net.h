/*
 * The network interface: one NIC, one IPv4 address. Addresses are kept in host byte order
 * inside the kernel and converted at the wire.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETHERNET_HEADER_SIZE 14
#define ETHERNET_MTU 1500
#define ETHERNET_MAX_FRAME (ETHERNET_HEADER_SIZE + ETHERNET_MTU)
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
#define MAC_SIZE 6

/* What a NIC driver gives the network stack. */
struct nic {
    const char *name;
    uint8_t mac[MAC_SIZE];
    bool (*transmit)(const void *frame, size_t length);
    /* Copy the next received frame into buffer; 0 when there is none. */
    size_t (*receive)(void *buffer, size_t size);
    /* Is a received frame waiting? The main loop asks before it halts. */
    bool (*frame_waiting)(void);
};

struct ethernet_header {
    uint8_t destination[MAC_SIZE];
    uint8_t source[MAC_SIZE];
    uint16_t ethertype;
} __attribute__((packed));

struct net_config {
    uint32_t address;
    uint32_t netmask;
    uint32_t gateway;
};

/* Every frame that is not used is counted under the reason it was dropped. */
struct net_counters {
    uint64_t rx_frames, tx_frames, tx_failed;
    uint64_t short_frames, not_for_us, unknown_ethertype;
    uint64_t bad_arp, bad_ip_header, bad_ip_checksum, bad_ip_length, ip_fragments;
    uint64_t not_our_address, unknown_protocol, bad_icmp;
    uint64_t arp_requests_answered, echo_requests_answered, arp_queue_dropped;
};

extern struct net_counters net_counters;
extern const uint8_t broadcast_mac[MAC_SIZE];

void net_attach(const struct nic *nic);
bool net_ready(void);
void net_configure(void);
const struct net_config *net_config(void);
const uint8_t *net_mac(void);
/* net_input.c: the frames the NIC has received go to their protocols; then ARP's timers. */
void net_poll(void);
/* Poll until done(context) holds (true), or for timeout_ms (false): a wait for an answer. */
bool net_poll_until(bool (*done)(const void *context), const void *context, uint64_t timeout_ms);
bool net_frame_waiting(void);
/* The next frame the NIC has received, copied into buffer; 0 when there is none. */
size_t net_receive_frame(void *buffer, size_t size);
bool net_send_ethernet(const uint8_t *destination, uint16_t ethertype, const void *payload,
                       size_t length);
void net_print_counters(void);
void format_ipv4(char *buffer, size_t size, uint32_t address);
void format_mac(char *buffer, size_t size, const uint8_t *mac);
bool parse_ipv4(const char *text, uint32_t *address);

static inline uint16_t htons(uint16_t value)
{
    return __builtin_bswap16(value);
}

static inline uint16_t ntohs(uint16_t value)
{
    return __builtin_bswap16(value);
}

static inline uint32_t htonl(uint32_t value)
{
    return __builtin_bswap32(value);
}

static inline uint32_t ntohl(uint32_t value)
{
    return __builtin_bswap32(value);
}

uint32_t checksum_add(uint32_t sum, const void *data, size_t length);
uint16_t checksum_finish(uint32_t sum);
