/*
 * Reading the fields of a JSON request body. Each reader either fills in the value or
 * answers the request with a 400 that names the field, and returns false.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "http_server.h"
#include "json.h"

struct api_request {
    struct http_connection *connection;
    struct json_value *root;
};

bool api_parse_body(const struct http_exchange *exchange, struct api_request *request);
void api_reject_field(const struct api_request *request, const char *field, const char *problem);
const struct json_value *api_field(const struct api_request *request, const char *name,
                                   enum json_type type, bool required);
bool api_int_field(const struct api_request *request, const char *name, int64_t minimum,
                   int64_t maximum, int64_t *value);
bool api_scaled_field(const struct api_request *request, const char *name, int64_t minimum,
                      int64_t maximum, const char *range, int64_t *value);
bool api_bool_field(const struct api_request *request, const char *name, bool *value);
int api_tokenize_field(const struct api_request *request, const char *field,
                       const char *text, size_t length, int **tokens);
