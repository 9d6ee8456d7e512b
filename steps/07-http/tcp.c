/*
 * TCP's connection table and the application's side of it: listening, accepting, reading,
 * sending and closing, and the poll that drives the timers and all transmission.
 *
 * Connections live in a table sized once, at boot, from the memory there is, so a flood of
 * SYNs cannot use up the heap: once the table (or the listener's backlog) is full, further
 * SYNs are dropped, and their clients retry. A connection takes its two buffers from the heap
 * when its SYN arrives and gives them back when its slot is freed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmdline.h"
#include "frames.h"
#include "heap.h"
#include "kprintf.h"
#include "panic.h"
#include "ring.h"
#include "tcp.h"
#include "tcp_connection.h"

#define MAX_LISTENERS  8
/*
 * The table may promise connections an eighth of the memory free at boot, buffers included;
 * the rest is for everything else, the model among it. Every arriving segment searches the
 * table, which bounds it from above; below, a table too small to be useful.
 */
#define MEMORY_SHARE    8
#define MIN_CONNECTIONS 16
#define MAX_CONNECTIONS 1024
/* RFC 6298 2.1: before the first round-trip measurement, wait a second before resending. */
#define INITIAL_RTO_MS 1000
/* Like Linux, a floor under the peer's MSS, so no peer can make us send a byte per segment. */
#define MIN_PEER_MSS   64
/*
 * Data segments one tcp_poll may send before the main loop gets back to the NIC. The peer
 * answers while we are still sending (under QEMU, before the send even returns), and what
 * does not fit the e1000's receive ring is dropped; 8 segments draw far fewer
 * answers than that. Dropped answers cost whole retransmission timeouts.
 */
#define SEGMENTS_PER_POLL 8

struct tcp_listener {
    uint16_t port;  /* 0 while the slot is unused */
    int backlog;
};

struct tcp_counters tcp_counters;
static bool burst_ran_out;   /* the last tcp_poll left segments to send */
static struct tcp_connection *connections;
static size_t capacity;
static struct tcp_listener listeners[MAX_LISTENERS];
/* Where the next tcp_poll starts: after the connection the last one stopped at, so that
 * every connection gets its turn to send. */
static size_t first_to_poll;

static const char *const state_names[] = {
    [TCP_FREE] = "FREE",
    [TCP_SYN_RECEIVED] = "SYN_RECEIVED",
    [TCP_ESTABLISHED] = "ESTABLISHED",
    [TCP_CLOSE_WAIT] = "CLOSE_WAIT",
    [TCP_LAST_ACK] = "LAST_ACK",
    [TCP_FIN_WAIT_1] = "FIN_WAIT_1",
    [TCP_FIN_WAIT_2] = "FIN_WAIT_2",
    [TCP_CLOSING] = "CLOSING",
    [TCP_TIME_WAIT] = "TIME_WAIT",
    [TCP_CLOSED] = "CLOSED",
};

/* What memory allows, or what `connections=N` on the command line asks for (tests fill the
 * table, and a small one fills faster). */
static size_t choose_capacity(void)
{
    const size_t cost = 2 * TCP_BUFFER_SIZE + sizeof(struct tcp_connection);
    size_t affordable = frames_free_count() * FRAME_SIZE / MEMORY_SHARE / cost;
    uint64_t asked;

    if (cmdline_get_number("connections", 1, MAX_CONNECTIONS, &asked))
        return (size_t)asked;
    if (affordable < MIN_CONNECTIONS)
        return MIN_CONNECTIONS;
    return affordable < MAX_CONNECTIONS ? affordable : MAX_CONNECTIONS;
}

void tcp_init(void)
{
    capacity = choose_capacity();
    connections = kcalloc(capacity, sizeof(*connections));
    if (!connections)
        panic("tcp: no memory for a table of %zu connections", capacity);
    kprintf("tcp: room for %zu connections\n", capacity);
}

size_t tcp_capacity(void)
{
    return capacity;
}

struct tcp_listener *tcp_find_listener(uint16_t port)
{
    for (size_t i = 0; i < MAX_LISTENERS; i++)
        if (listeners[i].port == port && port != 0)
            return &listeners[i];
    return NULL;
}

struct tcp_listener *tcp_listen(uint16_t port, int backlog)
{
    if (port == 0 || backlog < 1 || tcp_find_listener(port))
        return NULL;
    for (size_t i = 0; i < MAX_LISTENERS; i++) {
        if (listeners[i].port == 0) {
            listeners[i] = (struct tcp_listener){.port = port, .backlog = backlog};
            return &listeners[i];
        }
    }
    return NULL;
}

struct tcp_connection *tcp_find_connection(const struct tcp_segment *segment)
{
    for (size_t i = 0; i < capacity; i++) {
        struct tcp_connection *c = &connections[i];
        if (c->state != TCP_FREE && c->local_port == segment->destination_port &&
            c->remote_port == segment->source_port &&
            c->local_address == segment->destination &&
            c->remote_address == segment->source)
            return c;
    }
    return NULL;
}

static int waiting_for_accept(const struct tcp_listener *listener)
{
    int count = 0;

    for (size_t i = 0; i < capacity; i++)
        if (connections[i].state != TCP_FREE && connections[i].listener == listener)
            count++;
    return count;
}

/*
 * A free slot, or else the one whose TIME_WAIT ends first: TIME_WAIT only guards against
 * stray segments of a finished connection, and a new connection is worth more.
 */
static struct tcp_connection *free_slot(void)
{
    struct tcp_connection *oldest = NULL;

    for (size_t i = 0; i < capacity; i++) {
        struct tcp_connection *c = &connections[i];
        if (c->state == TCP_FREE)
            return c;
        if (c->state == TCP_TIME_WAIT && (!oldest || c->linger_until < oldest->linger_until))
            oldest = c;
    }
    if (oldest)
        tcp_release(oldest);
    return oldest;
}

/*
 * RFC 793 clocks initial sequence numbers at one per 4 microseconds, so that a new
 * connection between the same ports starts beyond the old one's numbers; RFC 6528 adds a
 * hash of the addresses and ports (FNV-1a here), so connections do not share one sequence.
 * RFC 6528 also hashes in a secret so that other hosts cannot guess the numbers; this kernel
 * has no source of secrets.
 */
static uint32_t initial_sequence_number(const struct tcp_segment *syn, uint64_t now)
{
    uint32_t words[3] = {syn->source, syn->destination,
                         (uint32_t)syn->source_port << 16 | syn->destination_port};
    const uint8_t *bytes = (const uint8_t *)words;
    uint32_t hash = 2166136261u;

    for (size_t i = 0; i < sizeof(words); i++)
        hash = (hash ^ bytes[i]) * 16777619u;
    return hash + (uint32_t)(now * 250);
}

static uint32_t peer_mss(const struct tcp_segment *syn)
{
    if (syn->mss == 0)
        return TCP_DEFAULT_MSS;
    if (syn->mss < MIN_PEER_MSS)
        return MIN_PEER_MSS;
    return syn->mss < TCP_MSS ? syn->mss : TCP_MSS;
}

/* A SYN arrived for a listener: a connection in SYN_RECEIVED, or NULL to refuse it. */
struct tcp_connection *tcp_open_from_listener(struct tcp_listener *listener,
                                              const struct tcp_segment *syn, uint64_t now)
{
    struct tcp_connection *c;
    uint32_t iss = initial_sequence_number(syn, now);

    if (waiting_for_accept(listener) >= listener->backlog || !(c = free_slot()))
        return NULL;
    *c = (struct tcp_connection){
        .state = TCP_SYN_RECEIVED,
        .listener = listener,
        .local_address = syn->destination,
        .remote_address = syn->source,
        .local_port = syn->destination_port,
        .remote_port = syn->source_port,
        .iss = iss,
        .snd_una = iss,
        .snd_nxt = iss,
        .snd_max = iss,
        .snd_wnd = syn->window,
        .snd_wl1 = syn->seq,
        .max_snd_wnd = syn->window,
        .snd_mss = peer_mss(syn),
        .rcv_nxt = syn->seq + 1,
        .rcv_adv = syn->seq + 1 + TCP_BUFFER_SIZE,
        .rto_ms = INITIAL_RTO_MS,
    };
    if (!ring_init(&c->send_buffer, TCP_BUFFER_SIZE) ||
        !ring_init(&c->receive_buffer, TCP_BUFFER_SIZE)) {
        tcp_release(c);
        return NULL;
    }
    return c;
}

struct tcp_connection *tcp_accept(struct tcp_listener *listener)
{
    for (size_t i = 0; i < capacity; i++) {
        struct tcp_connection *c = &connections[i];
        if (c->listener == listener && c->state != TCP_FREE &&
            c->state != TCP_SYN_RECEIVED) {
            c->listener = NULL;
            c->held_by_application = true;
            return c;
        }
    }
    return NULL;
}

long tcp_recv(struct tcp_connection *connection, void *buffer, size_t length)
{
    size_t count;

    if (connection->state == TCP_CLOSED)
        return -1;
    count = ring_read(&connection->receive_buffer, buffer, length);
    if (count > 0 || ring_used(&connection->receive_buffer) > 0)
        return (long)count;
    return connection->fin_received ? -1 : 0;
}

static bool can_send(const struct tcp_connection *connection)
{
    return connection->state == TCP_ESTABLISHED || connection->state == TCP_CLOSE_WAIT;
}

long tcp_send(struct tcp_connection *connection, const void *data, size_t length)
{
    if (!can_send(connection))
        return -1;
    return (long)ring_write(&connection->send_buffer, data, length);
}

size_t tcp_send_space(const struct tcp_connection *connection)
{
    return can_send(connection) ? ring_space(&connection->send_buffer) : 0;
}

void tcp_close(struct tcp_connection *connection)
{
    connection->held_by_application = false;
    connection->closed_by_application = true;
    if (!can_send(connection)) {
        tcp_release(connection);
        return;
    }
    if (ring_used(&connection->receive_buffer) > 0) {
        tcp_abort(connection);
        return;
    }
    connection->fin_queued = true;
    connection->fin_seq = connection->snd_una + (uint32_t)ring_used(&connection->send_buffer);
    connection->state = connection->state == TCP_CLOSE_WAIT ? TCP_LAST_ACK : TCP_FIN_WAIT_1;
}

void tcp_poll(uint64_t now_ms)
{
    size_t first = first_to_poll;

    burst_ran_out = false;
    tcp_allow_burst(SEGMENTS_PER_POLL);
    for (size_t i = 0; i < capacity; i++) {
        size_t index = (first + i) % capacity;
        struct tcp_connection *c = &connections[index];
        if (c->state == TCP_FREE)
            continue;
        tcp_run_timers(c, now_ms);
        if (!tcp_output(c, now_ms, false)) {
            first_to_poll = (index + 1) % capacity;
            burst_ran_out = true;
            return;
        }
    }
}

bool tcp_work_waiting(void)
{
    return burst_ran_out;
}

static void print_address(uint32_t address, uint16_t port)
{
    kprintf("%u.%u.%u.%u:%u", address >> 24, address >> 16 & 0xFF, address >> 8 & 0xFF,
            address & 0xFF, port);
}

static void print_connection(const struct tcp_connection *c)
{
    kprintf("tcp ");
    print_address(c->local_address, c->local_port);
    kprintf(" ");
    print_address(c->remote_address, c->remote_port);
    kprintf(" %s unacked=%u unsent=%u unread=%zu rto=%ums\n", state_names[c->state],
            c->snd_max - c->snd_una, tcp_unsent_bytes(c), ring_used(&c->receive_buffer),
            c->rto_ms);
}

static size_t open_connections(void)
{
    size_t open = 0;

    for (size_t i = 0; i < capacity; i++)
        open += connections[i].state != TCP_FREE;
    return open;
}

void tcp_get_statistics(struct tcp_statistics *statistics)
{
    *statistics = (struct tcp_statistics){
        .open = open_connections(), .capacity = capacity,
        .opened = tcp_counters.connections_opened, .refused = tcp_counters.connections_refused,
        .resets_sent = tcp_counters.resets_sent, .resets_received = tcp_counters.resets_received,
    };
}

void tcp_print_status(void)
{
    const struct tcp_counters *n = &tcp_counters;
    size_t active = open_connections();
    kprintf("tcp: connections=%zu/%zu rx=%lu tx=%lu bad_checksum=%lu bad_header=%lu "
            "not_unicast=%lu opened=%lu refused=%lu resets_sent=%lu resets_received=%lu "
            "retransmissions=%lu fast_retransmissions=%lu persist_probes=%lu "
            "out_of_order=%lu out_of_window=%lu\n",
            active, capacity, n->segments_received, n->segments_sent,
            n->bad_checksum, n->bad_header, n->not_unicast, n->connections_opened,
            n->connections_refused, n->resets_sent, n->resets_received, n->retransmissions,
            n->fast_retransmissions, n->persist_probes, n->out_of_order, n->out_of_window);
    for (size_t i = 0; i < MAX_LISTENERS; i++)
        if (listeners[i].port)
            kprintf("tcp listen %u backlog %d\n", listeners[i].port, listeners[i].backlog);
    for (size_t i = 0; i < capacity; i++)
        if (connections[i].state != TCP_FREE)
            print_connection(&connections[i]);
}
