/*
 * The network interface: the NIC a driver attached, the address it answers at, Ethernet
 * frames out, and the helpers every protocol shares (checksums, addresses as text). Frames
 * coming in are net_input.c's.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmdline.h"
#include "kprintf.h"
#include "net.h"
#include "string.h"

struct net_counters net_counters;
const uint8_t broadcast_mac[MAC_SIZE] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };

static const struct nic *nic;
/* QEMU's user networking (slirp) answers at these addresses. */
static struct net_config config = { 0x0A00020F, 0xFFFFFF00, 0x0A000202 };

void net_attach(const struct nic *attached)
{
    nic = attached;
}

bool net_ready(void)
{
    return nic != NULL;
}

const uint8_t *net_mac(void)
{
    return nic->mac;
}

const struct net_config *net_config(void)
{
    return &config;
}

/* `ip=A.B.C.D/len` and `gw=A.B.C.D` on the command line override the defaults. */
void net_configure(void)
{
    char value[32], text[3][16];
    char *slash;
    uint32_t address;

    if (cmdline_get("ip", value, sizeof(value))) {
        slash = value;
        while (*slash && *slash != '/')
            slash++;
        if (*slash == '/') {
            int length = 0;
            for (const char *p = slash + 1; *p >= '0' && *p <= '9'; p++)
                length = length * 10 + (*p - '0');
            if (length >= 1 && length <= 32)
                config.netmask = length == 32 ? 0xFFFFFFFF : ~(0xFFFFFFFFu >> length);
            *slash = '\0';
        }
        if (parse_ipv4(value, &address))
            config.address = address;
    }
    if (cmdline_get("gw", value, sizeof(value)) && parse_ipv4(value, &address))
        config.gateway = address;
    format_ipv4(text[0], sizeof(text[0]), config.address);
    format_ipv4(text[1], sizeof(text[1]), config.netmask);
    format_ipv4(text[2], sizeof(text[2]), config.gateway);
    kprintf("net: %s netmask %s via %s\n", text[0], text[1], text[2]);
}

bool net_frame_waiting(void)
{
    return nic && nic->frame_waiting();
}

size_t net_receive_frame(void *buffer, size_t size)
{
    return nic ? nic->receive(buffer, size) : 0;
}

bool net_send_ethernet(const uint8_t *destination, uint16_t ethertype, const void *payload,
                       size_t length)
{
    static uint8_t frame[ETHERNET_MAX_FRAME];
    struct ethernet_header *header = (void *)frame;

    if (length > ETHERNET_MTU)
        return false;
    memcpy(header->destination, destination, MAC_SIZE);
    memcpy(header->source, nic->mac, MAC_SIZE);
    header->ethertype = htons(ethertype);
    memcpy(frame + ETHERNET_HEADER_SIZE, payload, length);
    if (!nic->transmit(frame, ETHERNET_HEADER_SIZE + length)) {
        net_counters.tx_failed++;
        return false;
    }
    net_counters.tx_frames++;
    return true;
}

void net_print_counters(void)
{
    const struct net_counters *c = &net_counters;

    kprintf("net: rx_frames=%lu tx_frames=%lu tx_failed=%lu short_frames=%lu not_for_us=%lu "
            "unknown_ethertype=%lu bad_arp=%lu bad_ip_header=%lu bad_ip_checksum=%lu "
            "bad_ip_length=%lu ip_fragments=%lu not_our_address=%lu unknown_protocol=%lu "
            "bad_icmp=%lu arp_requests_answered=%lu echo_requests_answered=%lu "
            "arp_queue_dropped=%lu\n",
            c->rx_frames, c->tx_frames, c->tx_failed, c->short_frames, c->not_for_us,
            c->unknown_ethertype, c->bad_arp, c->bad_ip_header, c->bad_ip_checksum,
            c->bad_ip_length, c->ip_fragments, c->not_our_address, c->unknown_protocol,
            c->bad_icmp, c->arp_requests_answered, c->echo_requests_answered,
            c->arp_queue_dropped);
}

/*
 * The Internet checksum: the one's-complement sum of 16-bit words. Adding the words as they
 * lie in memory gives the byte-swapped sum on a little-endian CPU, and byte-swapping commutes
 * with one's-complement addition, so the result is already in network order.
 */
uint32_t checksum_add(uint32_t sum, const void *data, size_t length)
{
    const uint8_t *bytes = data;

    for (; length > 1; length -= 2, bytes += 2)
        sum += (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8;
    if (length)
        sum += bytes[0];
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return sum;
}

uint16_t checksum_finish(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

void format_ipv4(char *buffer, size_t size, uint32_t address)
{
    snprintf(buffer, size, "%u.%u.%u.%u", address >> 24, (address >> 16) & 0xFF,
             (address >> 8) & 0xFF, address & 0xFF);
}

void format_mac(char *buffer, size_t size, const uint8_t *mac)
{
    snprintf(buffer, size, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);
}

bool parse_ipv4(const char *text, uint32_t *address)
{
    uint32_t result = 0;

    for (int part = 0; part < 4; part++) {
        uint32_t value = 0;
        int digits = 0;
        for (; *text >= '0' && *text <= '9' && digits < 4; text++, digits++)
            value = value * 10 + (uint32_t)(*text - '0');
        if (digits == 0 || value > 255 || (part < 3 && *text++ != '.'))
            return false;
        result = result << 8 | value;
    }
    if (*text != '\0')
        return false;
    *address = result;
    return true;
}
