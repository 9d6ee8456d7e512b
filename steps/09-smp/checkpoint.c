/*
 * Opening a llama2.c checkpoint. Its bytes come from outside the kernel (a GRUB module), so
 * nothing in them is trusted: each header field is range-checked before it is used in any
 * arithmetic, and the file must hold exactly the floats the header announces.
 */
#include "checkpoint.h"
#include "string.h"

#define HEADER_FIELDS 7
#define HEADER_BYTES (HEADER_FIELDS * sizeof(int32_t))
/*
 * Far above any model this engine could hold, and low enough that no size computed below can
 * overflow 64 bits: the largest product is layers x width x width < 2^10 x 2^20 x 2^20.
 */
#define MAX_WIDTH (1 << 20)
#define MAX_LAYERS (1 << 10)

static int32_t header_field(const uint8_t *bytes, int index)
{
    int32_t value;

    memcpy(&value, bytes + index * sizeof(int32_t), sizeof(value));
    return value;
}

static bool in_range(int value, int maximum)
{
    return value > 0 && value <= maximum;
}

/* Reads the seven fields; vocab_size may be negative, meaning a separate classifier. */
static const char *read_header(struct model_config *c, const uint8_t *bytes)
{
    int32_t vocab = header_field(bytes, 5);

    c->dim = header_field(bytes, 0);
    c->hidden_dim = header_field(bytes, 1);
    c->n_layers = header_field(bytes, 2);
    c->n_heads = header_field(bytes, 3);
    c->n_kv_heads = header_field(bytes, 4);
    c->seq_len = header_field(bytes, 6);
    c->shared_classifier = vocab > 0;
    /* -vocab would overflow for INT32_MIN, which the range check below then rejects anyway. */
    c->vocab_size = vocab == INT32_MIN ? 0 : vocab < 0 ? -vocab : vocab;
    if (!in_range(c->dim, MAX_WIDTH) || !in_range(c->hidden_dim, MAX_WIDTH) ||
        !in_range(c->vocab_size, MAX_WIDTH) || !in_range(c->seq_len, MAX_WIDTH))
        return "a width (dim, hidden_dim, vocab_size or seq_len) is 0 or absurdly large";
    if (!in_range(c->n_layers, MAX_LAYERS))
        return "the layer count is 0 or absurdly large";
    return NULL;
}

/* The head layout: heads split dim evenly, key/value heads split the query heads evenly. */
static const char *check_heads(struct model_config *c)
{
    if (!in_range(c->n_heads, c->dim) || c->dim % c->n_heads != 0)
        return "n_heads does not divide dim";
    if (!in_range(c->n_kv_heads, c->n_heads) || c->n_heads % c->n_kv_heads != 0)
        return "n_kv_heads does not divide n_heads";
    c->head_size = c->dim / c->n_heads;
    if (c->head_size % 2 != 0)
        return "the head size is odd, and rotary embeddings rotate pairs";
    c->kv_dim = c->n_kv_heads * c->head_size;
    return NULL;
}

/* Points each tensor at its place in turn; returns how many floats they took. */
static uint64_t place_tensors(struct model_weights *w, const struct model_config *c,
                              const float *base)
{
    uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden_dim, kv = (uint64_t)c->kv_dim;
    uint64_t layers = (uint64_t)c->n_layers, vocab = (uint64_t)c->vocab_size;
    uint64_t rope = (uint64_t)c->seq_len * (uint64_t)(c->head_size / 2), at = 0;

    /* base may be NULL while only counting: the pointers are then never used. */
#define TAKE(field, count) (w->field = base ? base + at : NULL, at += (count))
    TAKE(token_embedding, vocab * dim);
    TAKE(rms_attention, layers * dim);
    TAKE(wq, layers * dim * dim);
    TAKE(wk, layers * kv * dim);
    TAKE(wv, layers * kv * dim);
    TAKE(wo, layers * dim * dim);
    TAKE(rms_ffn, layers * dim);
    TAKE(w1, layers * hidden * dim);
    TAKE(w2, layers * dim * hidden);
    TAKE(w3, layers * hidden * dim);
    TAKE(rms_final, dim);
    TAKE(rope_cos, rope);
    TAKE(rope_sin, rope);
    if (c->shared_classifier)
        w->classifier = w->token_embedding;
    else
        TAKE(classifier, vocab * dim);
#undef TAKE
    return at;
}

const char *checkpoint_open(struct checkpoint *checkpoint, const void *data, size_t size)
{
    struct model_config *c = &checkpoint->config;
    const uint8_t *bytes = data;
    const char *problem;
    uint64_t floats;

    if ((uintptr_t)data % sizeof(float) != 0)
        return "the checkpoint is not 4-byte aligned in memory";
    if (size < HEADER_BYTES)
        return "too short for a checkpoint header";
    problem = read_header(c, bytes);
    if (!problem)
        problem = check_heads(c);
    if (problem)
        return problem;
    floats = place_tensors(&checkpoint->weights, c, NULL);
    if ((size - HEADER_BYTES) % sizeof(float) != 0 ||
        (size - HEADER_BYTES) / sizeof(float) != floats)
        return "the size does not match the header (truncated, or not a version 0 checkpoint)";
    place_tensors(&checkpoint->weights, c, (const float *)(bytes + HEADER_BYTES));
    checkpoint->parameters = floats - 2 * (uint64_t)c->seq_len * (uint64_t)(c->head_size / 2);
    return NULL;
}
