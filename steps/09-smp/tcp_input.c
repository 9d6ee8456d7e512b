/*
 * Arriving segments. First the segment must be well formed: every length and offset in it is
 * checked against the segment's real length before it is used, since a peer can send
 * anything. Then it goes to its connection, where RFC 793's "SEGMENT ARRIVES" steps run in
 * order: sequence number, RST, SYN, ACK, data, FIN. Replies mostly wait for tcp_output() in
 * the next tcp_poll, so that one ACK answers a burst of segments; only resets and the ACKs
 * for early segments go out at once.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "clock.h"
#include "net.h"
#include "ring.h"
#include "tcp.h"
#include "tcp_connection.h"

#define OPTION_END 0
#define OPTION_NOP 1
#define OPTION_MSS 2
#define OPTION_MSS_SIZE 4

/* Options are kind, length, value; END and NOP are a lone kind byte. Only MSS matters to us. */
static bool parse_options(struct tcp_segment *s, const uint8_t *options, size_t length)
{
    size_t i = 0;

    while (i < length && options[i] != OPTION_END) {
        if (options[i] == OPTION_NOP) {
            i++;
            continue;
        }
        if (i + 1 >= length || options[i + 1] < 2 || options[i + 1] > length - i)
            return false;
        if (options[i] == OPTION_MSS && options[i + 1] == OPTION_MSS_SIZE)
            s->mss = (uint32_t)options[i + 2] << 8 | options[i + 3];
        i += options[i + 1];
    }
    return true;
}

static bool parse_segment(struct tcp_segment *s, uint32_t source, uint32_t destination,
                          const uint8_t *bytes, size_t length)
{
    const struct tcp_header *header = (const struct tcp_header *)bytes;
    size_t header_size;

    if (length < sizeof(*header)) {
        tcp_counters.bad_header++;
        return false;
    }
    if (tcp_checksum(source, destination, bytes, length) != 0) {
        tcp_counters.bad_checksum++;
        return false;
    }
    header_size = (size_t)(header->data_offset >> 4) * 4;
    if (header_size < sizeof(*header) || header_size > length) {
        tcp_counters.bad_header++;
        return false;
    }
    *s = (struct tcp_segment){
        .source = source,
        .destination = destination,
        .source_port = ntohs(header->source_port),
        .destination_port = ntohs(header->destination_port),
        .seq = ntohl(header->seq),
        .ack = ntohl(header->ack),
        .flags = header->flags,
        .window = ntohs(header->window),
        .data = bytes + header_size,
        .data_length = (uint32_t)(length - header_size),
    };
    if (!parse_options(s, bytes + sizeof(*header), header_size - sizeof(*header))) {
        tcp_counters.bad_header++;
        return false;
    }
    return true;
}

/* No connection: the port is LISTENing or CLOSED (RFC 793 3.9). */
static void segment_without_connection(const struct tcp_segment *s, uint64_t now)
{
    struct tcp_listener *listener = tcp_find_listener(s->destination_port);

    if (s->flags & TCP_RST)
        return;
    if (listener && !(s->flags & TCP_ACK)) {
        /*
         * With the backlog or the table full, drop the SYN rather than reset it: the client
         * sends it again (after 1 s, then 2, ...), by when there may be room, where a reset
         * would end its attempt at once.
         */
        if ((s->flags & TCP_SYN) && !tcp_open_from_listener(listener, s, now))
            tcp_counters.connections_refused++;
        return;
    }
    /* A closed port, or an ACK for a connection that is gone. */
    tcp_send_reset_reply(s);
}

/* Is seq one we expect next? With our window shut, only rcv_nxt itself is. */
static bool in_receive_window(const struct tcp_connection *c, uint32_t seq)
{
    return seq == c->rcv_nxt || (seq_gt(seq, c->rcv_nxt) && seq_lt(seq, c->rcv_adv));
}

/*
 * RFC 793 drops a segment unless some of it falls into the window we offered. Like BSD and
 * Linux, we also take one that starts before the window: trim_to_window() cuts off its old
 * bytes, but its ACK still counts. Peers resend old bytes and FINs with fresh ACKs on them
 * (QEMU's user networking sends its FIN again with every ACK until we acknowledge it), and
 * dropping those ACKs would stall our sending until a retransmission timeout.
 */
static bool acceptable(const struct tcp_connection *c, const struct tcp_segment *s)
{
    return seq_leq(s->seq, c->rcv_nxt) || in_receive_window(c, s->seq);
}

/* Only a reset in the window counts, or an old one could end a newer connection. */
static void reset_arrives(struct tcp_connection *c, const struct tcp_segment *s)
{
    if (!in_receive_window(c, s->seq)) {
        tcp_counters.out_of_window++;
        return;
    }
    tcp_counters.resets_received++;
    tcp_connection_over(c);
}

static void syn_arrives(struct tcp_connection *c, const struct tcp_segment *s)
{
    if (c->state == TCP_SYN_RECEIVED && s->seq + 1 == c->rcv_nxt)
        c->snd_nxt = c->iss;  /* the peer sent its SYN again: our SYN-ACK was lost */
    else if (in_receive_window(c, s->seq))
        tcp_abort(c);  /* a new SYN inside a running connection is an error (RFC 793 3.9) */
    else
        c->ack_now = true;  /* an old duplicate */
}

/* RFC 5681: the same ACK again, while data is outstanding, says a later segment arrived. */
static void duplicate_ack(struct tcp_connection *c, const struct tcp_segment *s)
{
    if (s->data_length > 0 || (s->flags & (TCP_SYN | TCP_FIN)) || s->window != c->snd_wnd ||
        c->snd_una == c->snd_max)
        return;
    /* Three in a row: the segment at snd_una is lost, while the ones after it got through. */
    if (++c->duplicate_acks == 3)
        tcp_retransmit_first_segment(c);
}

/* The peer acknowledged everything before ack: free those bytes, restart the clock. */
static void acknowledged(struct tcp_connection *c, uint32_t ack, uint64_t now)
{
    uint32_t acked = ack - c->snd_una;
    size_t queued = ring_used(&c->send_buffer);

    /* Anything acknowledged beyond the queued bytes was our SYN or FIN. */
    ring_drop(&c->send_buffer, acked < queued ? acked : queued);
    c->snd_una = ack;
    if (seq_lt(c->snd_nxt, ack))
        c->snd_nxt = ack;
    if (c->timing && seq_gt(ack, c->timed_seq)) {
        c->timing = false;
        tcp_measured_rtt(c, (uint32_t)(now - c->timed_since));
    }
    c->retransmissions = 0;
    c->duplicate_acks = 0;
    c->retransmit_at = ack == c->snd_max ? 0 : now + c->rto_ms;
}

/* RFC 793: take the window only from a segment newer than the last one that set it. */
static void update_send_window(struct tcp_connection *c, const struct tcp_segment *s)
{
    if (seq_lt(c->snd_wl1, s->seq) || (c->snd_wl1 == s->seq && seq_leq(c->snd_wl2, s->ack))) {
        c->snd_wnd = s->window;
        c->snd_wl1 = s->seq;
        c->snd_wl2 = s->ack;
        if (s->window > c->max_snd_wnd)
            c->max_snd_wnd = s->window;
    }
}

/* Our FIN was acknowledged. False when that ends the connection. */
static bool our_fin_acknowledged(struct tcp_connection *c, uint64_t now)
{
    switch (c->state) {
    case TCP_FIN_WAIT_1:
        tcp_start_fin_wait_2(c, now);
        return true;
    case TCP_CLOSING:
        tcp_start_time_wait(c, now);
        return true;
    case TCP_LAST_ACK:
        tcp_connection_over(c);
        return false;
    default:
        return true;
    }
}

/* RFC 793's ACK step. False when the segment must go no further. */
static bool process_ack(struct tcp_connection *c, const struct tcp_segment *s, uint64_t now)
{
    if (c->state == TCP_SYN_RECEIVED) {
        if (seq_leq(s->ack, c->snd_una) || seq_gt(s->ack, c->snd_max)) {
            tcp_send_reset_reply(s);
            return false;
        }
        c->state = TCP_ESTABLISHED;
        tcp_counters.connections_opened++;
    }
    if (seq_gt(s->ack, c->snd_max)) {
        c->ack_now = true;
        return false;
    }
    if (seq_lt(s->ack, c->snd_una))
        return true;
    if (s->ack == c->snd_una)
        duplicate_ack(c, s);
    else
        acknowledged(c, s->ack, now);
    update_send_window(c, s);
    if (c->fin_queued && seq_gt(c->snd_una, c->fin_seq))
        return our_fin_acknowledged(c, now);
    return true;
}

/* Keep only new bytes that fit the window: cut off what we have, and what does not fit. */
static void trim_to_window(struct tcp_connection *c, struct tcp_segment *s)
{
    uint32_t room;

    if (seq_lt(s->seq, c->rcv_nxt)) {
        uint32_t old = c->rcv_nxt - s->seq;
        if (old > s->data_length) {
            old = s->data_length;
            s->flags &= (uint8_t)~TCP_FIN;
        }
        s->seq += old;
        s->data += old;
        s->data_length -= old;
        /* The peer sent again what we had: perhaps our ACK was lost. */
        c->ack_now = true;
    }
    room = c->rcv_adv - s->seq;
    if (s->data_length > room) {
        s->data_length = room;
        s->flags &= (uint8_t)~TCP_FIN;
        c->ack_now = true;
    }
}

static bool ranges_touch(const struct tcp_byte_range *r, uint32_t start, uint32_t end)
{
    return seq_geq(end, r->start) && seq_geq(r->end, start);
}

static void remember_out_of_order(struct tcp_connection *c, uint32_t start, uint32_t end)
{
    unsigned i = 0;

    while (i < c->out_of_order_count) {
        struct tcp_byte_range *r = &c->out_of_order[i];
        if (!ranges_touch(r, start, end)) {
            i++;
            continue;
        }
        start = seq_lt(r->start, start) ? r->start : start;
        end = seq_gt(r->end, end) ? r->end : end;
        *r = c->out_of_order[--c->out_of_order_count];
        i = 0;  /* the grown range may touch ranges already passed */
    }
    /* With no room to remember another gap, forget these bytes: the peer sends them again. */
    if (c->out_of_order_count < TCP_OUT_OF_ORDER_RANGES)
        c->out_of_order[c->out_of_order_count++] = (struct tcp_byte_range){start, end};
}

/* The gap before some early bytes has filled: they are in order now. */
static void take_reassembled(struct tcp_connection *c)
{
    unsigned i = 0;

    while (i < c->out_of_order_count) {
        struct tcp_byte_range *r = &c->out_of_order[i];
        if (seq_gt(r->start, c->rcv_nxt)) {
            i++;
            continue;
        }
        if (seq_gt(r->end, c->rcv_nxt)) {
            ring_extend(&c->receive_buffer, r->end - c->rcv_nxt);
            c->rcv_nxt = r->end;
        }
        *r = c->out_of_order[--c->out_of_order_count];
        i = 0;  /* rcv_nxt moved, so ranges already passed may be in order now */
    }
}

/*
 * Bytes within the window go straight to their place in the receive buffer. In-order bytes
 * become readable; early ones wait there until the gap before them fills.
 */
static void receive_data(struct tcp_connection *c, const struct tcp_segment *s)
{
    uint32_t offset = s->seq - c->rcv_nxt;

    if (s->data_length == 0)
        return;
    c->ack_now = true;
    /* Bytes after the peer's own FIN are nonsense; after tcp_close nobody reads them. */
    if (c->fin_received || c->closed_by_application) {
        if (offset == 0 && !c->fin_received)
            c->rcv_nxt += s->data_length;
        return;
    }
    ring_place(&c->receive_buffer, ring_used(&c->receive_buffer) + offset, s->data,
               s->data_length);
    if (offset > 0) {
        tcp_counters.out_of_order++;
        remember_out_of_order(c, s->seq, s->seq + s->data_length);
        /* RFC 5681 4.2: one duplicate ACK per early segment, so the peer can count three. */
        tcp_send_ack(c);
        return;
    }
    ring_extend(&c->receive_buffer, s->data_length);
    c->rcv_nxt += s->data_length;
    take_reassembled(c);
}

/* A FIN counts once every byte before it has arrived; an early one is sent again later. */
static void receive_fin(struct tcp_connection *c, const struct tcp_segment *s, uint64_t now)
{
    if (c->fin_received || s->seq + s->data_length != c->rcv_nxt)
        return;
    c->fin_received = true;
    c->rcv_nxt++;
    c->ack_now = true;
    if (c->state == TCP_ESTABLISHED)
        c->state = TCP_CLOSE_WAIT;
    else if (c->state == TCP_FIN_WAIT_1)
        c->state = TCP_CLOSING;
    else if (c->state == TCP_FIN_WAIT_2)
        tcp_start_time_wait(c, now);
}

static void segment_arrives(struct tcp_connection *c, struct tcp_segment *s, uint64_t now)
{
    if (!acceptable(c, s)) {
        tcp_counters.out_of_window++;
        if (!(s->flags & TCP_RST))
            c->ack_now = true;
        return;
    }
    if (s->flags & TCP_RST) {
        reset_arrives(c, s);
        return;
    }
    if (s->flags & TCP_SYN) {
        syn_arrives(c, s);
        return;
    }
    if (!(s->flags & TCP_ACK) || !process_ack(c, s, now))
        return;
    trim_to_window(c, s);
    receive_data(c, s);
    if (s->flags & TCP_FIN)
        receive_fin(c, s, now);
}

/* RFC 1122 4.2.2.13: a new SYN may reopen a connection that lingers in TIME_WAIT. */
static bool reopens_time_wait(const struct tcp_connection *c, const struct tcp_segment *s)
{
    return c->state == TCP_TIME_WAIT && (s->flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN &&
           seq_gt(s->seq, c->rcv_nxt);
}

/*
 * A connection joins two hosts, so a segment sent to a broadcast address, or claiming to come
 * from one, gets no connection and no reset either (RFC 1122 4.2.3.10).
 */
static bool between_two_hosts(uint32_t source, uint32_t destination)
{
    const struct net_config *config = net_config();
    bool source_is_group = source == 0 || source == 0xFFFFFFFF || source >> 28 == 0xE ||
                           source == (config->address | ~config->netmask);

    return destination == config->address && !source_is_group;
}

void tcp_receive(uint32_t source, uint32_t destination, const void *segment, size_t length)
{
    struct tcp_segment s;
    struct tcp_connection *c;
    uint64_t now = clock_ms();

    tcp_counters.segments_received++;
    if (!between_two_hosts(source, destination)) {
        tcp_counters.not_unicast++;
        return;
    }
    if (!parse_segment(&s, source, destination, segment, length))
        return;
    c = tcp_find_connection(&s);
    if (c && reopens_time_wait(c, &s)) {
        tcp_release(c);
        c = NULL;
    }
    if (c)
        segment_arrives(c, &s, now);
    else
        segment_without_connection(&s, now);
}
