/*
 * Two of the oldest Internet services, echo (RFC 862) and discard (RFC 863). They are small,
 * but they use the TCP interface just the way a real server does: accept, read and write
 * without blocking, and close. Echo has to cope with a client that sends faster than it reads:
 * it takes only as many bytes as it can queue for sending, and the rest waits in TCP's
 * receive buffer, whose shrinking window then slows the client down.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kprintf.h"
#include "services.h"
#include "tcp.h"

#define ECHO_PORT    7
#define DISCARD_PORT 9
#define MAX_CLIENTS  80
#define CHUNK_SIZE   4096

struct service {
    const char *name;
    uint16_t port;
    /* Serve one client for now; false once it is done with, so the service closes it. */
    bool (*serve)(struct tcp_connection *client);
    struct tcp_listener *listener;
    struct tcp_connection *clients[MAX_CLIENTS];
};

static uint8_t chunk[CHUNK_SIZE];

static bool serve_echo(struct tcp_connection *client)
{
    for (;;) {
        size_t room = tcp_send_space(client);
        long count = tcp_recv(client, chunk, room < CHUNK_SIZE ? room : CHUNK_SIZE);
        if (count <= 0)
            return count == 0;
        tcp_send(client, chunk, (size_t)count);
    }
}

static bool serve_discard(struct tcp_connection *client)
{
    for (;;) {
        long count = tcp_recv(client, chunk, CHUNK_SIZE);
        if (count <= 0)
            return count == 0;
    }
}

static struct service services[] = {
    {.name = "echo", .port = ECHO_PORT, .serve = serve_echo},
    {.name = "discard", .port = DISCARD_PORT, .serve = serve_discard},
};

#define SERVICE_COUNT (sizeof(services) / sizeof(services[0]))

void services_init(void)
{
    for (size_t i = 0; i < SERVICE_COUNT; i++) {
        services[i].listener = tcp_listen(services[i].port, MAX_CLIENTS);
        if (services[i].listener)
            kprintf("tcp: %s listening on port %u\n", services[i].name, services[i].port);
        else
            kprintf("tcp: %s cannot listen on port %u\n", services[i].name, services[i].port);
    }
}

static void accept_clients(struct service *service)
{
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        if (service->clients[i])
            continue;
        service->clients[i] = tcp_accept(service->listener);
        if (!service->clients[i])
            return;
    }
}

static void serve_clients(struct service *service)
{
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        if (service->clients[i] && !service->serve(service->clients[i])) {
            tcp_close(service->clients[i]);
            service->clients[i] = NULL;
        }
    }
}

void services_poll(void)
{
    for (size_t i = 0; i < SERVICE_COUNT; i++) {
        if (!services[i].listener)
            continue;
        accept_clients(&services[i]);
        serve_clients(&services[i]);
    }
}
