/*
 * The seam's real implementation: a Llama transformer (transformer.c) on the checkpoint GRUB
 * loaded as model.bin, llama2.c's tokenizer on tokenizer.bin, and llama2.c's sampler.
 *
 * The weights and the tokenizer's bytes stay where GRUB put them (frames.c keeps that memory
 * reserved) and are only read, so every session shares them. What a session writes, its
 * activations and key/value cache, comes from the heap when it starts.
 *
 * An embedding is the mean over every position of the prompt (BOS included) of the final
 * hidden state, after the final RMSNorm, scaled to length 1 (L2): dim values.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "checkpoint.h"
#include "cmdline.h"
#include "cpu.h"
#include "heap.h"
#include "infer.h"
#include "kprintf.h"
#include "multiboot2.h"
#include "panic.h"
#include "sampler.h"
#include "string.h"
#include "strbuf.h"
#include "tokenizer.h"
#include "transformer.h"
#include "vecmath.h"

#define MICROS 1000000
/* The committed model (common/model/trained); `model=NAME` on the command line names others. */
#define DEFAULT_MODEL_ID "ringzero-fortune"
#define NANOS 1000000000ul

struct infer_session {
    struct transformer_state state;
    struct sampler sampler;
    bool embedding;
    int *prompt;
    int count;
    int pos;            /* positions fed so far */
    int last;           /* the token generated last, fed next */
    float *sum;         /* an embedding's running sum, then its vector */
    void *memory;       /* the state, sampler and sum all live in this one allocation */
};

static struct checkpoint model;
static struct tokenizer tokenizer;
static struct infer_model_info info;
static char model_id[64];
static char description[96];

/* One clear line that says which file is wrong and why, then stop: nothing to serve. */
__attribute__((noreturn)) static void refuse_module(const char *what, const char *name,
                                                    const char *why)
{
    kprintf("%s: %s: %s\n", what, name, why);
    panic("cannot serve without a %s", what);
}

static struct multiboot2_module find_module(const char *what, const char *name)
{
    struct multiboot2_module module;

    if (!multiboot2_find_module(name, &module))
        refuse_module(what, name, "GRUB loaded no module of that name (see `make step 8 run`)");
    return module;
}

static void load_model(void)
{
    struct multiboot2_module file = find_module("model", "model.bin");
    const char *problem = checkpoint_open(&model, file.data, file.size);

    if (problem)
        refuse_module("model", "model.bin", problem);
}

/* The tokenizer's index of its pieces goes on the heap; the pieces stay in the module. */
static void load_tokenizer(void)
{
    struct multiboot2_module file = find_module("tokenizer", "tokenizer.bin");
    void *index = kmalloc(tokenizer_memory_bytes(model.config.vocab_size));
    const char *problem;

    if (!index)
        refuse_module("tokenizer", "tokenizer.bin", "no memory for its index");
    problem = tokenizer_open(&tokenizer, file.data, file.size, model.config.vocab_size, index);
    if (problem)
        refuse_module("tokenizer", "tokenizer.bin", problem);
}

static void describe_model(void)
{
    const struct model_config *c = &model.config;

    if (!cmdline_get("model", model_id, sizeof(model_id)))
        snprintf(model_id, sizeof(model_id), "%s", DEFAULT_MODEL_ID);
    snprintf(description, sizeof(description), "Llama: dim %d, %d layers, %d heads (%d kv), "
             "feed-forward %d, %s weights", c->dim, c->n_layers, c->n_heads, c->n_kv_heads,
             c->hidden_dim, c->group_size ? "int8" : "float32");
    info = (struct infer_model_info){
        .id = model_id, .description = description, .parameters = model.parameters,
        .vocabulary_size = c->vocab_size, .context_length = c->seq_len,
        .embedding_length = c->dim,
    };
    kprintf("model: %s, %lu parameters, dim %d, %d layers, %d heads (%d kv), vocabulary %d, "
            "context %d\n", model_id, model.parameters, c->dim, c->n_layers, c->n_heads,
            c->n_kv_heads, c->vocab_size, c->seq_len);
    kprintf("tokenizer: %d tokens, longest %d bytes\n", tokenizer.vocab_size,
            tokenizer.max_token_length);
}

void infer_init(void)
{
    vecmath_use(cpu_features()->avx2 ? VECMATH_AVX2 : VECMATH_SSE);
    load_model();
    load_tokenizer();
    describe_model();
}

const struct infer_model_info *infer_model(void)
{
    return &info;
}

/* BOS first: the model was trained on texts that begin with it. */
int infer_tokenize(const char *text, size_t length, int **tokens)
{
    void *scratch = kmalloc(tokenizer_scratch_bytes(length));
    int count = -1;

    *tokens = kmalloc(sizeof(int) * tokenizer_max_tokens(length));
    if (scratch && *tokens)
        count = (int)tokenizer_encode(&tokenizer, text, length, *tokens, scratch);
    kfree(scratch);
    if (count < 0) {
        kfree(*tokens);
        *tokens = NULL;
    }
    return count;
}

bool infer_is_token(int token)
{
    return token >= 0 && token < model.config.vocab_size;
}

/* BOS and EOS mark where texts begin and end; they are not text of their own. */
void infer_append_piece(int previous, int token, struct strbuf *text)
{
    const uint8_t *bytes;
    size_t length;

    if (token == TOKEN_BOS || token == TOKEN_EOS)
        return;
    length = tokenizer_piece(&tokenizer, previous, token, &bytes);
    strbuf_append(text, bytes, length);
}

/* A session with a cache for context positions; *extra gets extra_bytes of its own. */
static struct infer_session *new_session(const int *prompt, int count, int context,
                                         size_t extra_bytes, void **extra)
{
    struct infer_session *s = kcalloc(1, sizeof(*s));
    uint64_t state_bytes = transformer_state_bytes(&model.config, context);

    if (!s)
        return NULL;
    s->prompt = kmalloc(sizeof(int) * (size_t)count);
    s->memory = kmalloc(state_bytes + extra_bytes);
    if (!s->prompt || !s->memory) {
        infer_finish(s);
        return NULL;
    }
    memcpy(s->prompt, prompt, sizeof(int) * (size_t)count);
    s->count = count;
    transformer_state_init(&s->state, &model.config, context, s->memory);
    *extra = (char *)s->memory + state_bytes;
    return s;
}

/* Temperature and top_p as the host reference converts them: (float)micros / 1e6f. */
struct infer_session *infer_start(const int *prompt, int count,
                                  const struct infer_sampling *sampling)
{
    const struct model_config *c = &model.config;
    void *sampler_memory;
    struct infer_session *s = new_session(prompt, count, c->seq_len,
                                          sampler_memory_bytes(c->vocab_size), &sampler_memory);

    if (s)
        sampler_init(&s->sampler, c->vocab_size,
                     (float)sampling->temperature_micros / (float)MICROS,
                     (float)sampling->top_p_micros / (float)MICROS, sampling->seed,
                     sampler_memory);
    return s;
}

/* An embedding needs a cache only as long as its own text. */
struct infer_session *infer_start_embedding(const int *tokens, int count)
{
    size_t sum_bytes = sizeof(float) * (size_t)model.config.dim;
    void *sum;
    struct infer_session *s = new_session(tokens, count, count, sum_bytes, &sum);

    if (s) {
        s->embedding = true;
        s->sum = memset(sum, 0, sum_bytes);
    }
    return s;
}

static int next_embedding_step(struct infer_session *s)
{
    int dim = model.config.dim;

    embedding_add(s->sum, transformer_hidden(&model, &s->state, s->prompt[s->pos], s->pos),
                  dim);
    if (++s->pos < s->count)
        return INFER_READING;
    embedding_finish(s->sum, s->count, dim);
    return INFER_END;
}

/*
 * Feed the next prompt token, or the token generated last; once the whole prompt is in, each
 * pass's logits give the next token. Prompt and generated tokens together never exceed the
 * context (so usage.total_tokens never does): a pass whose token would not fit is not made.
 */
int infer_next(struct infer_session *s)
{
    int token;
    float *logits;

    if (s->embedding)
        return s->pos < s->count ? next_embedding_step(s) : INFER_END;
    if (s->pos >= s->count - 1 && s->pos + 1 >= s->state.context)
        return INFER_FULL;
    token = s->pos < s->count ? s->prompt[s->pos] : s->last;
    logits = transformer_forward(&model, &s->state, token, s->pos++);
    if (s->pos < s->count)
        return INFER_READING;
    s->last = sampler_sample(&s->sampler, logits);
    return s->last == TOKEN_BOS || s->last == TOKEN_EOS ? INFER_END : s->last;
}

/*
 * kprintf has no %f. An embedding's values are at most 1 in magnitude (it has length 1), so
 * fixed point with 9 decimals keeps them to within 5e-10. JSON has no NaN or infinity: a value
 * that is not finite (only a broken model makes one) is written as 0.
 */
static void append_float(struct strbuf *json, float value)
{
    double magnitude = value < 0 ? -(double)value : (double)value;
    uint64_t nanos = magnitude < 1e9 ? (uint64_t)(magnitude * (double)NANOS + 0.5) : 0;

    strbuf_printf(json, "%s%lu.%09lu", value < 0 && nanos ? "-" : "", nanos / NANOS,
                  nanos % NANOS);
}

void infer_write_embedding(const struct infer_session *s, bool base64, struct strbuf *json)
{
    int dim = model.config.dim;

    if (base64) {
        /* x86 is little-endian: the floats' own bytes are what OpenAI's format wants. */
        strbuf_append_str(json, "\"");
        strbuf_append_base64(json, s->sum, sizeof(float) * (size_t)dim);
        strbuf_append_str(json, "\"");
        return;
    }
    strbuf_append_str(json, "[");
    for (int i = 0; i < dim; i++) {
        if (i)
            strbuf_append_str(json, ",");
        append_float(json, s->sum[i]);
    }
    strbuf_append_str(json, "]");
}

void infer_finish(struct infer_session *s)
{
    kfree(s->prompt);
    kfree(s->memory);
    kfree(s);
}
