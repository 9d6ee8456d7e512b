/*
 * The inference seam: everything the HTTP API needs from a language model. Step 07 put a
 * labelled placeholder behind it; step 08 puts a transformer behind the same functions, with
 * the model and its tokenizer loaded by GRUB as the modules model.bin and tokenizer.bin.
 *
 * A session is one generation or one embedding. It owns its key/value cache, so any number
 * can run at once, memory permitting, and each advances by one forward pass per infer_next:
 * the caller interleaves them with everything else the kernel does.
 *
 * Embeddings: the mean over every position of the prompt (BOS included) of the final hidden
 * state, after the final RMSNorm, scaled to length 1 (L2). Its dimension is the model's dim.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "strbuf.h"

struct infer_model_info {
    const char *id;
    const char *description;
    uint64_t parameters;
    int vocabulary_size;
    int context_length;
    int embedding_length;
};

/* Sampling settings; the API has checked their ranges. Fixed point: 1000000 means 1.0. */
struct infer_sampling {
    int64_t temperature_micros;
    int64_t top_p_micros;
    uint64_t seed;
};

/* What infer_next returns when it has no new token. */
enum {
    INFER_READING = -1,   /* it read one more token of the prompt */
    INFER_END = -2,       /* the model ended the text (BOS or EOS), or the embedding is done */
    INFER_FULL = -3,      /* the context is full */
};

struct infer_session;

/* Loads and checks the modules and prints what they hold; panics if they are missing or bad. */
void infer_init(void);
const struct infer_model_info *infer_model(void);
/* Tokens of text, BOS first, in a new array (kfree it): their count, or -1 if memory is short. */
int infer_tokenize(const char *text, size_t length, int **tokens);
bool infer_is_token(int token);
/* The text of token following previous (-1: none); after BOS it drops a leading space. */
void infer_append_piece(int previous, int token, struct strbuf *text);

/* A session reading prompt (count tokens, at most the context); NULL if memory is short. */
struct infer_session *infer_start(const int *prompt, int count,
                                  const struct infer_sampling *sampling);
struct infer_session *infer_start_embedding(const int *tokens, int count);
/* One forward pass: a new token, or one of INFER_READING, INFER_END, INFER_FULL. */
int infer_next(struct infer_session *session);
/* A finished embedding session's vector: a JSON array, or base64 of little-endian float32. */
void infer_write_embedding(const struct infer_session *session, bool base64,
                           struct strbuf *json);
void infer_finish(struct infer_session *session);
