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
#include "kprintf.h"
#include "string.h"
#include "strbuf.h"

#define BYTE_TOKENS 256
#define CONTEXT_LENGTH 2048
#define EMBEDDING_LENGTH 16
#define MICROS 1000000

struct infer_session {
    int *prompt;
    int count;
    int next;                               /* the next prompt token to replay or read */
    bool embedding;
    uint64_t buckets[EMBEDDING_LENGTH];     /* an embedding's histogram */
};

static const struct infer_model_info model = {
    .id = "ringzero-placeholder",
    .description = "placeholder: tokens are bytes, and it replays the prompt",
    .parameters = 0,
    .vocabulary_size = BYTE_TOKENS,
    .context_length = CONTEXT_LENGTH,
    .embedding_length = EMBEDDING_LENGTH,
};

void infer_init(void)
{
    kprintf("model: %s (%s), context %d\n", model.id, model.description, model.context_length);
}

const struct infer_model_info *infer_model(void)
{
    return &model;
}

int infer_tokenize(const char *text, size_t length, int **tokens)
{
    *tokens = kmalloc(sizeof(int) * (length ? length : 1));
    if (!*tokens)
        return -1;
    for (size_t i = 0; i < length; i++)
        (*tokens)[i] = (unsigned char)text[i];
    return (int)length;
}

bool infer_is_token(int token)
{
    return token >= 0 && token < BYTE_TOKENS;
}

void infer_append_piece(int previous, int token, struct strbuf *text)
{
    char byte = (char)token;

    (void)previous;
    strbuf_append(text, &byte, 1);
}

static struct infer_session *new_session(const int *prompt, int count, bool embedding)
{
    struct infer_session *session = kcalloc(1, sizeof(*session));

    if (!session)
        return NULL;
    session->prompt = kmalloc(sizeof(int) * ((size_t)count + 1));
    if (!session->prompt) {
        kfree(session);
        return NULL;
    }
    memcpy(session->prompt, prompt, sizeof(int) * (size_t)count);
    session->count = count;
    session->embedding = embedding;
    return session;
}

struct infer_session *infer_start(const int *prompt, int count,
                                  const struct infer_sampling *sampling)
{
    (void)sampling;
    return new_session(prompt, count, false);
}

struct infer_session *infer_start_embedding(const int *tokens, int count)
{
    return new_session(tokens, count, true);
}

/*
 * A generation replays the prompt, one token per step, until the prompt ends or prompt and
 * replay together fill the context. An embedding reads one token per step into its histogram.
 */
int infer_next(struct infer_session *s)
{
    if (s->next >= s->count)
        return INFER_END;
    if (s->embedding) {
        s->buckets[s->prompt[s->next++] % EMBEDDING_LENGTH]++;
        return s->next < s->count ? INFER_READING : INFER_END;
    }
    if (s->count + s->next >= CONTEXT_LENGTH)
        return INFER_FULL;
    return s->prompt[s->next++];
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
 * The histogram of the token values folded into EMBEDDING_LENGTH buckets, L2-normalised. There
 * is no floating point in this step: the norm is an integer square root of the sum of squares
 * scaled by 2^32 (so the root carries 16 fraction bits), and the values are in millionths.
 */
void infer_write_embedding(const struct infer_session *s, bool base64, struct strbuf *json)
{
    uint64_t micros[EMBEDDING_LENGTH], sum_of_squares = 0, scaled_norm;

    for (int i = 0; i < EMBEDDING_LENGTH; i++)
        sum_of_squares += s->buckets[i] * s->buckets[i];
    scaled_norm = integer_sqrt(sum_of_squares << 32);
    for (int i = 0; i < EMBEDDING_LENGTH; i++)
        micros[i] = scaled_norm ? (s->buckets[i] * MICROS << 16) / scaled_norm : 0;
    if (base64) {
        write_base64(micros, json);
        return;
    }
    strbuf_append_str(json, "[");
    for (int i = 0; i < EMBEDDING_LENGTH; i++)
        strbuf_printf(json, "%s%lu.%06lu", i ? "," : "", micros[i] / MICROS, micros[i] % MICROS);
    strbuf_append_str(json, "]");
}
