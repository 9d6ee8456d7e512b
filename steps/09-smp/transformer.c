/*
 * The forward pass. Each function below is one box of the usual Llama diagram; the order of
 * every floating-point operation follows run.c, and every sum goes through vecmath, whose
 * fixed order makes the result the same on every CPU.
 *
 * The matrix products and the attention heads, nearly all of the work, are loops over
 * independent items (rows, heads) that parallel.h shares among the CPUs. Each item is still
 * computed whole, in the same order, by one CPU, so the bits do not depend on how many there
 * are. The rest (norms, rotations, residual additions) is a few hundred floats: the CPUs
 * would take longer to meet than to do it, so the calling CPU does it alone.
 */
#include "transformer.h"
#include "parallel.h"
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

/*
 * Up to three matrices that multiply the same vector, as one loop over all their rows, so that
 * the CPUs meet once for the query, key and value projections rather than three times.
 */
struct matmul_part {
    float *out;
    const float *w;
    size_t rows;
};

struct matmul_job {
    const float *x;
    size_t cols;
    int parts;
    struct matmul_part part[3];
};

/* Rows begin ... end-1 of the parts laid end to end. */
static void matmul_rows(void *arg, size_t begin, size_t end)
{
    const struct matmul_job *job = arg;
    size_t first = 0;   /* the loop's number for this part's row 0 */

    for (int i = 0; i < job->parts && first < end; first += job->part[i++].rows) {
        const struct matmul_part *p = &job->part[i];
        size_t from = begin > first ? begin - first : 0;
        size_t to = end - first < p->rows ? end - first : p->rows;

        if (from < to)
            vec_matmul(p->out + from, p->w + from * job->cols, job->x, to - from, job->cols);
    }
}

static void matmul(struct matmul_job *job)
{
    size_t rows = 0;

    for (int i = 0; i < job->parts; i++)
        rows += job->part[i].rows;
    parallel_for(rows, matmul_rows, job);
}

static void matmul_one(float *out, const float *w, const float *x, size_t rows, size_t cols)
{
    matmul(&(struct matmul_job){ x, cols, 1, { { out, w, rows } } });
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

struct heads_job {
    const struct checkpoint *m;
    struct transformer_state *s;
    int layer, pos;
};

static void attend_heads(void *arg, size_t begin, size_t end)
{
    const struct heads_job *job = arg;
    size_t size = (size_t)job->m->config.head_size;

    for (size_t head = begin; head < end; head++)
        attend_head(job->m, job->s, job->layer, (int)head, job->pos, job->s->xb + head * size);
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
    matmul(&(struct matmul_job){ s->xb, dim, 3, {
        { s->q, w->wq + l * dim * dim, dim },
        { key, w->wk + l * kv_dim * dim, kv_dim },
        { value, w->wv + l * kv_dim * dim, kv_dim } } });
    rotate(s->q, c->dim, m, pos);
    rotate(key, c->kv_dim, m, pos);
    parallel_for((size_t)c->n_heads, attend_heads,
                 &(struct heads_job){ m, s, layer, pos });
    matmul_one(s->xb2, w->wo + l * dim * dim, s->xb, dim, dim);
    vec_add(s->x, s->xb2, dim);
}

/*
 * Hidden units begin ... end-1 of silu(w1 x) * w3 x: each needs only its own row of w1 and of
 * w3, so one loop does both products and the gate. Part 0 is w1 into hb, part 1 w3 into hb2.
 */
static void gate_rows(void *arg, size_t begin, size_t end)
{
    const struct matmul_job *job = arg;
    const struct matmul_part *w1 = &job->part[0], *w3 = &job->part[1];
    size_t count = end - begin, cols = job->cols;

    vec_matmul(w1->out + begin, w1->w + begin * cols, job->x, count, cols);
    vec_matmul(w3->out + begin, w3->w + begin * cols, job->x, count, cols);
    vec_swiglu(w1->out + begin, w3->out + begin, count);
}

/* SwiGLU: w2(silu(w1 x) * w3 x). */
static void feed_forward_block(const struct checkpoint *m, struct transformer_state *s,
                               int layer)
{
    const struct model_weights *w = &m->weights;
    size_t dim = (size_t)m->config.dim, hidden = (size_t)m->config.hidden_dim;
    size_t l = (size_t)layer;

    vec_rmsnorm(s->xb, s->x, w->rms_ffn + l * dim, dim);
    parallel_for(hidden, gate_rows, &(struct matmul_job){ s->xb, dim, 2, {
        { s->hb, w->w1 + l * hidden * dim, hidden },
        { s->hb2, w->w3 + l * hidden * dim, hidden } } });
    matmul_one(s->xb, w->w2 + l * dim * hidden, s->hb, dim, hidden);
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

    matmul_one(s->logits, m->weights.classifier, hidden, (size_t)m->config.vocab_size,
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
