#pragma once

#include "http_server.h"

void api_handle(const struct http_exchange *exchange);
