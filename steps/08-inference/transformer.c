/*
 * The forward pass. Each function below is one box of the usual Llama diagram; the order of
 * every floating-point operation follows run.c, and every sum goes through vecmath, whose
 * fixed order makes the result the same on every CPU.
 */
#include "transformer.h"
#include "string.h"
#include "vecmath.h"

/* The widest vector that is multiplied by a matrix: dim, or hidden_dim for w2. */
static size_t widest_input(const struct model_config *c)
{
    return (size_t)(c->hidden_dim > c->dim ? c->hidden_dim : c->dim);
}

static uint64_t state_floats(const struct model_config *c, int context)
{
    uint64_t per_layer_cache = (uint64_t)context * (uint64_t)c->kv_dim;
    uint64_t quantized = c->group_size ? widest_input(c) / (uint64_t)c->group_size +
                                         widest_input(c) / sizeof(float) + 1 : 0;

    return 4 * (uint64_t)c->dim + 2 * (uint64_t)c->hidden_dim +
           (uint64_t)c->n_heads * (uint64_t)context + (uint64_t)c->vocab_size +
           2 * (uint64_t)c->n_layers * per_layer_cache + (uint64_t)c->head_size + quantized;
}

uint64_t transformer_state_bytes(const struct model_config *config, int context)
{
    return state_floats(config, context) * sizeof(float);
}

void transformer_state_init(struct transformer_state *s, const struct model_config *c,
                            int context, void *memory)
{
    float *next = memory;
    size_t cache = (size_t)c->n_layers * (size_t)context * (size_t)c->kv_dim;

#define CARVE(field, count) (s->field = next, next += (count))
    CARVE(x, c->dim);
    CARVE(xb, c->dim);
    CARVE(xb2, c->dim);
    CARVE(q, c->dim);
    CARVE(hb, c->hidden_dim);
    CARVE(hb2, c->hidden_dim);
    CARVE(attention, (size_t)c->n_heads * (size_t)context);
    CARVE(logits, c->vocab_size);
    CARVE(key_cache, cache);
    CARVE(value_cache, cache);
    CARVE(rotary, c->head_size);
    if (c->group_size) {
        CARVE(input_scale, widest_input(c) / (size_t)c->group_size);
        s->input = (int8_t *)next;   /* last: the int8 values, widest_input(c) bytes */
    }
#undef CARVE
    s->context = context;
}

/*
 * Rotary position embedding: each adjacent pair (v[2i], v[2i+1]) of a head is turned by the
 * angle pos * 10000^(-2i/head_size), so that the dot product of a query and a key depends on
 * how far apart their positions are. A version 0 checkpoint holds the cosines and sines of
 * every position; for a version 2 one they are computed, once per token, into the state.
 */
static void rotary_angles(const struct checkpoint *m, struct transformer_state *s, int pos)
{
    size_t half = (size_t)m->config.head_size / 2;

    if (m->weights.rope_cos) {
        s->cosines = m->weights.rope_cos + (size_t)pos * half;
        s->sines = m->weights.rope_sin + (size_t)pos * half;
    } else {
        vec_rotary(s->rotary, s->rotary + half, pos, m->config.head_size);
        s->cosines = s->rotary;
        s->sines = s->rotary + half;
    }
}

static void rotate(float *v, int width, const struct transformer_state *s, int head_size)
{
    for (int i = 0; i < width; i += 2) {
        int pair = (i % head_size) / 2;
        float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * s->cosines[pair] - v1 * s->sines[pair];
        v[i + 1] = v0 * s->sines[pair] + v1 * s->cosines[pair];
    }
}

/*
 * An int8 model multiplies int8 by int8: the vector is quantized once, into the state, before
 * the products that take it. A float model uses it as it is.
 */
static void prepare_input(const struct checkpoint *m, struct transformer_state *s,
                          const float *x, size_t n)
{
    if (m->config.group_size)
        vec_quantize(s->input, s->input_scale, x, n, (size_t)m->config.group_size);
}

/* out = w x, with w rows x cols and x the vector prepare_input was last given. */
static void multiply(const struct checkpoint *m, const struct transformer_state *s, float *out,
                     struct matrix w, const float *x, size_t rows, size_t cols)
{
    if (w.f)
        vec_matmul(out, w.f, x, rows, cols);
    else
        vec_matmul_q8(out, w.q, w.scale, s->input, s->input_scale, rows, cols,
                      (size_t)m->config.group_size);
}

static float *cache_row(float *cache, const struct transformer_state *s,
                        const struct model_config *c, int layer, int pos)
{
    return cache + ((size_t)layer * (size_t)s->context + (size_t)pos) * (size_t)c->kv_dim;
}

/* One query head against every position so far; its output goes to out (head_size floats). */
static void attend_head(const struct checkpoint *m, struct transformer_state *s, int layer,
                        int head, int pos, float *out)
{
    const struct model_config *c = &m->config;
    int size = c->head_size, kv_offset = head / (c->n_heads / c->n_kv_heads) * size;
    const float *q = s->q + (size_t)head * (size_t)size;
    float *weights = s->attention + (size_t)head * (size_t)s->context;
    float scale = vec_sqrt((float)size);

    /* The keys of positions 0 ... pos are rows kv_dim apart: a matrix product gives the dots. */
    vec_matmul_rows(weights, cache_row(s->key_cache, s, c, layer, 0) + kv_offset,
                    (size_t)c->kv_dim, q, (size_t)pos + 1, (size_t)size);
    for (int t = 0; t <= pos; t++)
        weights[t] /= scale;
    vec_softmax(weights, (size_t)pos + 1);
    memset(out, 0, (size_t)size * sizeof(float));
    for (int t = 0; t <= pos; t++)
        vec_add_scaled(out, weights[t], cache_row(s->value_cache, s, c, layer, t) + kv_offset,
                       (size_t)size);
}

static void attention_block(const struct checkpoint *m, struct transformer_state *s, int l,
                            int pos)
{
    const struct model_config *c = &m->config;
    const struct model_weights *w = &m->weights;
    size_t dim = (size_t)c->dim, kv_dim = (size_t)c->kv_dim;
    float *key = cache_row(s->key_cache, s, c, l, pos);
    float *value = cache_row(s->value_cache, s, c, l, pos);

    vec_rmsnorm(s->xb, s->x, w->rms_attention + (size_t)l * dim, dim);
    prepare_input(m, s, s->xb, dim);
    multiply(m, s, s->q, checkpoint_matrix(m, &w->wq, l), s->xb, dim, dim);
    multiply(m, s, key, checkpoint_matrix(m, &w->wk, l), s->xb, kv_dim, dim);
    multiply(m, s, value, checkpoint_matrix(m, &w->wv, l), s->xb, kv_dim, dim);
    rotate(s->q, c->dim, s, c->head_size);
    rotate(key, c->kv_dim, s, c->head_size);
    for (int head = 0; head < c->n_heads; head++)
        attend_head(m, s, l, head, pos, s->xb + (size_t)head * (size_t)c->head_size);
    prepare_input(m, s, s->xb, dim);
    multiply(m, s, s->xb2, checkpoint_matrix(m, &w->wo, l), s->xb, dim, dim);
    vec_add(s->x, s->xb2, dim);
}

/* SwiGLU: w2(silu(w1 x) * w3 x). */
static void feed_forward_block(const struct checkpoint *m, struct transformer_state *s, int l)
{
    const struct model_weights *w = &m->weights;
    size_t dim = (size_t)m->config.dim, hidden = (size_t)m->config.hidden_dim;

    vec_rmsnorm(s->xb, s->x, w->rms_ffn + (size_t)l * dim, dim);
    prepare_input(m, s, s->xb, dim);
    multiply(m, s, s->hb, checkpoint_matrix(m, &w->w1, l), s->xb, hidden, dim);
    multiply(m, s, s->hb2, checkpoint_matrix(m, &w->w3, l), s->xb, hidden, dim);
    vec_swiglu(s->hb, s->hb2, hidden);
    prepare_input(m, s, s->hb, hidden);
    multiply(m, s, s->xb, checkpoint_matrix(m, &w->w2, l), s->hb, dim, hidden);
    vec_add(s->x, s->xb, dim);
}

/* The token's row of the embedding, which an int8 model stores quantized. */
static void embed(const struct checkpoint *m, float *x, int token)
{
    struct matrix e = checkpoint_matrix(m, &m->weights.token_embedding, 0);
    size_t dim = (size_t)m->config.dim, at = (size_t)token * dim;

    if (e.f)
        memcpy(x, e.f + at, dim * sizeof(float));
    else
        vec_dequantize(x, e.q + at, e.scale + at / (size_t)m->config.group_size, dim,
                       (size_t)m->config.group_size);
}

const float *transformer_hidden(const struct checkpoint *m, struct transformer_state *s,
                                int token, int pos)
{
    size_t dim = (size_t)m->config.dim;

    embed(m, s->x, token);
    rotary_angles(m, s, pos);
    for (int l = 0; l < m->config.n_layers; l++) {
        attention_block(m, s, l, pos);
        feed_forward_block(m, s, l);
    }
    vec_rmsnorm(s->x, s->x, m->weights.rms_final, dim);
    return s->x;
}

float *transformer_forward(const struct checkpoint *m, struct transformer_state *s, int token,
                           int pos)
{
    const float *hidden = transformer_hidden(m, s, token, pos);
    size_t dim = (size_t)m->config.dim;

    prepare_input(m, s, hidden, dim);
    multiply(m, s, s->logits, checkpoint_matrix(m, &m->weights.classifier, 0), hidden,
             (size_t)m->config.vocab_size, dim);
    return s->logits;
}

void embedding_add(float *sum, const float *hidden, int dim)
{
    vec_add(sum, hidden, (size_t)dim);
}

void embedding_finish(float *sum, int positions, int dim)
{
    float length;

    for (int i = 0; i < dim; i++)
        sum[i] /= (float)positions;
    length = vec_sqrt(vec_dot(sum, sum, (size_t)dim));
    if (length > 0.0f)
        for (int i = 0; i < dim; i++)
            sum[i] /= length;
}

void transformer_embed(const struct checkpoint *m, struct transformer_state *s,
                       const int *tokens, int count, float *out)
{
    memset(out, 0, (size_t)m->config.dim * sizeof(float));
    for (int pos = 0; pos < count; pos++)
        embedding_add(out, transformer_hidden(m, s, tokens[pos], pos), m->config.dim);
    embedding_finish(out, count, m->config.dim);
}
