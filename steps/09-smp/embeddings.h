/* Embeddings: one vector per input text, from the model behind infer.h. */
#pragma once

#include "http_server.h"

void embeddings_create(const struct http_exchange *exchange);
