#pragma once

#include "http_server.h"

void generate_completion(const struct http_exchange *exchange);
void generate_chat(const struct http_exchange *exchange);
void generate_embeddings(const struct http_exchange *exchange);
