/*
 * Completions and chat completions.
 *
 * A generation runs one step of the model per poll of its connection (a producer, see
 * http_server.h), reading the prompt a token at a time and then writing one, so the server
 * keeps answering other clients, /health included, while a long one runs. With "stream": true
 * each token goes out at once as a Server-Sent Event; otherwise the answer is sent whole at
 * the end. At most slots_total() generations run at once; the others wait in line for a slot
 * (slots.h), holding only their prompt's tokens until then.
 *
 * The chat template, documented for clients that render prompts themselves: every message
 * becomes "<|role|>\n" followed by its content and "\n", and the prompt ends with
 * "<|assistant|>\n", where the model continues.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "api_fields.h"
#include "generate.h"
#include "heap.h"
#include "infer.h"
#include "kprintf.h"
#include "rtc.h"
#include "slots.h"
#include "string.h"
#include "x86.h"

#define MAX_STOPS 4
#define DEFAULT_MAX_TOKENS 16
#define MICROS 1000000
/* Whole numbers, as generate_write_default_settings prints them. */
#define DEFAULT_TEMPERATURE (1 * MICROS)
#define DEFAULT_TOP_P (1 * MICROS)

enum kind { COMPLETION, CHAT };

struct generation {
    enum kind kind;
    bool stream;
    struct infer_sampling sampling;
    int *prompt;                 /* the prompt's tokens, until its session starts */
    int slot;                    /* SLOT_NONE while waiting in line */
    uint64_t task;               /* its number, counted from 1 since boot */
    struct infer_session *session;
    int previous;                /* the last token read or written: it shapes the next piece */
    int prompt_tokens, completion_tokens;
    int64_t max_tokens;
    struct strbuf text;          /* generated so far */
    size_t streamed;             /* how much of text the client has been sent */
    struct strbuf stops[MAX_STOPS];
    int stop_count;
    bool role_sent;              /* a chat stream names the role in its first event only */
    char id[32];
    uint64_t created;
    const char *finish_reason;   /* NULL while generating */
};

static uint64_t generation_count;
static struct generate_counters counters;

const struct generate_counters *generate_counters(void)
{
    return &counters;
}

static void release_generation(void *state)
{
    struct generation *g = state;

    slots_leave(g, g->slot);
    if (g->slot != SLOT_NONE)
        http_wake_producers();
    kfree(g->prompt);
    if (g->session)
        infer_finish(g->session);
    strbuf_free(&g->text);
    for (int i = 0; i < g->stop_count; i++)
        strbuf_free(&g->stops[i]);
    kfree(g);
}

static bool add_stop(struct generation *g, const struct api_request *request,
                     const struct json_value *value)
{
    if (value->type != JSON_STRING || value->string.length == 0 || g->stop_count == MAX_STOPS) {
        api_reject_field(request, "stop", "must be a non-empty string or up to 4 of them");
        return false;
    }
    strbuf_init(&g->stops[g->stop_count]);
    strbuf_append(&g->stops[g->stop_count++], value->string.bytes, value->string.length);
    return true;
}

static bool read_stops(struct generation *g, const struct api_request *request)
{
    const struct json_value *stop = json_get(request->root, "stop");

    if (!stop || stop->type == JSON_NULL)
        return true;
    if (stop->type != JSON_ARRAY)
        return add_stop(g, request, stop);
    for (size_t i = 0; i < stop->array.count; i++)
        if (!add_stop(g, request, &stop->array.items[i]))
            return false;
    return true;
}

/* For /props: the settings a generation gets when its request names none. */
void generate_write_default_settings(struct strbuf *json)
{
    strbuf_printf(json, "{\"n_ctx\":%d,\"params\":{\"n_predict\":%d,\"temperature\":%d.0,"
                  "\"top_p\":%d.0,\"stream\":false}}", infer_model()->context_length,
                  DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE / MICROS,
                  DEFAULT_TOP_P / MICROS);
}

/* The settings every generation shares, each checked against its documented range. */
static bool read_settings(struct generation *g, const struct api_request *request)
{
    int64_t n = 1, seed = -1;

    g->max_tokens = DEFAULT_MAX_TOKENS;
    g->sampling = (struct infer_sampling){ .temperature_micros = DEFAULT_TEMPERATURE,
                                           .top_p_micros = DEFAULT_TOP_P };
    if (!api_int_field(request, "max_tokens", 0, infer_model()->context_length, &g->max_tokens) ||
        !api_scaled_field(request, "temperature", 0, 2 * MICROS, "from 0 to 2",
                          &g->sampling.temperature_micros) ||
        !api_scaled_field(request, "top_p", 1, MICROS, "greater than 0 and at most 1",
                          &g->sampling.top_p_micros) ||
        !api_int_field(request, "seed", 0, INT64_MAX, &seed) ||
        !api_int_field(request, "n", 1, 1, &n) ||
        !api_bool_field(request, "stream", &g->stream) || !read_stops(g, request))
        return false;
    /* Without a seed every request draws differently: take one from the time stamp counter. */
    g->sampling.seed = seed >= 0 ? (uint64_t)seed : rdtsc();
    return true;
}

static void write_model_and_id(struct strbuf *json, const struct generation *g,
                               const char *object)
{
    strbuf_printf(json, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lu,\"model\":", g->id,
                  object, g->created);
    json_write_string(json, infer_model()->id, strlen(infer_model()->id));
}

static void write_usage(struct strbuf *json, const struct generation *g)
{
    strbuf_printf(json, ",\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                  "\"total_tokens\":%d}", g->prompt_tokens, g->completion_tokens,
                  g->prompt_tokens + g->completion_tokens);
}

static void write_finish_reason(struct strbuf *json, const struct generation *g)
{
    if (g->finish_reason)
        strbuf_printf(json, ",\"finish_reason\":\"%s\"}", g->finish_reason);
    else
        strbuf_append_str(json, ",\"finish_reason\":null}");
}

/* One choice of a response or of a stream event, holding text[from, to). */
static void write_choice(struct strbuf *json, struct generation *g, size_t from, size_t to)
{
    if (g->kind == COMPLETION) {
        strbuf_append_str(json, "{\"index\":0,\"text\":");
        json_write_string(json, g->text.data + from, to - from);
        strbuf_append_str(json, ",\"logprobs\":null");
    } else {
        strbuf_append_str(json, g->stream ? "{\"index\":0,\"delta\":{" :
                                            "{\"index\":0,\"message\":{");
        if (!g->role_sent)
            strbuf_append_str(json, "\"role\":\"assistant\",");
        g->role_sent = true;
        strbuf_append_str(json, "\"content\":");
        json_write_string(json, g->text.data + from, to - from);
        strbuf_append_str(json, "}");
    }
    write_finish_reason(json, g);
}

static void reply_whole(struct http_connection *connection, struct generation *g)
{
    struct strbuf json;

    strbuf_init(&json);
    write_model_and_id(&json, g, g->kind == COMPLETION ? "text_completion" : "chat.completion");
    strbuf_append_str(&json, ",\"choices\":[");
    write_choice(&json, g, 0, g->text.length);
    strbuf_append_str(&json, "]");
    write_usage(&json, g);
    strbuf_append_str(&json, "}");
    http_reply_json(connection, 200, &json);
    strbuf_free(&json);
}

static void send_event(struct http_connection *connection, struct generation *g, size_t to)
{
    struct strbuf event;

    strbuf_init(&event);
    strbuf_append_str(&event, "data: ");
    write_model_and_id(&event, g, g->kind == COMPLETION ? "text_completion"
                                                        : "chat.completion.chunk");
    strbuf_append_str(&event, ",\"choices\":[");
    write_choice(&event, g, g->streamed, to);
    strbuf_append_str(&event, "]");
    if (g->finish_reason)
        write_usage(&event, g);
    strbuf_append_str(&event, "}\n\n");
    http_stream_write(connection, event.data, event.length);
    strbuf_free(&event);
    g->streamed = to;
}

/* Where text ending here might still turn into a stop sequence, hold it back. */
static size_t held_back_for_stops(const struct generation *g)
{
    size_t held = 0;

    for (int s = 0; s < g->stop_count; s++) {
        const struct strbuf *stop = &g->stops[s];
        for (size_t n = stop->length - 1; n > held; n--)
            if (n <= g->text.length &&
                memcmp(g->text.data + g->text.length - n, stop->data, n) == 0) {
                held = n;
                break;
            }
    }
    return held;
}

/* Never split a UTF-8 character between two events: end before an unfinished one. */
static size_t complete_utf8(const struct strbuf *text, size_t end)
{
    size_t lead = end, needed;
    unsigned char byte;

    while (lead > 0 && end - lead < 4 && ((unsigned char)text->data[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead == 0)
        return end;
    byte = (unsigned char)text->data[lead - 1];
    needed = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
    return end - (lead - 1) >= needed ? end : lead - 1;
}

static void stream_progress(struct http_connection *connection, struct generation *g)
{
    size_t ready = g->text.length;

    if (!g->finish_reason)
        ready = complete_utf8(&g->text, g->text.length - held_back_for_stops(g));
    if (ready > g->streamed || g->finish_reason)
        send_event(connection, g, ready);
    if (g->finish_reason) {
        http_stream_write(connection, "data: [DONE]\n\n", 14);
        http_stream_finish(connection);
    }
}

/*
 * Cut the text at the first stop sequence, if one has appeared. Only the last piece can have
 * completed one, so search just the tail that overlaps it: linear time over a generation.
 */
static bool reached_stop(struct generation *g, size_t piece_start)
{
    for (int s = 0; s < g->stop_count; s++) {
        const struct strbuf *stop = &g->stops[s];
        size_t from = piece_start >= stop->length ? piece_start - stop->length + 1 : 0;
        for (size_t at = from; at + stop->length <= g->text.length; at++)
            if (memcmp(g->text.data + at, stop->data, stop->length) == 0) {
                g->text.length = at;
                return true;
            }
    }
    return false;
}

/* One step of the model: a prompt token read, or a token written, or the end. */
static void generate_one(struct generation *g)
{
    int token;

    if (g->completion_tokens >= g->max_tokens) {
        g->finish_reason = "length";
        return;
    }
    token = infer_next(g->session);
    if (token == INFER_READING)
        return;
    if (token == INFER_END || token == INFER_FULL) {
        g->finish_reason = token == INFER_END ? "stop" : "length";
        return;
    }
    size_t piece_start = g->text.length;

    g->completion_tokens++;
    counters.predicted_tokens++;
    slots_info(g->slot)->decoded = g->completion_tokens;
    infer_append_piece(g->previous, token, &g->text);
    g->previous = token;
    if (reached_stop(g, piece_start))
        g->finish_reason = "stop";
}

/* First in line with a slot free: start reading the prompt. False if that failed (and the
 * client has its error). */
static bool begin(struct http_connection *connection, struct generation *g)
{
    g->session = infer_start(g->prompt, g->prompt_tokens, &g->sampling);
    kfree(g->prompt);
    g->prompt = NULL;
    if (!g->session) {
        http_reply_error(connection, 503, "server_error",
                         "server busy: no memory for another generation");
        return false;
    }
    counters.prompt_tokens += (uint64_t)g->prompt_tokens;
    *slots_info(g->slot) = (struct slot_info){ .busy = true, .task = g->task,
                                               .prompt_tokens = g->prompt_tokens,
                                               .stream = g->stream };
    if (g->stream)
        http_stream_start(connection, 200, "text/event-stream");
    return true;
}

static bool produce(struct http_connection *connection, void *state)
{
    struct generation *g = state;

    if (!g->session) {
        if ((g->slot = slots_take(g)) == SLOT_NONE) {
            http_producer_wait(connection);
            return true;
        }
        return begin(connection, g);
    }
    generate_one(g);
    if (g->stream)
        stream_progress(connection, g);
    else if (g->finish_reason)
        reply_whole(connection, g);
    return g->finish_reason == NULL;
}

static void refuse_busy(struct http_connection *connection)
{
    char message[128];

    snprintf(message, sizeof(message), "server busy: %d generations running and %d waiting; "
             "try again later", slots_busy(), slots_waiting());
    http_reply_error(connection, 503, "server_error", message);
}

/* prompt_field names the request's field the prompt came from, for a client's error. */
static void start(const struct api_request *request, struct generation *g, const char *prompt,
                  size_t length, const char *prompt_field)
{
    int *tokens;
    int count = api_tokenize_field(request, prompt_field, prompt, length, &tokens);

    if (count < 0) {
        release_generation(g);
        return;
    }
    g->prompt = tokens;
    g->prompt_tokens = count;
    g->previous = count > 0 ? tokens[count - 1] : -1;
    if (!slots_enter(g)) {
        counters.refused++;
        refuse_busy(request->connection);
        release_generation(g);
        return;
    }
    g->created = rtc_unix_time();
    g->task = ++generation_count;
    snprintf(g->id, sizeof(g->id), "%s-%lu", g->kind == COMPLETION ? "cmpl" : "chatcmpl",
             g->task);
    http_set_producer(request->connection, produce, g, release_generation);
}

static struct generation *new_generation(const struct api_request *request, enum kind kind)
{
    struct generation *g = kcalloc(1, sizeof(*g));

    if (!g) {
        http_reply_error(request->connection, 500, "server_error", "out of memory");
        return NULL;
    }
    g->kind = kind;
    g->slot = SLOT_NONE;
    strbuf_init(&g->text);
    if (!read_settings(g, request)) {
        release_generation(g);
        return NULL;
    }
    return g;
}

/* "prompt" is a string, or an array holding exactly one. */
static const struct json_value *read_prompt(const struct api_request *request)
{
    const struct json_value *prompt = json_get(request->root, "prompt");

    if (prompt && prompt->type == JSON_ARRAY && prompt->array.count == 1)
        prompt = &prompt->array.items[0];
    if (!prompt || prompt->type != JSON_STRING) {
        api_reject_field(request, "prompt", "is required and must be a string");
        return NULL;
    }
    return prompt;
}

void generate_completion(const struct http_exchange *exchange)
{
    struct api_request request;
    const struct json_value *prompt;
    struct generation *g;

    if (!api_parse_body(exchange, &request))
        return;
    if ((prompt = read_prompt(&request)) && (g = new_generation(&request, COMPLETION)))
        start(&request, g, prompt->string.bytes, prompt->string.length, "prompt");
    json_free(request.root);
}

static bool valid_role(const struct json_value *role)
{
    static const char *const roles[] = { "system", "user", "assistant" };

    for (int i = 0; role && role->type == JSON_STRING && i < 3; i++)
        if (role->string.length == strlen(roles[i]) &&
            memcmp(role->string.bytes, roles[i], role->string.length) == 0)
            return true;
    return false;
}

static bool render_chat(const struct api_request *request, struct strbuf *prompt)
{
    const struct json_value *messages = api_field(request, "messages", JSON_ARRAY, true);

    if (messages && messages->array.count == 0)
        api_reject_field(request, "messages", "must not be empty");
    if (!messages || messages->array.count == 0)
        return false;
    for (size_t i = 0; i < messages->array.count; i++) {
        const struct json_value *role = json_get(&messages->array.items[i], "role");
        const struct json_value *content = json_get(&messages->array.items[i], "content");
        if (!valid_role(role) || !content || content->type != JSON_STRING) {
            api_reject_field(request, "messages", "must be objects with a role (system, user "
                             "or assistant) and a string content");
            return false;
        }
        strbuf_append_str(prompt, "<|");
        strbuf_append(prompt, role->string.bytes, role->string.length);
        strbuf_append_str(prompt, "|>\n");
        strbuf_append(prompt, content->string.bytes, content->string.length);
        strbuf_append_str(prompt, "\n");
    }
    strbuf_append_str(prompt, "<|assistant|>\n");
    return true;
}

void generate_chat(const struct http_exchange *exchange)
{
    struct api_request request;
    struct strbuf prompt;
    struct generation *g;

    if (!api_parse_body(exchange, &request))
        return;
    strbuf_init(&prompt);
    if (render_chat(&request, &prompt) && (g = new_generation(&request, CHAT)))
        start(&request, g, prompt.data, prompt.length, "messages");
    strbuf_free(&prompt);
    json_free(request.root);
}
