/*
 * TCP's clocks: the retransmission timeout estimated from measured round trips (RFC 6298),
 * the retransmission and persist timers, and the linger timers that end a closed connection.
 * Each timer is a clock_ms() deadline in the connection, checked whenever tcp_poll runs.
 */
#include <stdbool.h>
#include <stdint.h>
#include "tcp_connection.h"

/*
 * RFC 6298 asks for at least 1 s; like Linux we allow 200 ms, so one lost segment does not
 * stall a fast local connection for a whole second.
 */
#define MIN_RTO_MS 200
/* Consecutive timeouts without progress before the peer is taken for gone. */
#define MAX_RETRANSMISSIONS         8
#define MAX_SYN_ACK_RETRANSMISSIONS 5
/*
 * TIME_WAIT should last twice the longest a segment can live in the network, 2 x 2 minutes
 * in RFC 793; ringzero's peers are a hop away, and its tests should not wait minutes.
 */
#define TIME_WAIT_MS 2000
/* How long FIN_WAIT_2 waits for the FIN of a peer that may never send one. */
#define FIN_WAIT_2_MS 10000

/* RFC 6298 2.2 and 2.3: smoothed round-trip time, and how much it varies. */
void tcp_measured_rtt(struct tcp_connection *c, uint32_t rtt_ms)
{
    if (!c->have_rtt_sample) {
        c->srtt_ms = rtt_ms;
        c->rttvar_ms = rtt_ms / 2;
        c->have_rtt_sample = true;
    } else {
        uint32_t deviation = c->srtt_ms > rtt_ms ? c->srtt_ms - rtt_ms : rtt_ms - c->srtt_ms;
        c->rttvar_ms = (3 * c->rttvar_ms + deviation) / 4;
        c->srtt_ms = (7 * c->srtt_ms + rtt_ms) / 8;
    }
    c->rto_ms = c->srtt_ms + (4 * c->rttvar_ms > 1 ? 4 * c->rttvar_ms : 1);
    if (c->rto_ms < MIN_RTO_MS)
        c->rto_ms = MIN_RTO_MS;
    if (c->rto_ms > TCP_MAX_RTO_MS)
        c->rto_ms = TCP_MAX_RTO_MS;
}

void tcp_start_time_wait(struct tcp_connection *c, uint64_t now)
{
    c->state = TCP_TIME_WAIT;
    c->retransmit_at = c->persist_at = 0;
    c->linger_until = now + TIME_WAIT_MS;
}

void tcp_start_fin_wait_2(struct tcp_connection *c, uint64_t now)
{
    c->state = TCP_FIN_WAIT_2;
    c->retransmit_at = c->persist_at = 0;
    c->linger_until = now + FIN_WAIT_2_MS;
}

/*
 * Nothing acknowledged for a whole timeout: assume everything from snd_una on was lost and
 * send it again ("go back N"), waiting twice as long for the next ACK (RFC 6298 5.4-5.6).
 */
static void retransmission_timeout(struct tcp_connection *c, uint64_t now)
{
    unsigned limit = c->state == TCP_SYN_RECEIVED ? MAX_SYN_ACK_RETRANSMISSIONS
                                                  : MAX_RETRANSMISSIONS;

    if (c->snd_una == c->snd_max) {
        c->retransmit_at = 0;
        return;
    }
    if (++c->retransmissions > limit) {
        tcp_abort(c);
        return;
    }
    tcp_counters.retransmissions++;
    c->rto_ms = tcp_backed_off(c->rto_ms, 1);
    c->snd_nxt = c->snd_una;
    c->timing = false;
    c->duplicate_acks = 0;
    c->retransmit_at = now + c->rto_ms;
}

/* The window stayed shut (or too small to be worth using) for a whole persist interval. */
static void persist_timeout(struct tcp_connection *c, uint64_t now)
{
    c->persist_at = 0;
    c->persist_backoff++;
    if (seq_gt(c->snd_una + c->snd_wnd, c->snd_nxt))
        tcp_output(c, now, true);
    else
        tcp_send_window_probe(c);
}

/* TIME_WAIT ends quietly; a FIN_WAIT_2 peer that never closed gets a reset. */
static void linger_timeout(struct tcp_connection *c)
{
    if (c->state == TCP_TIME_WAIT)
        tcp_connection_over(c);
    else
        tcp_abort(c);
}

void tcp_run_timers(struct tcp_connection *c, uint64_t now)
{
    if (c->linger_until && now >= c->linger_until)
        linger_timeout(c);
    else if (c->retransmit_at && now >= c->retransmit_at)
        retransmission_timeout(c, now);
    else if (c->persist_at && now >= c->persist_at)
        persist_timeout(c, now);
}
