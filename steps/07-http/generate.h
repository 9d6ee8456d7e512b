/* Completions and chat completions: text generated from a prompt, whole or streamed. */
#pragma once

#include <stdint.h>
#include "http_server.h"

/* For /metrics: tokens read and written, and requests refused because the line was full. */
struct generate_counters {
    uint64_t prompt_tokens;
    uint64_t predicted_tokens;
    uint64_t refused;
};

const struct generate_counters *generate_counters(void);
/* {"n_ctx", "params": {...}}: what a request that names no settings gets, for /props. */
void generate_write_default_settings(struct strbuf *json);

void generate_completion(const struct http_exchange *exchange);
void generate_chat(const struct http_exchange *exchange);
