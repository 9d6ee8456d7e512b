/* The host reference program: what its two source files share. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include "checkpoint.h"
#include "tokenizer.h"
#include "transformer.h"

/* The model and tokenizer files, opened, with a state for one sequence of the full context. */
struct engine {
    struct checkpoint model;
    struct tokenizer tokenizer;
    struct transformer_state state;
};

/* Encodes text (BOS first) into a malloc'd array; *count is set. Exits if memory runs out. */
int *encode_text(const struct engine *e, const char *text, size_t length, size_t *count);
/* The bytes tokens print after previous, in a malloc'd buffer; *length is set. */
uint8_t *decode_tokens(const struct engine *e, int previous, const int *tokens, size_t count,
                       size_t *length);
/* Reads a whole file into malloc'd memory; exits with a message if it cannot. */
char *read_whole_file(const char *path, size_t *size);
void *allocate(size_t bytes);

/* Checks the engine against golden.txt; prints a summary line; returns the exit status. */
int check_golden(struct engine *e, const char *golden_path);
/* Prints the model's loss and perplexity on a file of fortunes; returns the exit status. */
int print_perplexity(struct engine *e, const char *path);
