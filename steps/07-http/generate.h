/* Completions and chat completions: text generated from a prompt, whole or streamed. */
#pragma once

#include <stdint.h>
#include "http_server.h"

/* Tokens a generation may write when its request does not say (max_tokens). */
#define GENERATE_DEFAULT_MAX_TOKENS 16

/* For /metrics: tokens read and written, and requests refused because the line was full. */
struct generate_counters {
    uint64_t prompt_tokens;
    uint64_t predicted_tokens;
    uint64_t refused;
};

const struct generate_counters *generate_counters(void);

void generate_completion(const struct http_exchange *exchange);
void generate_chat(const struct http_exchange *exchange);
