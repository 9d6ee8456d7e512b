/*
 * A placeholder model, so that the API can be built and tested before there is a real one.
 * It is deterministic and says what it is: its tokens are bytes, and "generating" replays the
 * prompt's tokens. Sampling settings are accepted and have no effect. Step 08 replaces this
 * file with a transformer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heap.h"
#include "infer.h"
#include "strbuf.h"

#define BYTE_TOKENS 256
#define CONTEXT_LENGTH 2048
#define EMBEDDING_LENGTH 16
#define MICROS 1000000

struct infer_session {
    int *prompt;
    int count;
    int next;
};

static const struct infer_model_info model = {
    .id = "ringzero-placeholder",
    .description = "placeholder: tokens are bytes, and it replays the prompt",
    .parameters = 0,
    .vocabulary_size = BYTE_TOKENS,
    .context_length = CONTEXT_LENGTH,
    .embedding_length = EMBEDDING_LENGTH,
};

const struct infer_model_info *infer_model(void)
{
    return &model;
}

/* Returns the token count, or -1 if there are more than capacity. */
int infer_tokenize(const char *text, size_t length, int *tokens, int capacity)
{
    if (length > (size_t)capacity)
        return -1;
    for (size_t i = 0; i < length; i++)
        tokens[i] = (unsigned char)text[i];
    return (int)length;
}

bool infer_is_token(int token)
{
    return token >= 0 && token < BYTE_TOKENS;
}

void infer_append_piece(int token, struct strbuf *text)
{
    char byte = (char)token;
    strbuf_append(text, &byte, 1);
}

struct infer_session *infer_start(const int *prompt, int count,
                                  const struct infer_sampling *sampling)
{
    struct infer_session *session = kcalloc(1, sizeof(*session));

    (void)sampling;
    if (!session)
        return NULL;
    session->prompt = kcalloc((size_t)count + 1, sizeof(int));
    if (!session->prompt) {
        kfree(session);
        return NULL;
    }
    for (int i = 0; i < count; i++)
        session->prompt[i] = prompt[i];
    session->count = count;
    return session;
}

/* The next token, or -1 at the end of the text. */
int infer_next(struct infer_session *session)
{
    return session->next < session->count ? session->prompt[session->next++] : -1;
}

void infer_finish(struct infer_session *session)
{
    kfree(session->prompt);
    kfree(session);
}

static uint64_t integer_sqrt(uint64_t value)
{
    uint64_t root = 0, bit = 1ull << 62;

    while (bit > value)
        bit >>= 2;
    for (; bit; bit >>= 2) {
        if (value >= root + bit) {
            value -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
    }
    return root;
}

/*
 * A value in millionths, 0 to 1, as the bits of the nearest-below float32, in integers only:
 * scale value/MICROS into [1, 2) by powers of two, then keep 23 bits of fraction.
 */
static uint32_t float32_bits(uint64_t micros)
{
    uint64_t numerator = micros, denominator = MICROS;
    int exponent = 0;

    if (micros == 0)
        return 0;
    while (numerator < denominator) {
        numerator <<= 1;
        exponent--;
    }
    while (numerator >= 2 * denominator) {
        denominator <<= 1;
        exponent++;
    }
    return (uint32_t)(exponent + 127) << 23 |
           (uint32_t)(((numerator - denominator) << 23) / denominator);
}

static void write_base64(const uint64_t *micros, struct strbuf *json)
{
    uint8_t bytes[EMBEDDING_LENGTH * 4];

    for (int i = 0; i < EMBEDDING_LENGTH; i++) {
        uint32_t bits = float32_bits(micros[i]);
        for (int b = 0; b < 4; b++)
            bytes[4 * i + b] = (uint8_t)(bits >> (8 * b));
    }
    strbuf_append_str(json, "\"");
    strbuf_append_base64(json, bytes, sizeof(bytes));
    strbuf_append_str(json, "\"");
}

/*
 * A histogram of the token values folded into EMBEDDING_LENGTH buckets, L2-normalised. There
 * is no floating point in this step: the norm is an integer square root of the sum of squares
 * scaled by 2^32 (so the root carries 16 fraction bits), and the values are in millionths.
 */
void infer_write_embedding(const int *tokens, int count, bool base64, struct strbuf *json)
{
    uint64_t buckets[EMBEDDING_LENGTH] = { 0 }, micros[EMBEDDING_LENGTH];
    uint64_t sum_of_squares = 0, scaled_norm;

    for (int i = 0; i < count; i++)
        buckets[tokens[i] % EMBEDDING_LENGTH]++;
    for (int i = 0; i < EMBEDDING_LENGTH; i++)
        sum_of_squares += buckets[i] * buckets[i];
    scaled_norm = integer_sqrt(sum_of_squares << 32);
    for (int i = 0; i < EMBEDDING_LENGTH; i++)
        micros[i] = scaled_norm ? (buckets[i] * MICROS << 16) / scaled_norm : 0;
    if (base64) {
        write_base64(micros, json);
        return;
    }
    strbuf_append_str(json, "[");
    for (int i = 0; i < EMBEDDING_LENGTH; i++)
        strbuf_printf(json, "%s%lu.%06lu", i ? "," : "", micros[i] / MICROS, micros[i] % MICROS);
    strbuf_append_str(json, "]");
}
