/*
 * OpenAI's /v1/embeddings: a vector for each input text.
 *
 * Like a generation, a request runs one step of the model per poll of its connection (a
 * producer, see http_server.h), so the server keeps answering other clients while it runs.
 * Every input is tokenized before any is embedded, so that a bad one is refused at once.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "api_fields.h"
#include "embeddings.h"
#include "heap.h"
#include "infer.h"
#include "kprintf.h"
#include "string.h"

#define MAX_EMBEDDING_INPUTS 16

/* The inputs of a request, embedded one after another. */
struct embeddings {
    int *tokens[MAX_EMBEDDING_INPUTS];
    int counts[MAX_EMBEDDING_INPUTS];
    size_t count, done;
    struct infer_session *session;   /* embedding input number done */
    bool base64;
    int total_tokens;
    struct strbuf json;
};

static void release_embeddings(void *state)
{
    struct embeddings *e = state;

    if (e->session)
        infer_finish(e->session);
    for (size_t i = 0; i < e->count; i++)
        kfree(e->tokens[i]);
    strbuf_free(&e->json);
    kfree(e);
}

static void reply_embeddings(struct http_connection *connection, struct embeddings *e)
{
    strbuf_append_str(&e->json, "],\"model\":");
    json_write_string(&e->json, infer_model()->id, strlen(infer_model()->id));
    strbuf_printf(&e->json, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}",
                  e->total_tokens, e->total_tokens);
    http_reply_json(connection, 200, &e->json);
}

static bool produce_embeddings(struct http_connection *connection, void *state)
{
    struct embeddings *e = state;

    if (!e->session)
        e->session = infer_start_embedding(e->tokens[e->done], e->counts[e->done]);
    if (!e->session) {
        http_reply_error(connection, 503, "server_error",
                         "server busy: no memory for another embedding");
        return false;
    }
    if (infer_next(e->session) == INFER_READING)
        return true;
    strbuf_printf(&e->json, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":",
                  e->done ? "," : "", e->done);
    infer_write_embedding(e->session, e->base64, &e->json);
    strbuf_append_str(&e->json, "}");
    infer_finish(e->session);
    e->session = NULL;
    if (++e->done < e->count)
        return true;
    reply_embeddings(connection, e);
    return false;
}

/* OpenAI's "encoding_format": "float" (the default) or "base64" of little-endian float32. */
static bool read_encoding_format(const struct api_request *request, bool *base64)
{
    const struct json_value *format = json_get(request->root, "encoding_format");

    if (!format || format->type == JSON_NULL)
        return true;
    if (format->type == JSON_STRING && strcmp(format->string.bytes, "float") == 0)
        return true;
    if (format->type == JSON_STRING && strcmp(format->string.bytes, "base64") == 0) {
        *base64 = true;
        return true;
    }
    api_reject_field(request, "encoding_format", "must be \"float\" or \"base64\"");
    return false;
}

/* "input" is a string or an array of strings; each gets one embedding. */
static bool read_inputs(const struct api_request *request, struct embeddings *e)
{
    const struct json_value *input = json_get(request->root, "input");
    size_t count = input && input->type == JSON_ARRAY ? input->array.count : 1;

    if (!input || (input->type != JSON_STRING && input->type != JSON_ARRAY) || count == 0 ||
        count > MAX_EMBEDDING_INPUTS) {
        api_reject_field(request, "input", "must be a string or an array of 1 to 16 strings");
        return false;
    }
    for (; e->count < count; e->count++) {
        const struct json_value *item = input->type == JSON_ARRAY ?
                                        &input->array.items[e->count] : input;
        int tokens;
        if (item->type != JSON_STRING) {
            api_reject_field(request, "input", "must be a string or an array of strings");
            return false;
        }
        tokens = api_tokenize_field(request, "input", item->string.bytes, item->string.length,
                                    &e->tokens[e->count]);
        if (tokens < 0)
            return false;
        e->counts[e->count] = tokens;
        e->total_tokens += tokens;
    }
    return true;
}

void embeddings_create(const struct http_exchange *exchange)
{
    struct api_request request;
    struct embeddings *e;

    if (!api_parse_body(exchange, &request))
        return;
    e = kcalloc(1, sizeof(*e));
    if (!e) {
        http_reply_error(exchange->connection, 500, "server_error", "out of memory");
        json_free(request.root);
        return;
    }
    strbuf_init(&e->json);
    if (!read_encoding_format(&request, &e->base64) || !read_inputs(&request, e)) {
        release_embeddings(e);
    } else {
        strbuf_append_str(&e->json, "{\"object\":\"list\",\"data\":[");
        http_set_producer(exchange->connection, produce_embeddings, e, release_embeddings);
    }
    json_free(request.root);
}
