/*
 * ARP (RFC 826): which Ethernet address has this IPv4 address? Answers are cached for a while,
 * and one IPv4 packet per address waits in the cache while its question is out, so the first
 * packet to a new neighbour is not lost. An answer that grows old is asked for again while
 * it is still used (it is forgotten only if nobody answers), and the console hears of a
 * neighbour only when it is new or its address changed, not at every refresh.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arp.h"
#include "clock.h"
#include "kprintf.h"
#include "net.h"
#include "string.h"

#define CACHE_SIZE 16
#define ENTRY_LIFETIME_MS 60000
#define RETRY_INTERVAL_MS 1000
#define MAX_REQUESTS 3
#define HARDWARE_ETHERNET 1
#define OPERATION_REQUEST 1
#define OPERATION_REPLY 2

struct arp_packet {
    uint16_t hardware_type;
    uint16_t protocol_type;
    uint8_t hardware_size;
    uint8_t protocol_size;
    uint16_t operation;
    uint8_t sender_mac[MAC_SIZE];
    uint32_t sender_ip;
    uint8_t target_mac[MAC_SIZE];
    uint32_t target_ip;
} __attribute__((packed));

/* REFRESHING: resolved and still used, but old enough that the question is out again. */
enum entry_state { ENTRY_FREE, ENTRY_RESOLVING, ENTRY_RESOLVED, ENTRY_REFRESHING };

struct arp_entry {
    enum entry_state state;
    uint32_t ip;
    uint8_t mac[MAC_SIZE];
    uint64_t expires_ms;       /* RESOLVED: when to ask again; otherwise: when to ask again or give up */
    int requests_sent;
    size_t queued_length;      /* 0 when no packet waits */
    uint8_t queued[ETHERNET_MTU];
};

static struct arp_entry cache[CACHE_SIZE];

static struct arp_entry *find(uint32_t ip)
{
    for (int i = 0; i < CACHE_SIZE; i++)
        if (cache[i].state != ENTRY_FREE && cache[i].ip == ip)
            return &cache[i];
    return NULL;
}

/* A free entry, or else the one closest to expiry: the cache never refuses a new neighbour. */
static struct arp_entry *allocate(uint32_t ip)
{
    struct arp_entry *victim = &cache[0];

    for (int i = 0; i < CACHE_SIZE; i++) {
        if (cache[i].state == ENTRY_FREE) {
            victim = &cache[i];
            break;
        }
        if (cache[i].expires_ms < victim->expires_ms)
            victim = &cache[i];
    }
    if (victim->queued_length)
        net_counters.arp_queue_dropped++;
    *victim = (struct arp_entry){ .state = ENTRY_RESOLVING, .ip = ip };
    return victim;
}

static void send_arp(uint16_t operation, const uint8_t *target_mac, uint32_t target_ip)
{
    struct arp_packet packet = {
        .hardware_type = htons(HARDWARE_ETHERNET),
        .protocol_type = htons(ETHERTYPE_IPV4),
        .hardware_size = MAC_SIZE,
        .protocol_size = 4,
        .operation = htons(operation),
        .sender_ip = htonl(net_config()->address),
        .target_ip = htonl(target_ip),
    };

    memcpy(packet.sender_mac, net_mac(), MAC_SIZE);
    memcpy(packet.target_mac, target_mac, MAC_SIZE);
    net_send_ethernet(operation == OPERATION_REQUEST ? broadcast_mac : target_mac,
                      ETHERTYPE_ARP, &packet, sizeof(packet));
}

static void send_request(struct arp_entry *entry)
{
    static const uint8_t unknown_mac[MAC_SIZE];

    send_arp(OPERATION_REQUEST, unknown_mac, entry->ip);
    entry->requests_sent++;
    entry->expires_ms = clock_ms() + RETRY_INTERVAL_MS;
}

static bool usable(const struct arp_entry *entry)
{
    return entry->state == ENTRY_RESOLVED || entry->state == ENTRY_REFRESHING;
}

static void resolved(struct arp_entry *entry, const uint8_t *mac)
{
    char ip_text[16], mac_text[18];

    if (!usable(entry) || memcmp(entry->mac, mac, MAC_SIZE) != 0) {
        format_ipv4(ip_text, sizeof(ip_text), entry->ip);
        format_mac(mac_text, sizeof(mac_text), mac);
        kprintf("arp: %s is at %s\n", ip_text, mac_text);
    }
    memcpy(entry->mac, mac, MAC_SIZE);
    entry->state = ENTRY_RESOLVED;
    entry->requests_sent = 0;
    entry->expires_ms = clock_ms() + ENTRY_LIFETIME_MS;
    if (entry->queued_length) {
        net_send_ethernet(entry->mac, ETHERTYPE_IPV4, entry->queued, entry->queued_length);
        entry->queued_length = 0;
    }
}

static bool well_formed(const struct arp_packet *packet, size_t length)
{
    return length >= sizeof(*packet) && ntohs(packet->hardware_type) == HARDWARE_ETHERNET &&
           ntohs(packet->protocol_type) == ETHERTYPE_IPV4 && packet->hardware_size == MAC_SIZE &&
           packet->protocol_size == 4 &&
           (ntohs(packet->operation) == OPERATION_REQUEST ||
            ntohs(packet->operation) == OPERATION_REPLY);
}

/*
 * RFC 826's order: refresh what we know about the sender; if the packet is for us, learn the
 * sender too (it is about to talk to us), and answer a request.
 */
void arp_receive(const uint8_t *data, size_t length)
{
    struct arp_packet packet;
    struct arp_entry *entry;
    uint32_t sender_ip;

    memcpy(&packet, data, length < sizeof(packet) ? length : sizeof(packet));
    if (!well_formed(&packet, length)) {
        net_counters.bad_arp++;
        return;
    }
    sender_ip = ntohl(packet.sender_ip);
    entry = find(sender_ip);
    if (entry)
        resolved(entry, packet.sender_mac);
    if (ntohl(packet.target_ip) != net_config()->address)
        return;
    if (!entry && sender_ip != 0)
        resolved(allocate(sender_ip), packet.sender_mac);
    if (ntohs(packet.operation) == OPERATION_REQUEST) {
        send_arp(OPERATION_REPLY, packet.sender_mac, sender_ip);
        net_counters.arp_requests_answered++;
    }
}

/* Send an IPv4 packet to a neighbour, asking for its Ethernet address first if need be. */
bool arp_send_ipv4(uint32_t next_hop, const void *packet, size_t length)
{
    struct arp_entry *entry = find(next_hop);

    if (length > ETHERNET_MTU)
        return false;
    if (entry && usable(entry))
        return net_send_ethernet(entry->mac, ETHERTYPE_IPV4, packet, length);
    if (!entry) {
        entry = allocate(next_hop);
        send_request(entry);
    }
    /* Keep the newest packet: it is the one the sender is most likely still waiting on. */
    if (entry->queued_length)
        net_counters.arp_queue_dropped++;
    memcpy(entry->queued, packet, length);
    entry->queued_length = length;
    return true;
}

/* Ask again for unanswered questions and for old answers; give up after a few. */
void arp_poll(void)
{
    uint64_t now = clock_ms();

    for (int i = 0; i < CACHE_SIZE; i++) {
        struct arp_entry *entry = &cache[i];
        if (entry->state == ENTRY_FREE || now < entry->expires_ms)
            continue;
        if (entry->state == ENTRY_RESOLVED)
            entry->state = ENTRY_REFRESHING;
        if (entry->requests_sent < MAX_REQUESTS) {
            send_request(entry);
            continue;
        }
        if (entry->queued_length)
            net_counters.arp_queue_dropped++;
        entry->state = ENTRY_FREE;
        entry->queued_length = 0;
    }
}

void arp_print_cache(void)
{
    char ip_text[16], mac_text[18];

    for (int i = 0; i < CACHE_SIZE; i++) {
        if (cache[i].state == ENTRY_FREE)
            continue;
        format_ipv4(ip_text, sizeof(ip_text), cache[i].ip);
        format_mac(mac_text, sizeof(mac_text), cache[i].mac);
        kprintf("arp: %s %s %s\n", ip_text, usable(&cache[i]) ? mac_text : "(resolving)",
                usable(&cache[i]) ? "resolved" : "pending");
    }
}
