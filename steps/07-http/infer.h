/*
 * The inference seam: everything the HTTP API needs from a language model. Step 07 puts a
 * labelled placeholder behind it; step 08 puts a real transformer behind the same functions.
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

struct infer_session;

const struct infer_model_info *infer_model(void);
int infer_tokenize(const char *text, size_t length, int *tokens, int capacity);
bool infer_is_token(int token);
void infer_append_piece(int token, struct strbuf *text);
struct infer_session *infer_start(const int *prompt, int count,
                                  const struct infer_sampling *sampling);
int infer_next(struct infer_session *session);
void infer_finish(struct infer_session *session);
/* The embedding as a JSON array of numbers, or as base64 of little-endian float32 values. */
void infer_write_embedding(const int *tokens, int count, bool base64, struct strbuf *json);
