/*
 * Opening a llama2.c checkpoint. Its bytes come from outside the kernel (a GRUB module), so
 * nothing in them is trusted: each header field is range-checked before it is used in any
 * arithmetic, and the file must hold exactly the bytes the header announces.
 */
#include "checkpoint.h"
#include "string.h"

#define HEADER_FIELDS 7
#define HEADER_BYTES (HEADER_FIELDS * sizeof(int32_t))
/* Version 2: the magic, the version, the seven fields, the shared-classifier byte at 36, the
 * group size at 37 (unaligned), zeros to 256. */
#define V2_MAGIC 0x616b3432u
#define V2_FIELDS_AT 8
#define V2_SHARED_AT 36
#define V2_GROUP_AT 37
#define V2_HEADER_BYTES 256
/*
 * Far above any model this engine could hold, and low enough that no size computed below can
 * overflow 64 bits: the largest product is layers x width x width < 2^10 x 2^20 x 2^20.
 */
#define MAX_WIDTH (1 << 20)
#define MAX_LAYERS (1 << 10)
/* A group's integer sum, at most group x 128 x 127, must fit in 32 bits. */
#define MAX_GROUP (1 << 16)

static int32_t field_at(const uint8_t *bytes, size_t offset)
{
    int32_t value;

    memcpy(&value, bytes + offset, sizeof(value));
    return value;
}

static bool in_range(int value, int maximum)
{
    return value > 0 && value <= maximum;
}

/* Reads the seven fields; vocab_size may be negative, meaning a separate classifier. */
static const char *read_header(struct model_config *c, const uint8_t *fields)
{
    int32_t vocab = field_at(fields, 5 * sizeof(int32_t));

    c->dim = field_at(fields, 0);
    c->hidden_dim = field_at(fields, 1 * sizeof(int32_t));
    c->n_layers = field_at(fields, 2 * sizeof(int32_t));
    c->n_heads = field_at(fields, 3 * sizeof(int32_t));
    c->n_kv_heads = field_at(fields, 4 * sizeof(int32_t));
    c->seq_len = field_at(fields, 6 * sizeof(int32_t));
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

/*
 * Lays tensors out one after another from base. While base is NULL it only counts the bytes
 * (the pointers are then never used), so the size can be checked before anything is placed.
 */
struct placer {
    const uint8_t *base;
    uint64_t at;        /* bytes taken so far */
    int group_size;     /* of the matrices: 0 for float32 */
};

static const float *take_floats(struct placer *p, uint64_t count)
{
    const float *floats = p->base ? (const float *)(p->base + p->at) : NULL;

    p->at += count * sizeof(float);
    return floats;
}

/* layers matrices of rows x cols: floats, or int8 values each followed by its scales. */
static void take_matrix(struct placer *p, struct layered_matrix *m, uint64_t layers,
                        uint64_t rows, uint64_t cols)
{
    uint64_t values = rows * cols;

    m->first = p->base ? p->base + p->at : NULL;
    m->values = values;
    m->layer_bytes = p->group_size ? values + values / (uint64_t)p->group_size * sizeof(float)
                                   : values * sizeof(float);
    p->at += layers * m->layer_bytes;
}

/* Version 0's order, everything float32. */
static void place_version0(struct placer *p, struct model_weights *w,
                               const struct model_config *c)
{
    uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden_dim, kv = (uint64_t)c->kv_dim;
    uint64_t layers = (uint64_t)c->n_layers, vocab = (uint64_t)c->vocab_size;
    uint64_t rope = (uint64_t)c->seq_len * (uint64_t)(c->head_size / 2);

    take_matrix(p, &w->token_embedding, 1, vocab, dim);
    w->rms_attention = take_floats(p, layers * dim);
    take_matrix(p, &w->wq, layers, dim, dim);
    take_matrix(p, &w->wk, layers, kv, dim);
    take_matrix(p, &w->wv, layers, kv, dim);
    take_matrix(p, &w->wo, layers, dim, dim);
    w->rms_ffn = take_floats(p, layers * dim);
    take_matrix(p, &w->w1, layers, hidden, dim);
    take_matrix(p, &w->w2, layers, dim, hidden);
    take_matrix(p, &w->w3, layers, hidden, dim);
    w->rms_final = take_floats(p, dim);
    w->rope_cos = take_floats(p, rope);
    w->rope_sin = take_floats(p, rope);
    if (c->shared_classifier)
        w->classifier = w->token_embedding;
    else
        take_matrix(p, &w->classifier, 1, vocab, dim);
}

/* Version 2's order: the norms in float32 first, then the int8 matrices. */
static void place_version2(struct placer *p, struct model_weights *w,
                           const struct model_config *c)
{
    uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden_dim, kv = (uint64_t)c->kv_dim;
    uint64_t layers = (uint64_t)c->n_layers, vocab = (uint64_t)c->vocab_size;

    w->rms_attention = take_floats(p, layers * dim);
    w->rms_ffn = take_floats(p, layers * dim);
    w->rms_final = take_floats(p, dim);
    take_matrix(p, &w->token_embedding, 1, vocab, dim);
    take_matrix(p, &w->wq, layers, dim, dim);
    take_matrix(p, &w->wk, layers, kv, dim);
    take_matrix(p, &w->wv, layers, kv, dim);
    take_matrix(p, &w->wo, layers, dim, dim);
    take_matrix(p, &w->w1, layers, hidden, dim);
    take_matrix(p, &w->w2, layers, dim, hidden);
    take_matrix(p, &w->w3, layers, hidden, dim);
    w->rope_cos = w->rope_sin = NULL;
    if (c->shared_classifier)
        w->classifier = w->token_embedding;
    else
        take_matrix(p, &w->classifier, 1, vocab, dim);
}

/* Every learned number: the matrices' values (the embedding once) and the norms. */
static uint64_t count_parameters(const struct checkpoint *m)
{
    const struct model_weights *w = &m->weights;
    const struct model_config *c = &m->config;
    uint64_t layers = (uint64_t)c->n_layers;
    uint64_t norms = (2 * layers + 1) * (uint64_t)c->dim;
    uint64_t matrices = layers * (w->wq.values + w->wk.values + w->wv.values + w->wo.values +
                                  w->w1.values + w->w2.values + w->w3.values);

    return norms + matrices + w->token_embedding.values +
           (c->shared_classifier ? 0 : w->classifier.values);
}

/*
 * The group size must divide every row (dim and hidden_dim wide), and a multiple of 4 keeps
 * each layer's scales, which follow its int8 values, 4-byte aligned.
 */
static const char *read_version2_header(struct model_config *c, const uint8_t *bytes)
{
    const char *problem;

    if (field_at(bytes, sizeof(uint32_t)) != 2)
        return "a llama2.c checkpoint of a version other than 0 and 2";
    problem = read_header(c, bytes + V2_FIELDS_AT);
    if (problem)
        return problem;
    if (!c->shared_classifier || bytes[V2_SHARED_AT] > 1)
        return "vocab_size is negative or the shared-classifier byte is not 0 or 1";
    c->shared_classifier = bytes[V2_SHARED_AT] == 1;
    c->group_size = field_at(bytes, V2_GROUP_AT);
    if (!in_range(c->group_size, MAX_GROUP) || c->group_size % 4 != 0 ||
        c->dim % c->group_size != 0 || c->hidden_dim % c->group_size != 0)
        return "the group size is not a multiple of 4 that divides dim and hidden_dim";
    return NULL;
}

static const char *open_version2(struct checkpoint *checkpoint, const uint8_t *bytes,
                                 size_t size)
{
    struct model_config *c = &checkpoint->config;
    const char *problem;
    struct placer counting = { NULL, V2_HEADER_BYTES, 0 };
    struct placer placing = { bytes, V2_HEADER_BYTES, 0 };

    if (size < V2_HEADER_BYTES)
        return "too short for a version 2 checkpoint header";
    problem = read_version2_header(c, bytes);
    if (!problem)
        problem = check_heads(c);
    if (problem)
        return problem;
    counting.group_size = placing.group_size = c->group_size;
    place_version2(&counting, &checkpoint->weights, c);
    if (counting.at != size)
        return "the size does not match the header (truncated, or not a version 2 checkpoint)";
    place_version2(&placing, &checkpoint->weights, c);
    return NULL;
}

static const char *open_version0(struct checkpoint *checkpoint, const uint8_t *bytes,
                                 size_t size)
{
    struct model_config *c = &checkpoint->config;
    const char *problem;
    struct placer counting = { NULL, HEADER_BYTES, 0 }, placing = { bytes, HEADER_BYTES, 0 };

    if (size < HEADER_BYTES)
        return "too short for a checkpoint header";
    problem = read_header(c, bytes);
    if (!problem)
        problem = check_heads(c);
    if (problem)
        return problem;
    c->group_size = 0;
    place_version0(&counting, &checkpoint->weights, c);
    if (counting.at != size)
        return "the size does not match the header (truncated, or not a version 0 checkpoint)";
    place_version0(&placing, &checkpoint->weights, c);
    return NULL;
}

const char *checkpoint_open(struct checkpoint *checkpoint, const void *data, size_t size)
{
    const uint8_t *bytes = data;
    const char *problem;

    if ((uintptr_t)data % sizeof(float) != 0)
        return "the checkpoint is not 4-byte aligned in memory";
    if (size >= sizeof(uint32_t) && (uint32_t)field_at(bytes, 0) == V2_MAGIC)
        problem = open_version2(checkpoint, bytes, size);
    else
        problem = open_version0(checkpoint, bytes, size);
    if (!problem)
        checkpoint->parameters = count_parameters(checkpoint);
    return problem;
}

struct matrix checkpoint_matrix(const struct checkpoint *checkpoint,
                                const struct layered_matrix *m, int layer)
{
    const uint8_t *start = m->first + (uint64_t)layer * m->layer_bytes;

    if (checkpoint->config.group_size == 0)
        return (struct matrix){ .f = (const float *)start };
    return (struct matrix){ .q = (const int8_t *)start,
                            .scale = (const float *)(start + m->values) };
}
