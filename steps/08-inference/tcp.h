/*
 * TCP: reliable byte streams over IPv4 (RFC 793, with RFC 1122, 5681 and 6298).
 *
 * The kernel only accepts connections; it never opens them. Nothing here blocks and nothing
 * runs by itself: the main loop calls tcp_poll() to send segments and run timers, ipv4 calls
 * tcp_receive() for every segment, and services call the functions below whenever they are
 * polled. Every call returns at once with what it could do.
 *
 * A connection belongs to the application from tcp_accept() until tcp_close(); the pointer
 * stays valid over that whole time, even after the peer resets the connection, and becomes
 * invalid when tcp_close() returns.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tcp_listener;
struct tcp_connection;

/* Size the connection table from the memory that is free (once, after the heap is up). */
void tcp_init(void);
/* How many connections the table holds: the most that can be open at once. */
size_t tcp_capacity(void);

/*
 * Accept connections to port. At most backlog of them wait for tcp_accept(); connections
 * beyond that, or beyond the kernel's connection table, have their SYNs dropped: the client
 * tries again a second later.
 * Returns NULL if the port is taken or every listener slot is used.
 */
struct tcp_listener *tcp_listen(uint16_t port, int backlog);

/* A connection that finished its handshake, or NULL when none is waiting. */
struct tcp_connection *tcp_accept(struct tcp_listener *listener);

/*
 * Read up to length received bytes. Returns how many were read, 0 when none have arrived
 * yet, and -1 once the peer has closed its direction and every byte was read, or reset the
 * connection.
 */
long tcp_recv(struct tcp_connection *connection, void *buffer, size_t length);

/*
 * Queue up to length bytes for sending. Returns how many were queued, fewer than length (even
 * 0) when the send buffer is full, and -1 when the connection cannot send any more.
 */
long tcp_send(struct tcp_connection *connection, const void *data, size_t length);

/* How many bytes tcp_send() would queue right now. */
size_t tcp_send_space(const struct tcp_connection *connection);

/*
 * Done with the connection: the bytes already queued are still delivered, then a FIN.
 * Unread received bytes are lost, so then the peer gets a reset instead, to tell it so.
 */
void tcp_close(struct tcp_connection *connection);

/* Send what is due and run the timers. now_ms is clock_ms(). */
void tcp_poll(uint64_t now_ms);
/* Did the last tcp_poll stop at its burst with segments still to send? Then do not halt. */
bool tcp_work_waiting(void);

/* A segment for this host, from ipv4. The addresses are in host byte order. */
void tcp_receive(uint32_t source, uint32_t destination, const void *segment, size_t length);

/* For /metrics. */
struct tcp_statistics {
    size_t open, capacity;
    uint64_t opened, refused, resets_sent, resets_received;
};

void tcp_get_statistics(struct tcp_statistics *statistics);

/* The counters and a line per connection, for the shell's `tcp` command. */
void tcp_print_status(void);
