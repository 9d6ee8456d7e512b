/*
 * The API: the endpoints of llama.cpp's server and of OpenAI's API, routed by method and
 * path. Requests and answers follow their shapes, so their clients work unchanged. Completions
 * and chat live in generate.c, embeddings in embeddings.c; this file has the router and the
 * quick endpoints.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "api.h"
#include "api_fields.h"
#include "embeddings.h"
#include "generate.h"
#include "heap.h"
#include "infer.h"
#include "metrics.h"
#include "rtc.h"
#include "kprintf.h"
#include "string.h"

struct route {
    const char *method;
    const char *path;
    void (*handle)(const struct http_exchange *exchange);
};

static void handle_health(const struct http_exchange *exchange)
{
    struct strbuf json;

    strbuf_init(&json);
    strbuf_append_str(&json, "{\"status\":\"ok\",\"model\":");
    json_write_string(&json, infer_model()->id, strlen(infer_model()->id));
    strbuf_append_str(&json, "}");
    http_reply_json(exchange->connection, 200, &json);
    strbuf_free(&json);
}

static void handle_models(const struct http_exchange *exchange)
{
    const struct infer_model_info *model = infer_model();
    struct strbuf json;

    strbuf_init(&json);
    strbuf_append_str(&json, "{\"object\":\"list\",\"data\":[{\"id\":");
    json_write_string(&json, model->id, strlen(model->id));
    strbuf_printf(&json, ",\"object\":\"model\",\"created\":%lu,\"owned_by\":\"ringzero\","
                  "\"meta\":{\"description\":", rtc_unix_time());
    json_write_string(&json, model->description, strlen(model->description));
    strbuf_printf(&json, ",\"n_params\":%lu,\"n_vocab\":%d,\"n_ctx_train\":%d,\"n_embd\":%d}}]}",
                  model->parameters, model->vocabulary_size, model->context_length,
                  model->embedding_length);
    http_reply_json(exchange->connection, 200, &json);
    strbuf_free(&json);
}

/*
 * llama.cpp: {"content": "..."} → {"tokens": [...]}. Any length: counting the tokens of a text
 * is how a client finds out whether it fits the context.
 */
static void handle_tokenize(const struct http_exchange *exchange)
{
    struct api_request request;
    const struct json_value *content;
    struct strbuf json;
    int *tokens, count;

    if (!api_parse_body(exchange, &request))
        return;
    content = api_field(&request, "content", JSON_STRING, true);
    if (content &&
        (count = infer_tokenize(content->string.bytes, content->string.length, &tokens)) < 0) {
        http_reply_error(exchange->connection, 500, "server_error", "out of memory");
    } else if (content) {
        strbuf_init(&json);
        strbuf_append_str(&json, "{\"tokens\":[");
        for (int i = 0; i < count; i++)
            strbuf_printf(&json, "%s%d", i ? "," : "", tokens[i]);
        strbuf_append_str(&json, "]}");
        http_reply_json(exchange->connection, 200, &json);
        strbuf_free(&json);
        kfree(tokens);
    }
    json_free(request.root);
}

/* llama.cpp: {"tokens": [...]} → {"content": "..."} */
static void handle_detokenize(const struct http_exchange *exchange)
{
    struct api_request request;
    const struct json_value *tokens;
    struct strbuf text, json;
    int64_t token, previous = -1;   /* no token before the first */

    if (!api_parse_body(exchange, &request))
        return;
    tokens = api_field(&request, "tokens", JSON_ARRAY, true);
    strbuf_init(&text);
    for (size_t i = 0; tokens && i < tokens->array.count; i++) {
        if (!json_number_int64(&tokens->array.items[i], &token) || !infer_is_token((int)token) ||
            token > INT32_MAX) {
            api_reject_field(&request, "tokens", "must hold token ids of this model's vocabulary");
            tokens = NULL;
            break;
        }
        infer_append_piece((int)previous, (int)token, &text);
        previous = token;
    }
    if (tokens) {
        strbuf_init(&json);
        strbuf_append_str(&json, "{\"content\":");
        json_write_string(&json, text.data, text.length);
        strbuf_append_str(&json, "}");
        http_reply_json(exchange->connection, 200, &json);
        strbuf_free(&json);
    }
    strbuf_free(&text);
    json_free(request.root);
}

static const struct route routes[] = {
    { "GET", "/health", handle_health },
    { "GET", "/v1/models", handle_models },
    { "GET", "/metrics", metrics_handle },
    { "GET", "/props", props_handle },
    { "GET", "/slots", slots_handle },
    { "POST", "/v1/completions", generate_completion },
    { "POST", "/v1/chat/completions", generate_chat },
    { "POST", "/v1/embeddings", embeddings_create },
    { "POST", "/tokenize", handle_tokenize },
    { "POST", "/detokenize", handle_detokenize },
};

#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

/* The path without a query string. */
static bool path_is(const struct http_text *target, const char *path)
{
    size_t length = 0;

    while (length < target->length && target->data[length] != '?')
        length++;
    return strlen(path) == length && memcmp(target->data, path, length) == 0;
}

/* 405 names the methods the path does support, in an Allow header, as RFC 9110 requires. */
static void reply_wrong_method(const struct http_exchange *exchange)
{
    static const char body[] = "{\"error\":{\"message\":\"method not allowed for this path\","
                               "\"type\":\"invalid_request_error\",\"code\":405}}";
    char allow[64] = "Allow: ";
    size_t used = strlen(allow);

    for (size_t i = 0; i < ROUTE_COUNT; i++)
        if (path_is(&exchange->request->target, routes[i].path))
            used += (size_t)snprintf(allow + used, sizeof(allow) - used, "%s%s",
                                     used > strlen("Allow: ") ? ", " : "", routes[i].method);
    snprintf(allow + used, sizeof(allow) - used, "\r\n");
    http_reply(exchange->connection, 405, "application/json", body, sizeof(body) - 1, allow);
}

void api_handle(const struct http_exchange *exchange)
{
    const struct http_request *request = exchange->request;
    bool path_known = false;

    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (!path_is(&request->target, routes[i].path))
            continue;
        path_known = true;
        if (http_method_is(request, routes[i].method)) {
            routes[i].handle(exchange);
            return;
        }
    }
    if (path_known)
        reply_wrong_method(exchange);
    else
        http_reply_error(exchange->connection, 404, "invalid_request_error",
                         "no such endpoint");
}
