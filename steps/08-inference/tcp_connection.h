/*
 * What the TCP files share: the connection record, a parsed segment, the counters, and
 * sequence-number arithmetic. tcp.c owns the connection table and the application's side,
 * tcp_connection.c ends and frees connections, tcp_input.c handles arriving segments,
 * tcp_output.c builds and sends them, tcp_timer.c keeps time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ring.h"
#include "tcp.h"

#define TCP_BUFFER_SIZE     (16 * 1024)
/* Our maximum segment size: a 1500-byte Ethernet frame less 20 bytes of IPv4, 20 of TCP. */
#define TCP_MSS             1460
/* What a peer that names no MSS in its SYN can take (RFC 1122 4.2.2.6). */
#define TCP_DEFAULT_MSS     536
/* RFC 6298 2.5: a maximum may be placed on the retransmission timeout, of at least 60 s. */
#define TCP_MAX_RTO_MS      60000
/* Out-of-order byte ranges remembered per connection; more gaps than this are resent. */
#define TCP_OUT_OF_ORDER_RANGES 4

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* RFC 793's states, less LISTEN (that is a struct tcp_listener) and SYN-SENT (no active open). */
enum tcp_state {
    TCP_FREE,          /* an unused slot in the table */
    TCP_SYN_RECEIVED,
    TCP_ESTABLISHED,
    TCP_CLOSE_WAIT,    /* the peer sent FIN; we may still send */
    TCP_LAST_ACK,      /* ... and then we sent ours */
    TCP_FIN_WAIT_1,    /* we sent FIN first */
    TCP_FIN_WAIT_2,    /* ... the peer acknowledged it */
    TCP_CLOSING,       /* ... both sent FIN at the same time */
    TCP_TIME_WAIT,     /* ... both FINs acknowledged; lingers for stray segments */
    TCP_CLOSED,        /* over (reset or timed out) but the application still holds it */
};

struct tcp_byte_range {
    uint32_t start, end;  /* sequence numbers, end exclusive */
};

struct tcp_connection {
    enum tcp_state state;
    struct tcp_listener *listener;  /* until accepted: the listener whose queue it waits in */
    bool held_by_application;       /* between tcp_accept and tcp_close */
    bool closed_by_application;
    uint32_t local_address, remote_address;
    uint16_t local_port, remote_port;

    /* Sending. The send buffer starts at snd_una: unacknowledged bytes, then unsent ones. */
    uint32_t iss;                /* our initial sequence number */
    uint32_t snd_una;            /* oldest unacknowledged sequence number */
    uint32_t snd_nxt;            /* next one to send; moves back to snd_una to retransmit */
    uint32_t snd_max;            /* highest one sent so far */
    uint32_t snd_wnd;            /* the peer's window, counted from snd_una */
    uint32_t snd_wl1, snd_wl2;   /* seq and ack of the segment that last set snd_wnd */
    uint32_t max_snd_wnd;        /* largest window the peer ever offered */
    uint32_t snd_mss;            /* largest segment the peer accepts */
    bool fin_queued;             /* the application closed: a FIN follows the queued bytes */
    uint32_t fin_seq;            /* ... and takes this sequence number */
    struct ring send_buffer;

    /* Receiving. The receive buffer holds in-order bytes the application has not read. */
    uint32_t rcv_nxt;            /* next sequence number expected */
    uint32_t rcv_adv;            /* right edge of the window we last advertised */
    bool fin_received;
    bool ack_now;                /* something arrived that the peer must hear about */
    struct ring receive_buffer;
    struct tcp_byte_range out_of_order[TCP_OUT_OF_ORDER_RANGES];
    unsigned out_of_order_count;

    /* Timers: clock_ms() deadlines, 0 when not running. */
    uint64_t retransmit_at;
    uint64_t persist_at;
    uint64_t linger_until;       /* end of TIME_WAIT, or of FIN_WAIT_2 after tcp_close */
    unsigned retransmissions;    /* in a row, without progress */
    unsigned persist_backoff;
    unsigned duplicate_acks;

    /* Round-trip time (RFC 6298), measured on one segment at a time. */
    uint32_t rto_ms, srtt_ms, rttvar_ms;
    bool have_rtt_sample;
    bool timing;
    uint32_t timed_seq;
    uint64_t timed_since;
};

struct tcp_header {
    uint16_t source_port;
    uint16_t destination_port;
    uint32_t seq;
    uint32_t ack;
    uint8_t data_offset;  /* header length in 32-bit words, in the high four bits */
    uint8_t flags;
    uint16_t window;
    uint16_t checksum;
    uint16_t urgent_pointer;
} __attribute__((packed));

/* A segment after parsing, in host byte order; data points into the received packet. */
struct tcp_segment {
    uint32_t source, destination;
    uint16_t source_port, destination_port;
    uint32_t seq, ack;
    uint8_t flags;
    uint32_t window;
    uint32_t mss;  /* from the MSS option; 0 without one */
    const uint8_t *data;
    uint32_t data_length;
};

struct tcp_counters {
    uint64_t segments_received, segments_sent;
    uint64_t bad_checksum, bad_header, not_unicast;
    uint64_t connections_opened, connections_refused;
    uint64_t resets_sent, resets_received;
    uint64_t retransmissions, fast_retransmissions, persist_probes;
    uint64_t out_of_order, out_of_window;
};

extern struct tcp_counters tcp_counters;

/* Sequence numbers wrap around at 2^32, so compare them by the sign of their difference. */
static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_leq(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool seq_geq(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }

/* SYN and FIN each take a sequence number of their own. */
static inline uint32_t segment_length(const struct tcp_segment *segment)
{
    return segment->data_length + !!(segment->flags & TCP_SYN) + !!(segment->flags & TCP_FIN);
}

/* A timeout doubled for each of doublings timeouts in a row, up to a minute. */
static inline uint32_t tcp_backed_off(uint32_t timeout_ms, unsigned doublings)
{
    uint64_t timeout = (uint64_t)timeout_ms << (doublings < 16 ? doublings : 16);

    return timeout < TCP_MAX_RTO_MS ? (uint32_t)timeout : TCP_MAX_RTO_MS;
}

/* tcp.c */
struct tcp_connection *tcp_find_connection(const struct tcp_segment *segment);
struct tcp_listener *tcp_find_listener(uint16_t port);
struct tcp_connection *tcp_open_from_listener(struct tcp_listener *listener,
                                              const struct tcp_segment *syn, uint64_t now);

/* tcp_connection.c */
void tcp_connection_over(struct tcp_connection *connection);
void tcp_release(struct tcp_connection *connection);

/* tcp_output.c */
uint16_t tcp_checksum(uint32_t source, uint32_t destination, const void *segment, size_t length);
uint32_t tcp_unsent_bytes(const struct tcp_connection *connection);
void tcp_allow_burst(unsigned segments);
bool tcp_output(struct tcp_connection *connection, uint64_t now, bool force);
bool tcp_send_ack(struct tcp_connection *connection);
void tcp_send_window_probe(struct tcp_connection *connection);
void tcp_retransmit_first_segment(struct tcp_connection *connection);
void tcp_send_reset_reply(const struct tcp_segment *segment);
void tcp_abort(struct tcp_connection *connection);

/* tcp_timer.c */
void tcp_measured_rtt(struct tcp_connection *connection, uint32_t rtt_ms);
void tcp_start_time_wait(struct tcp_connection *connection, uint64_t now);
void tcp_start_fin_wait_2(struct tcp_connection *connection, uint64_t now);
void tcp_run_timers(struct tcp_connection *connection, uint64_t now);
