/*
 * The inference seam: everything the HTTP API needs from a language model. Step 07 puts a
 * labelled placeholder behind it (infer.c); step 08 replaces that one file with a transformer,
 * and nothing above the seam changes.
 *
 * A session is one generation or one embedding. It owns its memory, so any number can run at
 * once, memory permitting, and each advances by one step of the model per infer_next: the
 * caller interleaves them with everything else the kernel does.
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
    INFER_END = -2,       /* the model ended the text, or the embedding is done */
    INFER_FULL = -3,      /* the context is full */
};

struct infer_session;

/* Prepares the model and prints what it is; panics if there is nothing to serve. */
void infer_init(void);
const struct infer_model_info *infer_model(void);
/*
 * The tokens the model reads for text, in a new array (kfree it): their count, or -1 if memory
 * is short. Any length: the caller decides what fits the context.
 */
int infer_tokenize(const char *text, size_t length, int **tokens);
bool infer_is_token(int token);
/* The text of token following the token previous (-1: none), which may shape it. */
void infer_append_piece(int previous, int token, struct strbuf *text);

/* A session reading prompt (count tokens, at most the context); NULL if memory is short. */
struct infer_session *infer_start(const int *prompt, int count,
                                  const struct infer_sampling *sampling);
struct infer_session *infer_start_embedding(const int *tokens, int count);
/* One step of the model: a new token, or one of INFER_READING, INFER_END, INFER_FULL. */
int infer_next(struct infer_session *session);
/*
 * A finished embedding session's vector, embedding_length values scaled to length 1: a JSON
 * array, or base64 of little-endian float32.
 */
void infer_write_embedding(const struct infer_session *session, bool base64,
                           struct strbuf *json);
void infer_finish(struct infer_session *session);
