/*
 * Each connection moves through three phases: waiting for a request head, reading its body,
 * and responding. The poll loop advances every connection as far as the bytes that have
 * arrived allow, and never waits for one: a slow client, a large body or a long generation
 * costs only its own connection's time.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "http_parse.h"
#include "http_server.h"
#include "heap.h"
#include "json.h"
#include "kprintf.h"
#include "strbuf.h"
#include "string.h"
#include "panic.h"
#include "tcp.h"

#define MAX_BODY_SIZE (1024 * 1024)
#define CHUNKED_INPUT_LIMIT (64 * 1024)
/* A client gets this long to deliver a whole request: slowloris clients are cut off. */
#define REQUEST_TIMEOUT_MS 10000
/* A producer runs only while less than this waits to be sent, so output cannot pile up. */
#define OUTPUT_HIGH_WATER (16 * 1024)
#define RECEIVE_CHUNK 4096
/*
 * After a refusal, keep reading (and discarding) for a moment before closing. Closing with
 * the client's bytes unread makes TCP send a reset, and a reset can destroy the response
 * before the client reads it: the "lingering close" of RFC 9112, section 9.6.
 */
#define LINGER_MS 1000

enum phase { WAITING_HEAD, READING_BODY, RESPONDING, CLOSING };

struct http_connection {
    bool in_use;
    struct tcp_connection *tcp;
    enum phase phase;
    struct strbuf head;           /* the current request's head; request points into it */
    struct strbuf input;          /* received bytes after the head */
    struct strbuf body;           /* the decoded body of a chunked request */
    struct strbuf output;
    size_t output_sent;
    struct http_request request;
    struct http_chunked_decoder chunked;
    uint64_t request_started_ms;
    uint64_t flushed_ms;          /* when the last response byte went to TCP, while CLOSING */
    bool peer_closed;
    bool close_after_response;
    bool streaming_chunked;
    http_producer producer;
    bool producer_waiting;        /* it waits for something else: not work until woken */
    void *producer_state;
    void (*release)(void *state);
};

static struct tcp_listener *listener;
static http_handler handler;
/* The server's share of TCP's table, which is sized from memory at boot: three quarters of
 * its connections are served; an eighth more are only answered 503, so that a client beyond
 * capacity hears why; the last eighth stays free for connections in TIME_WAIT or waiting to be
 * accepted, and for the other services. */
static struct http_connection *connections;
static int serving_slots;  /* connections[0 .. serving_slots) serve requests */
static int slot_count;     /* ... and the rest, up to slot_count, answer 503 */
static uint64_t now_ms;
/* Responses sent, by status (100 to 599), for /metrics. */
static uint64_t responses_by_status[600];

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default:  return "Internal Server Error";
    }
}

static void drop_front(struct strbuf *buffer, size_t count)
{
    memmove(buffer->data, buffer->data + count, buffer->length - count);
    buffer->length -= count;
}

static bool keeps_alive(const struct http_connection *c)
{
    return c->request.keep_alive && !c->close_after_response;
}

static void write_status_and_headers(struct http_connection *c, int status,
                                     const char *content_type, const char *extra_headers)
{
    responses_by_status[status]++;
    strbuf_printf(&c->output, "HTTP/1.1 %d %s\r\nServer: ringzero\r\nContent-Type: %s\r\n"
                  "Connection: %s\r\n%s%s", status, reason_phrase(status), content_type,
                  keeps_alive(c) ? "keep-alive" : "close",
                  /* every 503 here means busy: a client may come back in a second */
                  status == 503 ? "Retry-After: 1\r\n" : "", extra_headers ? extra_headers : "");
}

void http_reply(struct http_connection *c, int status, const char *content_type,
                const void *body, size_t length, const char *extra_headers)
{
    write_status_and_headers(c, status, content_type, extra_headers);
    strbuf_printf(&c->output, "Content-Length: %zu\r\n\r\n", length);
    strbuf_append(&c->output, body, length);
}

void http_reply_json(struct http_connection *c, int status, const struct strbuf *json)
{
    if (json->failed)
        http_reply_error(c, 500, "server_error", "out of memory while building the response");
    else
        http_reply(c, status, "application/json", json->data, json->length, NULL);
}

/* OpenAI's error shape: {"error": {"message", "type", "code"}}. */
void http_reply_error(struct http_connection *c, int status, const char *type,
                      const char *message)
{
    struct strbuf json;

    strbuf_init(&json);
    strbuf_append_str(&json, "{\"error\":{\"message\":");
    json_write_string(&json, message, strlen(message));
    strbuf_printf(&json, ",\"type\":\"%s\",\"code\":%d}}", type, status);
    http_reply_json(c, status, &json);
    strbuf_free(&json);
}

/* HTTP/1.0 has no chunked coding: there the end of a stream is the end of the connection. */
void http_stream_start(struct http_connection *c, int status, const char *content_type)
{
    c->streaming_chunked = c->request.minor_version >= 1;
    if (!c->streaming_chunked)
        c->close_after_response = true;
    write_status_and_headers(c, status, content_type, "Cache-Control: no-cache\r\n");
    strbuf_append_str(&c->output, c->streaming_chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                                                       : "\r\n");
}

void http_stream_write(struct http_connection *c, const void *data, size_t length)
{
    if (length == 0)
        return;
    if (c->streaming_chunked)
        strbuf_printf(&c->output, "%zx\r\n", length);
    strbuf_append(&c->output, data, length);
    if (c->streaming_chunked)
        strbuf_append_str(&c->output, "\r\n");
}

void http_stream_finish(struct http_connection *c)
{
    if (c->streaming_chunked)
        strbuf_append_str(&c->output, "0\r\n\r\n");
}

void http_set_producer(struct http_connection *c, http_producer producer, void *state,
                       void (*release)(void *state))
{
    c->producer = producer;
    c->producer_waiting = false;
    c->producer_state = state;
    c->release = release;
}

void http_producer_wait(struct http_connection *c)
{
    c->producer_waiting = true;
}

void http_wake_producers(void)
{
    for (int i = 0; i < slot_count; i++)
        connections[i].producer_waiting = false;
}

static void stop_producer(struct http_connection *c)
{
    if (c->producer && c->release)
        c->release(c->producer_state);
    c->producer = NULL;
}

/* Answer with an error and close: after a malformed request the byte stream cannot be
 * trusted, and a client refused for want of room should not keep its connection. */
static void close_with_error(struct http_connection *c, int status, const char *type,
                             const char *message)
{
    c->close_after_response = true;
    http_reply_error(c, status, type, message);
    c->phase = CLOSING;
}

static void refuse(struct http_connection *c, int status, const char *message)
{
    close_with_error(c, status, "invalid_request_error", message);
}

static size_t input_limit(const struct http_connection *c)
{
    if (c->phase == READING_BODY && c->request.has_content_length)
        return (size_t)c->request.content_length;
    if (c->phase == READING_BODY)
        return CHUNKED_INPUT_LIMIT;
    return HTTP_MAX_HEAD_SIZE;
}

static void receive_input(struct http_connection *c)
{
    char chunk[RECEIVE_CHUNK];
    long received;

    while (!c->peer_closed && c->input.length < input_limit(c)) {
        size_t room = input_limit(c) - c->input.length;
        received = tcp_recv(c->tcp, chunk, room < sizeof(chunk) ? room : sizeof(chunk));
        if (received < 0)
            c->peer_closed = true;
        if (received <= 0)
            return;
        strbuf_append(&c->input, chunk, (size_t)received);
    }
}

/* Keep the head in a buffer of its own, so the parsed request stays valid while the body
 * arrives and the input buffer moves. */
static bool take_head(struct http_connection *c)
{
    struct http_error error = { 0 };
    enum http_parse_result result = http_parse_head(c->input.data, c->input.length,
                                                    &c->request, &error);

    if (result == HTTP_INCOMPLETE)
        return false;
    if (result == HTTP_INVALID) {
        refuse(c, error.status, error.message);
        return false;
    }
    c->head.length = 0;
    strbuf_append(&c->head, c->input.data, c->request.head_length);
    drop_front(&c->input, c->request.head_length);
    http_parse_head(c->head.data, c->head.length, &c->request, &error);
    return true;
}

static bool check_framing(struct http_connection *c)
{
    const struct http_request *r = &c->request;

    if (r->has_content_length && r->content_length > MAX_BODY_SIZE) {
        refuse(c, 413, "the request body is larger than 1 MiB");
        return false;
    }
    if (!r->has_content_length && !r->chunked && http_method_is(r, "POST")) {
        refuse(c, 411, "a POST request needs a Content-Length or chunked body");
        return false;
    }
    return true;
}

static void append_body(void *context, const char *data, size_t length)
{
    strbuf_append(context, data, length);
}

/* True once the whole body is here. */
static bool read_body(struct http_connection *c)
{
    enum http_parse_result result;
    struct http_error error = { 0 };
    size_t used;

    if (!c->request.chunked)
        return c->input.length >= c->request.content_length;
    used = http_chunked_decode(&c->chunked, c->input.data, c->input.length, append_body,
                               &c->body, &result, &error);
    drop_front(&c->input, used);
    if (result == HTTP_INVALID)
        refuse(c, error.status, error.message);
    else if (c->body.length > MAX_BODY_SIZE)
        refuse(c, 413, "the request body is larger than 1 MiB");
    return result == HTTP_COMPLETE && c->phase == READING_BODY;
}

static void dispatch(struct http_connection *c)
{
    struct http_exchange exchange = { .request = &c->request, .connection = c };

    if (c->request.chunked) {
        exchange.body = c->body.data;
        exchange.body_length = c->body.length;
    } else {
        exchange.body = c->input.data;
        exchange.body_length = (size_t)c->request.content_length;
    }
    c->phase = RESPONDING;
    handler(&exchange);
}

static void start_next_request(struct http_connection *c)
{
    if (!c->request.chunked)
        drop_front(&c->input, (size_t)c->request.content_length);
    c->body.length = 0;
    c->chunked = (struct http_chunked_decoder){ 0 };
    c->phase = keeps_alive(c) ? WAITING_HEAD : CLOSING;
    c->request_started_ms = now_ms;
}

/* Go as far as the received bytes allow: several pipelined requests may be waiting. */
static void advance(struct http_connection *c)
{
    for (;;) {
        if (c->phase == WAITING_HEAD) {
            if (!take_head(c) || !check_framing(c))
                return;
            c->phase = READING_BODY;
        }
        if (c->phase == READING_BODY) {
            if (!read_body(c))
                return;
            dispatch(c);
        }
        if (c->phase != RESPONDING || c->producer)
            return;
        start_next_request(c);
    }
}

static size_t pending_output(const struct http_connection *c)
{
    return c->output.length - c->output_sent;
}

/* A response that ran out of memory half-built cannot be sent; end the connection instead. */
static void abandon_failed_output(struct http_connection *c)
{
    if (!c->output.failed)
        return;
    strbuf_free(&c->output);
    strbuf_init(&c->output);
    c->output_sent = 0;
    stop_producer(c);
    c->phase = CLOSING;
}

static void flush_output(struct http_connection *c)
{
    long sent;

    abandon_failed_output(c);
    if (pending_output(c) == 0)
        return;
    sent = tcp_send(c->tcp, c->output.data + c->output_sent, pending_output(c));
    if (sent < 0) {
        c->output.length = c->output_sent = 0;
        c->peer_closed = true;
        stop_producer(c);
        c->phase = CLOSING;
        return;
    }
    c->output_sent += (size_t)sent;
    if (c->output_sent == c->output.length)
        c->output.length = c->output_sent = 0;
}

static bool producer_can_run(const struct http_connection *c)
{
    return c->producer && !c->producer_waiting && pending_output(c) < OUTPUT_HIGH_WATER;
}

static void run_producer(struct http_connection *c)
{
    if (!producer_can_run(c))
        return;
    if (!c->producer(c, c->producer_state)) {
        stop_producer(c);
        advance(c);
    }
}

static void release_connection(struct http_connection *c)
{
    stop_producer(c);
    tcp_close(c->tcp);
    strbuf_free(&c->head);
    strbuf_free(&c->input);
    strbuf_free(&c->body);
    strbuf_free(&c->output);
    c->in_use = false;
}

static void check_timeout(struct http_connection *c)
{
    if (c->phase != WAITING_HEAD && c->phase != READING_BODY)
        return;
    if (now_ms - c->request_started_ms < REQUEST_TIMEOUT_MS)
        return;
    if (c->input.length == 0 && c->phase == WAITING_HEAD)
        c->phase = CLOSING;
    else
        refuse(c, 408, "the request did not arrive in time");
}

static void discard_input(struct http_connection *c)
{
    char scratch[RECEIVE_CHUNK];
    long received;

    while (!c->peer_closed && (received = tcp_recv(c->tcp, scratch, sizeof(scratch))) != 0)
        if (received < 0)
            c->peer_closed = true;
    c->input.length = 0;
}

/* CLOSING: drain what the client still sends until our answer is out and has had time to
 * arrive, or the client closes. */
static bool done_closing(struct http_connection *c)
{
    discard_input(c);
    if (pending_output(c) > 0)
        return false;
    if (!c->flushed_ms)
        c->flushed_ms = now_ms;
    return c->peer_closed || now_ms - c->flushed_ms >= LINGER_MS;
}

static void service(struct http_connection *c)
{
    if (c->phase != CLOSING) {
        receive_input(c);
        advance(c);
        run_producer(c);
    }
    flush_output(c);
    check_timeout(c);
    /* A client that closed its side with no request pending is done. */
    if (c->peer_closed && c->phase == WAITING_HEAD && c->input.length == 0)
        c->phase = CLOSING;
    if (c->phase == CLOSING && done_closing(c))
        release_connection(c);
}

/* The first free slot: a serving one while there is one, else one that answers 503. */
static struct http_connection *free_slot(void)
{
    for (int i = 0; i < slot_count; i++)
        if (!connections[i].in_use)
            return &connections[i];
    return NULL;
}

/* Serve the connection in slot c; a slot past the serving ones only answers 503. */
static void open_connection(struct http_connection *c, struct tcp_connection *tcp)
{
    *c = (struct http_connection){ .in_use = true, .tcp = tcp, .phase = WAITING_HEAD,
                                   .request_started_ms = now_ms };
    strbuf_init(&c->head);
    strbuf_init(&c->input);
    strbuf_init(&c->body);
    strbuf_init(&c->output);
    if (c >= &connections[serving_slots])
        close_with_error(c, 503, "server_error", "too many connections; try again later");
}

/*
 * Take connections only while a slot is free. The others wait in TCP's accept queue, and once
 * that is full, their SYNs are dropped and their clients try again: taking a connection with no
 * slot for it could only close it unanswered, or reset it if its request had come.
 */
static void accept_connections(void)
{
    struct http_connection *c;
    struct tcp_connection *tcp;

    while ((c = free_slot()) && (tcp = tcp_accept(listener)))
        open_connection(c, tcp);
}

void http_server_start(uint16_t port, http_handler request_handler)
{
    handler = request_handler;
    serving_slots = (int)(tcp_capacity() * 3 / 4);
    slot_count = serving_slots + (int)(tcp_capacity() / 8);
    connections = kcalloc((size_t)slot_count, sizeof(*connections));
    if (!connections)
        panic("http: no memory for %d connections", slot_count);
    kprintf("http: %d connections at once, %d more answered 503\n", serving_slots,
            slot_count - serving_slots);
    /* The accept queue holds as many as the table: a burst of connects arrives at once. */
    listener = tcp_listen(port, slot_count);
    if (!listener)
        kprintf("http: cannot listen on port %u\n", port);
    else
        kprintf("http: listening on port %u\n", port);
}

uint64_t http_server_responses(int status)
{
    return status >= 100 && status < 600 ? responses_by_status[status] : 0;
}

int http_server_open_connections(void)
{
    int open = 0;

    for (int i = 0; i < slot_count; i++)
        open += connections[i].in_use;
    return open;
}

/* A producer with room to write is work: the main loop must come round again, not halt. */
bool http_server_work_waiting(void)
{
    for (int i = 0; i < slot_count; i++) {
        const struct http_connection *c = &connections[i];
        if (c->in_use && producer_can_run(c))
            return true;
    }
    return false;
}

void http_server_poll(uint64_t now)
{
    now_ms = now;
    if (!listener)
        return;
    accept_connections();
    for (int i = 0; i < slot_count; i++)
        if (connections[i].in_use)
            service(&connections[i]);
}
