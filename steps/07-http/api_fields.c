/*
 * Field readers for the API. Optional fields keep the caller's default when absent; a field
 * that is present must have the right type and range. Error messages name the field, as
 * OpenAI's API does, so a client can see what to fix.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "api_fields.h"
#include "heap.h"
#include "infer.h"
#include "kprintf.h"
#include "string.h"

#define SCALE 1000000

static const char *type_name(enum json_type type)
{
    switch (type) {
    case JSON_NUMBER: return "a number";
    case JSON_STRING: return "a string";
    case JSON_ARRAY:  return "an array";
    case JSON_OBJECT: return "an object";
    default:          return "a value";
    }
}

bool api_parse_body(const struct http_exchange *exchange, struct api_request *request)
{
    struct json_error error;
    char message[160];

    request->connection = exchange->connection;
    request->root = json_parse(exchange->body, exchange->body_length, &error);
    if (!request->root) {
        snprintf(message, sizeof(message), "the body is not valid JSON: %s", error.message);
        http_reply_error(exchange->connection, 400, "invalid_request_error", message);
        return false;
    }
    if (request->root->type != JSON_OBJECT) {
        http_reply_error(exchange->connection, 400, "invalid_request_error",
                         "the body must be a JSON object");
        json_free(request->root);
        return false;
    }
    return true;
}

void api_reject_field(const struct api_request *request, const char *field, const char *problem)
{
    char message[160];

    snprintf(message, sizeof(message), "'%s' %s", field, problem);
    http_reply_error(request->connection, 400, "invalid_request_error", message);
}

/* The field's value if it has the type; NULL if absent (and optional) or after a 400. */
const struct json_value *api_field(const struct api_request *request, const char *name,
                                   enum json_type type, bool required)
{
    const struct json_value *value = json_get(request->root, name);
    char problem[48];

    if (!value || value->type == JSON_NULL) {
        if (required)
            api_reject_field(request, name, "is required");
        return NULL;
    }
    if (value->type != type) {
        snprintf(problem, sizeof(problem), "must be %s", type_name(type));
        api_reject_field(request, name, problem);
        return NULL;
    }
    return value;
}

static bool present(const struct api_request *request, const char *name)
{
    const struct json_value *value = json_get(request->root, name);
    return value && value->type != JSON_NULL;
}

bool api_int_field(const struct api_request *request, const char *name, int64_t minimum,
                   int64_t maximum, int64_t *value)
{
    const struct json_value *field;
    char problem[80];

    if (!present(request, name))
        return true;
    field = api_field(request, name, JSON_NUMBER, false);
    if (!field)
        return false;
    if (!json_number_int64(field, value) || *value < minimum || *value > maximum) {
        snprintf(problem, sizeof(problem), "must be an integer from %ld to %ld", minimum,
                 maximum);
        api_reject_field(request, name, problem);
        return false;
    }
    return true;
}

/* A number in millionths, for temperature and top_p; range says the limits in words. */
bool api_scaled_field(const struct api_request *request, const char *name, int64_t minimum,
                      int64_t maximum, const char *range, int64_t *value)
{
    const struct json_value *field;
    char problem[80];

    if (!present(request, name))
        return true;
    field = api_field(request, name, JSON_NUMBER, false);
    if (!field)
        return false;
    if (!json_number_scaled(field, SCALE, value) || *value < minimum || *value > maximum) {
        snprintf(problem, sizeof(problem), "must be a number %s", range);
        api_reject_field(request, name, problem);
        return false;
    }
    return true;
}

bool api_bool_field(const struct api_request *request, const char *name, bool *value)
{
    const struct json_value *field = json_get(request->root, name);

    if (!field || field->type == JSON_NULL)
        return true;
    if (field->type != JSON_TRUE && field->type != JSON_FALSE) {
        api_reject_field(request, name, "must be a boolean");
        return false;
    }
    *value = field->type == JSON_TRUE;
    return true;
}

/*
 * Tokens of text in a new array; -1 after a 400 when they do not fit the context. The message
 * names the field and both sizes, so a client knows how much to cut.
 */
int api_tokenize_field(const struct api_request *request, const char *field, const char *text,
                       size_t length, int **tokens)
{
    int context = infer_model()->context_length;
    int count = infer_tokenize(text, length, tokens);
    char message[96];

    if (count < 0) {
        http_reply_error(request->connection, 500, "server_error", "out of memory");
        return -1;
    }
    if (count > context) {
        snprintf(message, sizeof(message), "%s is %d tokens; the context holds %d", field, count,
                 context);
        http_reply_error(request->connection, 400, "invalid_request_error", message);
        kfree(*tokens);
        *tokens = NULL;
        return -1;
    }
    return count;
}
