/*
 * What the server says about itself, in the shapes of llama.cpp's server: GET /metrics
 * (Prometheus's text format), GET /props (the model and its default settings) and GET /slots
 * (what each generation slot is doing).
 */
#pragma once

#include "http_server.h"

void metrics_handle(const struct http_exchange *exchange);
void props_handle(const struct http_exchange *exchange);
void slots_handle(const struct http_exchange *exchange);
