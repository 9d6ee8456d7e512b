/*
 * ICMP echo (RFC 792), the "ping": answer requests with the same identifier, sequence number
 * and data, and send requests of our own to check the path to a host.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "clock.h"
#include "icmp.h"
#include "ipv4.h"
#include "kprintf.h"
#include "net.h"
#include "string.h"

#define TYPE_ECHO_REPLY 0
#define TYPE_ECHO_REQUEST 8
#define PING_IDENTIFIER 0x525A /* "RZ" */
#define PING_DATA_SIZE 32

struct icmp_echo {
    uint8_t type;
    uint8_t code;
    uint16_t checksum;
    uint16_t identifier;
    uint16_t sequence;
} __attribute__((packed));

static uint64_t ping_sent_ms;
static int last_reply_sequence = -1;

static void answer_echo(uint32_t source, const uint8_t *message, size_t length)
{
    static uint8_t reply[IPV4_MAX_PAYLOAD];
    struct icmp_echo *header = (void *)reply;

    if (length > sizeof(reply))
        return;
    memcpy(reply, message, length);
    header->type = TYPE_ECHO_REPLY;
    header->checksum = 0;
    header->checksum = checksum_finish(checksum_add(0, reply, length));
    if (ipv4_send(source, IP_PROTOCOL_ICMP, reply, length))
        net_counters.echo_requests_answered++;
}

static void note_reply(uint32_t source, const struct icmp_echo *header)
{
    char text[16];

    if (ntohs(header->identifier) != PING_IDENTIFIER)
        return;
    format_ipv4(text, sizeof(text), source);
    kprintf("ping %s: reply seq=%u in %lu ms\n", text, ntohs(header->sequence),
            clock_ms() - ping_sent_ms);
    last_reply_sequence = ntohs(header->sequence);
}

void icmp_receive(uint32_t source, const uint8_t *message, size_t length)
{
    struct icmp_echo header;

    if (length < sizeof(header) || checksum_finish(checksum_add(0, message, length)) != 0) {
        net_counters.bad_icmp++;
        return;
    }
    memcpy(&header, message, sizeof(header));
    if (header.type == TYPE_ECHO_REQUEST && header.code == 0)
        answer_echo(source, message, length);
    else if (header.type == TYPE_ECHO_REPLY)
        note_reply(source, &header);
}

void icmp_ping(uint32_t destination, uint16_t sequence)
{
    uint8_t message[sizeof(struct icmp_echo) + PING_DATA_SIZE];
    struct icmp_echo *header = (void *)message;

    *header = (struct icmp_echo){
        .type = TYPE_ECHO_REQUEST,
        .identifier = htons(PING_IDENTIFIER),
        .sequence = htons(sequence),
    };
    for (int i = 0; i < PING_DATA_SIZE; i++)
        message[sizeof(*header) + i] = (uint8_t)('a' + i % 26);
    header->checksum = checksum_finish(checksum_add(0, message, sizeof(message)));
    ping_sent_ms = clock_ms();
    ipv4_send(destination, IP_PROTOCOL_ICMP, message, sizeof(message));
}

/* For net_poll_until: has the reply to the request numbered *sequence (a uint16_t) come? */
bool icmp_replied(const void *sequence)
{
    return last_reply_sequence == *(const uint16_t *)sequence;
}
