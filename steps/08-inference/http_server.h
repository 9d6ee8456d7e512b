/*
 * The HTTP/1.1 server: connections, request bodies, responses and streaming, on top of the
 * TCP interface. The server hands each parsed request to the handler it was started with
 * (kmain gives it api.c's router), which answers through the http_reply and http_stream
 * functions; a handler with long work (a generation) installs a producer that the
 * server calls from its poll loop, so one slow request never stops the others.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "http_parse.h"
#include "strbuf.h"

struct http_connection;

struct http_exchange {
    const struct http_request *request;
    const char *body;
    size_t body_length;
    struct http_connection *connection;
};

/* Answers one request, now or later, through the functions below. */
typedef void (*http_handler)(const struct http_exchange *exchange);
/* Returns true while it has more to do; the server calls it again when there is room to send. */
typedef bool (*http_producer)(struct http_connection *connection, void *state);

void http_server_start(uint16_t port, http_handler handler);
void http_server_poll(uint64_t now_ms);
bool http_server_work_waiting(void);
/* For /metrics: responses sent with this status, and connections open now. */
uint64_t http_server_responses(int status);
int http_server_open_connections(void);

void http_reply(struct http_connection *connection, int status, const char *content_type,
                const void *body, size_t length, const char *extra_headers);
void http_reply_json(struct http_connection *connection, int status, const struct strbuf *json);
void http_reply_error(struct http_connection *connection, int status, const char *type,
                      const char *message);

void http_stream_start(struct http_connection *connection, int status, const char *content_type);
void http_stream_write(struct http_connection *connection, const void *data, size_t length);
void http_stream_finish(struct http_connection *connection);

void http_set_producer(struct http_connection *connection, http_producer producer, void *state,
                       void (*release)(void *state));
/*
 * A producer that cannot go on until something else happens (a generation waiting for a slot)
 * says so, and is not called, nor counted as work, until http_wake_producers: then every
 * waiting producer runs again, to find out whether its turn has come.
 */
void http_producer_wait(struct http_connection *connection);
void http_wake_producers(void);
