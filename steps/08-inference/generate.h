/* Completions and chat completions: text generated from a prompt, whole or streamed. */
#pragma once

#include "http_server.h"

void generate_completion(const struct http_exchange *exchange);
void generate_chat(const struct http_exchange *exchange);
