/*
 * The forward pass. Each function below is one box of the usual Llama diagram; the order of
 * every floating-point operation follows run.c, and every sum goes through vecmath, whose
 * fixed order makes the result the same on every CPU.
 */
#include "transformer.h"
#include "string.h"
#include "vecmath.h"

static uint64_t state_floats(const struct model_config *c, int context)
{
    uint64_t per_layer_cache = (uint64_t)context * (uint64_t)c->kv_dim;

    return 4 * (uint64_t)c->dim + 2 * (uint64_t)c->hidden_dim +
           (uint64_t)c->n_heads * (uint64_t)context + (uint64_t)c->vocab_size +
           2 * (uint64_t)c->n_layers * per_layer_cache;
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
#undef CARVE
    s->context = context;
}

/*
 * Rotary position embedding: each adjacent pair (v[2i], v[2i+1]) of a head is turned by the
 * angle pos * 10000^(-2i/head_size), so that the dot product of a query and a key depends on
 * how far apart their positions are. The checkpoint holds the cosines and sines.
 */
static void rotate(float *v, int width, const struct checkpoint *m, int pos)
{
    int half = m->config.head_size / 2;
    const float *cosines = m->weights.rope_cos + (size_t)pos * (size_t)half;
    const float *sines = m->weights.rope_sin + (size_t)pos * (size_t)half;

    for (int i = 0; i < width; i += 2) {
        int pair = (i % m->config.head_size) / 2;
        float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * cosines[pair] - v1 * sines[pair];
        v[i + 1] = v0 * sines[pair] + v1 * cosines[pair];
    }
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

    for (int t = 0; t <= pos; t++)
        weights[t] = vec_dot(q, cache_row(s->key_cache, s, c, layer, t) + kv_offset, size) /
                     scale;
    vec_softmax(weights, (size_t)pos + 1);
    memset(out, 0, (size_t)size * sizeof(float));
    for (int t = 0; t <= pos; t++) {
        const float *value = cache_row(s->value_cache, s, c, layer, t) + kv_offset;
        for (int i = 0; i < size; i++)
            out[i] += weights[t] * value[i];
    }
}

static void attention_block(const struct checkpoint *m, struct transformer_state *s, int layer,
                            int pos)
{
    const struct model_config *c = &m->config;
    const struct model_weights *w = &m->weights;
    size_t dim = (size_t)c->dim, kv_dim = (size_t)c->kv_dim, l = (size_t)layer;
    float *key = cache_row(s->key_cache, s, c, layer, pos);
    float *value = cache_row(s->value_cache, s, c, layer, pos);

    vec_rmsnorm(s->xb, s->x, w->rms_attention + l * dim, dim);
    vec_matmul(s->q, w->wq + l * dim * dim, s->xb, dim, dim);
    vec_matmul(key, w->wk + l * kv_dim * dim, s->xb, kv_dim, dim);
    vec_matmul(value, w->wv + l * kv_dim * dim, s->xb, kv_dim, dim);
    rotate(s->q, c->dim, m, pos);
    rotate(key, c->kv_dim, m, pos);
    for (int head = 0; head < c->n_heads; head++)
        attend_head(m, s, layer, head, pos, s->xb + (size_t)head * (size_t)c->head_size);
    vec_matmul(s->xb2, w->wo + l * dim * dim, s->xb, dim, dim);
    vec_add(s->x, s->xb2, dim);
}

/* SwiGLU: w2(silu(w1 x) * w3 x). */
static void feed_forward_block(const struct checkpoint *m, struct transformer_state *s,
                               int layer)
{
    const struct model_weights *w = &m->weights;
    size_t dim = (size_t)m->config.dim, hidden = (size_t)m->config.hidden_dim;
    size_t l = (size_t)layer;

    vec_rmsnorm(s->xb, s->x, w->rms_ffn + l * dim, dim);
    vec_matmul(s->hb, w->w1 + l * hidden * dim, s->xb, hidden, dim);
    vec_matmul(s->hb2, w->w3 + l * hidden * dim, s->xb, hidden, dim);
    vec_swiglu(s->hb, s->hb2, hidden);
    vec_matmul(s->xb, w->w2 + l * dim * hidden, s->hb, dim, hidden);
    vec_add(s->x, s->xb, dim);
}

const float *transformer_hidden(const struct checkpoint *m, struct transformer_state *s,
                                int token, int pos)
{
    size_t dim = (size_t)m->config.dim;

    memcpy(s->x, m->weights.token_embedding + (size_t)token * dim, dim * sizeof(float));
    for (int layer = 0; layer < m->config.n_layers; layer++) {
        attention_block(m, s, layer, pos);
        feed_forward_block(m, s, layer);
    }
    vec_rmsnorm(s->x, s->x, m->weights.rms_final, dim);
    return s->x;
}

float *transformer_forward(const struct checkpoint *m, struct transformer_state *s, int token,
                           int pos)
{
    const float *hidden = transformer_hidden(m, s, token, pos);

    vec_matmul(s->logits, m->weights.classifier, hidden, (size_t)m->config.vocab_size,
               (size_t)m->config.dim);
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
