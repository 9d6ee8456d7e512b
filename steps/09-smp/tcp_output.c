/*
 * Building and sending segments: SYN-ACKs, data within the peer's window, FINs, ACKs and
 * window updates, window probes and resets.
 *
 * Arriving segments only change a connection's state; tcp_output() then looks at that state
 * and sends whatever is due. So the ACK for data that just arrived rides along on the reply
 * the application wrote in the meantime, and a burst of arrivals is answered by one ACK.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ipv4.h"
#include "net.h"
#include "ring.h"
#include "tcp_connection.h"

#define HEADER_SIZE     sizeof(struct tcp_header)
#define OPTION_MSS      2
#define MSS_OPTION_SIZE 4

static uint8_t packet[HEADER_SIZE + MSS_OPTION_SIZE + TCP_MSS];
/* Data segments the current tcp_poll may still send. */
static unsigned burst_left;

void tcp_allow_burst(unsigned segments)
{
    burst_left = segments;
}

/* The checksum covers a pseudo-header of IPv4 fields too, so a misdelivered segment fails it. */
uint16_t tcp_checksum(uint32_t source, uint32_t destination, const void *segment, size_t length)
{
    struct {
        uint32_t source, destination;
        uint8_t zero, protocol;
        uint16_t length;
    } __attribute__((packed)) pseudo_header = {
        htonl(source), htonl(destination), 0, IP_PROTOCOL_TCP, htons((uint16_t)length),
    };
    uint32_t sum = checksum_add(0, &pseudo_header, sizeof(pseudo_header));

    return checksum_finish(checksum_add(sum, segment, length));
}

static void put_header(uint16_t source_port, uint16_t destination_port, uint32_t seq,
                       uint32_t ack, uint8_t flags, uint16_t window, size_t header_size)
{
    *(struct tcp_header *)packet = (struct tcp_header){
        .source_port = htons(source_port),
        .destination_port = htons(destination_port),
        .seq = htonl(seq),
        .ack = htonl(ack),
        .data_offset = (uint8_t)(header_size / 4 << 4),
        .flags = flags,
        .window = htons(window),
    };
}

/* Checksum the segment in packet and hand it to IPv4; false if it could not be sent. */
static bool transmit(uint32_t source, uint32_t destination, size_t length)
{
    struct tcp_header *header = (struct tcp_header *)packet;

    header->checksum = tcp_checksum(source, destination, packet, length);
    if (!ipv4_send(destination, IP_PROTOCOL_TCP, packet, length))
        return false;
    tcp_counters.segments_sent++;
    if (header->flags & TCP_RST)
        tcp_counters.resets_sent++;
    return true;
}

/*
 * Offer the free receive-buffer space, but move the window's right edge only in steps of at
 * least a segment, as tiny steps make the peer send tiny segments (silly window syndrome,
 * RFC 1122 4.2.3.3), and never move it back: the peer may be sending into it already.
 */
static uint16_t advertise_window(struct tcp_connection *c)
{
    uint32_t right_edge = c->rcv_nxt + (uint32_t)ring_space(&c->receive_buffer);
    uint32_t step = TCP_BUFFER_SIZE / 2 < TCP_MSS ? TCP_BUFFER_SIZE / 2 : TCP_MSS;

    if (seq_geq(right_edge, c->rcv_adv + step))
        c->rcv_adv = right_edge;
    return (uint16_t)(c->rcv_adv - c->rcv_nxt);
}

/* Send flags, and length bytes of the send buffer from offset on, as sequence number seq. */
static bool send_segment(struct tcp_connection *c, uint32_t seq, uint8_t flags, size_t offset,
                         size_t length)
{
    size_t header_size = HEADER_SIZE;

    /*
     * Only our first SYN-ACK offers the MSS. QEMU's user networking (libslirp) resizes its
     * socket buffers when an MSS option arrives, even on an established connection, and
     * drops the bytes queued in them; a SYN-ACK resent after its handshake ACK was lost
     * would cost it up to 128 KiB of our peer's data. A peer that missed the first SYN-ACK
     * then assumes 536-byte segments: slower, but nothing is lost.
     */
    if ((flags & TCP_SYN) && c->snd_max == c->iss) {
        uint8_t *option = packet + HEADER_SIZE;
        option[0] = OPTION_MSS;
        option[1] = MSS_OPTION_SIZE;
        option[2] = TCP_MSS >> 8;
        option[3] = TCP_MSS & 0xFF;
        header_size += MSS_OPTION_SIZE;
    }
    put_header(c->local_port, c->remote_port, seq, c->rcv_nxt, flags, advertise_window(c),
               header_size);
    ring_peek(&c->send_buffer, offset, packet + header_size, length);
    if (!transmit(c->local_address, c->remote_address, header_size + length))
        return false;
    c->ack_now = false;
    return true;
}

/* Bookkeeping after sending length sequence numbers from snd_nxt on. */
static void sent(struct tcp_connection *c, uint32_t length, uint64_t now)
{
    /* Karn's rule: time only new data; the ACK for a resent segment could be for either copy. */
    if (!c->timing && seq_geq(c->snd_nxt, c->snd_max)) {
        c->timing = true;
        c->timed_seq = c->snd_nxt;
        c->timed_since = now;
    }
    c->snd_nxt += length;
    if (seq_gt(c->snd_nxt, c->snd_max))
        c->snd_max = c->snd_nxt;
    if (c->retransmit_at == 0)
        c->retransmit_at = now + c->rto_ms;
}

uint32_t tcp_unsent_bytes(const struct tcp_connection *c)
{
    uint32_t offset = c->snd_nxt - c->snd_una;
    uint32_t queued = (uint32_t)ring_used(&c->send_buffer);

    return offset < queued ? queued - offset : 0;
}

static bool fin_unsent(const struct tcp_connection *c)
{
    return c->fin_queued && seq_leq(c->snd_nxt, c->fin_seq);
}

/* How much of the peer's window is still unused. */
static uint32_t usable_window(const struct tcp_connection *c)
{
    uint32_t window_end = c->snd_una + c->snd_wnd;

    return seq_gt(window_end, c->snd_nxt) ? window_end - c->snd_nxt : 0;
}

/*
 * Sender-side silly window avoidance (RFC 1122 4.2.3.4): send a short segment only when it
 * carries everything we have, or fills half the largest window the peer ever offered.
 * Nagle's algorithm would also hold back short segments while data is in flight; it is left
 * out, as echo and HTTP replies want their last bytes out at once.
 */
static bool worth_sending(const struct tcp_connection *c, uint32_t length, uint32_t unsent,
                          bool force)
{
    if (length == 0)
        return false;
    return length == c->snd_mss || length == unsent || length >= c->max_snd_wnd / 2 || force;
}

static bool send_data(struct tcp_connection *c, uint64_t now, bool force)
{
    for (;;) {
        uint32_t unsent = tcp_unsent_bytes(c);
        uint32_t window = usable_window(c);
        uint32_t length = unsent < window ? unsent : window;
        bool fin;
        uint8_t flags = TCP_ACK;

        if (length > c->snd_mss)
            length = c->snd_mss;
        /* The FIN takes a sequence number of its own, so it needs room in the window too. */
        fin = fin_unsent(c) && length == unsent && length < window;
        if (!fin && !worth_sending(c, length, unsent, force))
            return true;
        if (burst_left == 0)
            return false;
        burst_left--;
        if (fin)
            flags |= TCP_FIN;
        if (length > 0 && length == unsent)
            flags |= TCP_PSH;
        if (!send_segment(c, c->snd_nxt, flags, c->snd_nxt - c->snd_una, length))
            return false;
        sent(c, length + fin, now);
    }
}

/*
 * With bytes or a FIN waiting, nothing in flight and no window to send them in, only the
 * peer's window update can get us going again, and if that ACK is lost both sides wait for
 * ever. So a timer probes the window until it opens (RFC 1122 4.2.2.17).
 */
static void update_persist_timer(struct tcp_connection *c, uint64_t now)
{
    bool waiting = tcp_unsent_bytes(c) > 0 || fin_unsent(c);

    if (!waiting || c->snd_una != c->snd_max) {
        c->persist_at = 0;
        c->persist_backoff = 0;
    } else if (c->persist_at == 0) {
        c->persist_at = now + tcp_backed_off(c->rto_ms, c->persist_backoff);
    }
}

/* The application has read enough to open the window by two segments: say so at once. */
static bool window_update_due(const struct tcp_connection *c)
{
    uint32_t right_edge = c->rcv_nxt + (uint32_t)ring_space(&c->receive_buffer);

    return !c->fin_received && seq_geq(right_edge, c->rcv_adv + 2 * TCP_MSS);
}

static bool send_syn_ack(struct tcp_connection *c, uint64_t now)
{
    if (c->snd_nxt != c->iss)
        return true;
    if (!send_segment(c, c->iss, TCP_SYN | TCP_ACK, 0, 0))
        return false;
    sent(c, 1, now);
    return true;
}

/* Send what the connection's state calls for; false once the NIC or the burst is full. */
bool tcp_output(struct tcp_connection *c, uint64_t now, bool force)
{
    if (c->state == TCP_FREE || c->state == TCP_CLOSED)
        return true;
    if (c->state == TCP_SYN_RECEIVED)
        return send_syn_ack(c, now);
    if (!send_data(c, now, force))
        return false;
    update_persist_timer(c, now);
    if (c->ack_now || window_update_due(c))
        return tcp_send_ack(c);
    return true;
}

/* A segment with no data, to tell the peer our rcv_nxt and window. */
bool tcp_send_ack(struct tcp_connection *c)
{
    return send_segment(c, c->snd_nxt, TCP_ACK, 0, 0);
}

/*
 * A sequence number the peer has already acknowledged is never acceptable, so it must answer
 * with an ACK, and that ACK carries its current window (RFC 793 3.9).
 */
void tcp_send_window_probe(struct tcp_connection *c)
{
    if (send_segment(c, c->snd_una - 1, TCP_ACK, 0, 0))
        tcp_counters.persist_probes++;
}

/* Fast retransmit (RFC 5681 3.2): resend the first unacknowledged segment only. */
void tcp_retransmit_first_segment(struct tcp_connection *c)
{
    uint32_t length = (uint32_t)ring_used(&c->send_buffer);

    if (length > c->snd_mss)
        length = c->snd_mss;
    if (length == 0)
        return;
    c->timing = false;
    if (send_segment(c, c->snd_una, TCP_ACK, 0, length))
        tcp_counters.fast_retransmissions++;
}

/*
 * Answer a segment that has no connection to go to (RFC 793 3.4, "Reset Generation"). The
 * reset must carry a sequence number the sender will accept: the one it acknowledged, or, if
 * it acknowledged nothing, 0 with an ACK of everything it sent.
 */
void tcp_send_reset_reply(const struct tcp_segment *s)
{
    /* Never answer a reset: two hosts could keep resetting each other. */
    if (s->flags & TCP_RST)
        return;
    if (s->flags & TCP_ACK)
        put_header(s->destination_port, s->source_port, s->ack, 0, TCP_RST, 0, HEADER_SIZE);
    else
        put_header(s->destination_port, s->source_port, 0, s->seq + segment_length(s),
                   TCP_RST | TCP_ACK, 0, HEADER_SIZE);
    transmit(s->destination, s->source, HEADER_SIZE);
}

/* Give up on a connection, and tell the peer so it does not wait for us. */
void tcp_abort(struct tcp_connection *c)
{
    send_segment(c, c->snd_nxt, TCP_RST | TCP_ACK, 0, 0);
    tcp_connection_over(c);
}
