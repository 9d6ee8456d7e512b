/*
 * The forward pass of a Llama network, one token at a time, as llama2.c's run.c computes it:
 * RMSNorm, attention with rotary embeddings and grouped key/value heads, a SwiGLU feed-forward
 * layer, a residual stream around both, and a classifier that gives one logit per token.
 *
 * The weights are read-only and shared. Everything a generation writes is a transformer_state
 * in memory the caller provides: the activations and the key/value cache, which remembers the
 * keys and values of every position so far so that each new token costs one pass.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "checkpoint.h"

struct transformer_state {
    int context;          /* positions the key/value cache holds, at most seq_len */
    float *x;             /* dim: the residual stream */
    float *xb, *xb2;      /* dim: scratch */
    float *hb, *hb2;      /* hidden_dim: the feed-forward layer */
    float *q;             /* dim: the current query */
    float *attention;     /* n_heads x context: attention weights */
    float *logits;        /* vocab_size */
    float *key_cache;     /* n_layers x context x kv_dim */
    float *value_cache;   /* n_layers x context x kv_dim */
    const float *cosines, *sines;   /* head_size/2 each: the rotary angles of this position */
    float *rotary;        /* head_size: where they are computed, for a version 2 checkpoint */
    int8_t *input;        /* int8 models: the vector being multiplied, quantized */
    float *input_scale;   /* ... and its scales, one per group */
};

/* Bytes of memory a state needs for a context of this many positions (1 ... seq_len). */
uint64_t transformer_state_bytes(const struct model_config *config, int context);
/* memory: transformer_state_bytes() of them, 4-byte aligned. Its contents do not matter. */
void transformer_state_init(struct transformer_state *state, const struct model_config *config,
                            int context, void *memory);

/*
 * Feeds token (0 ... vocab_size-1) at position pos (0 ... context-1); every earlier position
 * must have been fed, in order. Returns the hidden state after the final RMSNorm (dim floats,
 * in the state: valid until the next call).
 */
const float *transformer_hidden(const struct checkpoint *model, struct transformer_state *state,
                                int token, int pos);
/* The same, then the classifier: returns the logits for the next token (vocab_size floats). */
float *transformer_forward(const struct checkpoint *model, struct transformer_state *state,
                           int token, int pos);

/*
 * Embedding of a token sequence: the mean over all its positions (BOS included) of the hidden
 * state after the final RMSNorm, scaled to length 1. Add each position's hidden state to a
 * zeroed sum of dim floats, then finish it.
 */
void embedding_add(float *sum, const float *hidden, int dim);
void embedding_finish(float *sum, int positions, int dim);
/* The whole of it in one call: count tokens (1 ... context) into out (dim floats). */
void transformer_embed(const struct checkpoint *model, struct transformer_state *state,
                       const int *tokens, int count, float *out);
