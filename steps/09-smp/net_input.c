/*
 * Frames coming in: net_poll takes each frame the NIC has received, checks it, and hands it
 * to ARP or IPv4 by its EtherType. This file calls up into the protocols; they call down into
 * net.c to send, so the calls between files all run one way.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arp.h"
#include "clock.h"
#include "interrupts.h"
#include "ipv4.h"
#include "net.h"
#include "string.h"

/* Frames per poll: a flood must not keep the main loop from its timers and other work. */
#define POLL_BUDGET 64

static bool addressed_to_us(const struct ethernet_header *header)
{
    return memcmp(header->destination, net_mac(), MAC_SIZE) == 0 ||
           memcmp(header->destination, broadcast_mac, MAC_SIZE) == 0;
}

static void receive_frame(const uint8_t *frame, size_t length)
{
    const struct ethernet_header *header = (const void *)frame;

    net_counters.rx_frames++;
    if (length < ETHERNET_HEADER_SIZE) {
        net_counters.short_frames++;
        return;
    }
    if (!addressed_to_us(header)) {
        net_counters.not_for_us++;
        return;
    }
    switch (ntohs(header->ethertype)) {
    case ETHERTYPE_ARP:
        arp_receive(frame + ETHERNET_HEADER_SIZE, length - ETHERNET_HEADER_SIZE);
        break;
    case ETHERTYPE_IPV4:
        ipv4_receive(frame + ETHERNET_HEADER_SIZE, length - ETHERNET_HEADER_SIZE);
        break;
    default:
        net_counters.unknown_ethertype++;
    }
}

void net_poll(void)
{
    static uint8_t frame[ETHERNET_MAX_FRAME + 4];
    size_t length;

    if (!net_ready())
        return;
    for (int i = 0; i < POLL_BUDGET && (length = net_receive_frame(frame, sizeof(frame))); i++)
        receive_frame(frame, length);
    arp_poll();
}

bool net_poll_until(bool (*done)(const void *context), const void *context, uint64_t timeout_ms)
{
    uint64_t deadline = clock_ms() + timeout_ms;

    while (clock_ms() < deadline) {
        net_poll();
        if (done(context))
            return true;
        wait_for_interrupt(net_frame_waiting);
    }
    return false;
}
