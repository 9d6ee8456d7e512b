/*
 * /metrics, /props and /slots. Every figure is read when asked for, from the subsystem that
 * keeps it; nothing here keeps counts of its own. Metric names follow llama.cpp's where it has
 * one (the llamacpp: prefix), so its dashboards work; the rest are ringzero's own.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "frames.h"
#include "generate.h"
#include "heap.h"
#include "infer.h"
#include "interrupts.h"
#include "json.h"
#include "metrics.h"
#include "net.h"
#include "slots.h"
#include "string.h"
#include "tcp.h"

static void describe(struct strbuf *out, const char *name, const char *type, const char *help)
{
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(struct strbuf *out, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    describe(out, name, type, help);
    strbuf_printf(out, "%s %lu\n", name, value);
}

static void write_generation_metrics(struct strbuf *out)
{
    const struct generate_counters *g = generate_counters();

    metric(out, "llamacpp:prompt_tokens_total", "counter", "Number of prompt tokens processed.",
           g->prompt_tokens);
    metric(out, "llamacpp:tokens_predicted_total", "counter",
           "Number of generation tokens processed.", g->predicted_tokens);
    metric(out, "llamacpp:requests_processing", "gauge", "Number of requests processing.",
           (uint64_t)slots_busy());
    metric(out, "llamacpp:requests_deferred", "gauge", "Number of requests deferred.",
           (uint64_t)slots_waiting());
    metric(out, "ringzero_generations_refused_total", "counter",
           "Generation requests refused with 503 because every slot and the line were full.",
           g->refused);
}

static void write_connection_metrics(struct strbuf *out)
{
    struct tcp_statistics tcp;

    tcp_get_statistics(&tcp);
    metric(out, "ringzero_tcp_connections_open", "gauge", "TCP connections in the table.",
           tcp.open);
    metric(out, "ringzero_tcp_connections_capacity", "gauge",
           "TCP connections the table holds (sized from memory at boot).", tcp.capacity);
    metric(out, "ringzero_tcp_connections_opened_total", "counter",
           "TCP connections opened by a SYN.", tcp.opened);
    metric(out, "ringzero_tcp_connections_refused_total", "counter",
           "SYNs dropped because the table or the accept queue was full.", tcp.refused);
    metric(out, "ringzero_tcp_resets_sent_total", "counter", "TCP resets sent.",
           tcp.resets_sent);
    metric(out, "ringzero_tcp_resets_received_total", "counter", "TCP resets received.",
           tcp.resets_received);
    metric(out, "ringzero_http_connections_open", "gauge", "HTTP connections being served.",
           (uint64_t)http_server_open_connections());
    describe(out, "ringzero_http_responses_total", "counter", "HTTP responses sent, by status.");
    for (int status = 100; status < 600; status++)
        if (http_server_responses(status))
            strbuf_printf(out, "ringzero_http_responses_total{status=\"%d\"} %lu\n", status,
                          http_server_responses(status));
}

static void write_memory_metrics(struct strbuf *out)
{
    struct heap_stats heap = heap_stats();

    metric(out, "ringzero_heap_used_bytes", "gauge", "Heap bytes in allocated blocks.",
           heap.used_bytes);
    metric(out, "ringzero_heap_free_bytes", "gauge", "Heap bytes in free blocks.",
           heap.free_bytes);
    metric(out, "ringzero_free_frames", "gauge", "Free 4 KiB page frames.",
           frames_free_count());
}

static void drop(struct strbuf *out, const char *reason, uint64_t count)
{
    strbuf_printf(out, "ringzero_nic_frames_dropped_total{reason=\"%s\"} %lu\n", reason, count);
}

static void write_network_metrics(struct strbuf *out)
{
    const struct net_counters *n = &net_counters;

    metric(out, "ringzero_nic_frames_received_total", "counter", "Frames the NIC delivered.",
           n->rx_frames);
    metric(out, "ringzero_nic_frames_sent_total", "counter", "Frames handed to the NIC.",
           n->tx_frames);
    describe(out, "ringzero_nic_frames_dropped_total", "counter",
             "Frames dropped, by the reason the network stack gave.");
    drop(out, "tx_failed", n->tx_failed);
    drop(out, "short_frame", n->short_frames);
    drop(out, "not_for_us", n->not_for_us);
    drop(out, "unknown_ethertype", n->unknown_ethertype);
    drop(out, "bad_arp", n->bad_arp);
    drop(out, "bad_ip_header", n->bad_ip_header);
    drop(out, "bad_ip_checksum", n->bad_ip_checksum);
    drop(out, "bad_ip_length", n->bad_ip_length);
    drop(out, "ip_fragment", n->ip_fragments);
    drop(out, "not_our_address", n->not_our_address);
    drop(out, "unknown_protocol", n->unknown_protocol);
    drop(out, "bad_icmp", n->bad_icmp);
    drop(out, "arp_queue_full", n->arp_queue_dropped);
}

static void write_interrupt_metrics(struct strbuf *out)
{
    describe(out, "ringzero_interrupts_total", "counter", "Device interrupts, by line.");
    for (int line = 0; line < 16; line++)
        if (interrupt_name((uint8_t)line))
            strbuf_printf(out, "ringzero_interrupts_total{line=\"%d\",device=\"%s\"} %lu\n",
                          line, interrupt_name((uint8_t)line), interrupt_count((uint8_t)line));
}

void metrics_handle(const struct http_exchange *exchange)
{
    struct strbuf out;

    strbuf_init(&out);
    write_generation_metrics(&out);
    write_connection_metrics(&out);
    write_memory_metrics(&out);
    write_network_metrics(&out);
    write_interrupt_metrics(&out);
    if (out.failed)
        http_reply_error(exchange->connection, 500, "server_error",
                         "out of memory while building the metrics");
    else
        http_reply(exchange->connection, 200, "text/plain; version=0.0.4", out.data,
                   out.length, NULL);
    strbuf_free(&out);
}

void props_handle(const struct http_exchange *exchange)
{
    const struct infer_model_info *model = infer_model();
    struct strbuf json;

    strbuf_init(&json);
    strbuf_append_str(&json, "{\"model_alias\":");
    json_write_string(&json, model->id, strlen(model->id));
    strbuf_append_str(&json, ",\"model_description\":");
    json_write_string(&json, model->description, strlen(model->description));
    strbuf_append_str(&json, ",\"default_generation_settings\":");
    generate_write_default_settings(&json);
    strbuf_printf(&json, ",\"total_slots\":%d,\"max_waiting\":%d,\"n_ctx\":%d,\"n_vocab\":%d}",
                  slots_total(), slots_waiting_limit(), model->context_length,
                  model->vocabulary_size);
    http_reply_json(exchange->connection, 200, &json);
    strbuf_free(&json);
}

void slots_handle(const struct http_exchange *exchange)
{
    struct strbuf json;

    strbuf_init(&json);
    strbuf_append_str(&json, "[");
    for (int i = 0; i < slots_total(); i++) {
        const struct slot_info *slot = slots_info(i);
        strbuf_printf(&json, "%s{\"id\":%d,\"n_ctx\":%d,\"is_processing\":%s", i ? "," : "", i,
                      infer_model()->context_length, slot->busy ? "true" : "false");
        if (slot->busy)
            strbuf_printf(&json, ",\"id_task\":%lu,\"n_prompt_tokens\":%d,\"stream\":%s,"
                          "\"next_token\":{\"n_decoded\":%d}", slot->task, slot->prompt_tokens,
                          slot->stream ? "true" : "false", slot->decoded);
        strbuf_append_str(&json, "}");
    }
    strbuf_append_str(&json, "]");
    http_reply_json(exchange->connection, 200, &json);
    strbuf_free(&json);
}
