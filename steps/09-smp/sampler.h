/*
 * Choosing the next token from the logits, as llama2.c's run.c does: at temperature 0 the most
 * likely token (the lowest id on a tie); otherwise a draw from softmax(logits / temperature),
 * restricted, when top_p < 1, to the most likely tokens whose probabilities add up to just
 * over top_p ("nucleus sampling").
 *
 * The random numbers are xorshift64* (as in run.c) started from splitmix64(seed): xorshift's
 * state must not be 0, and splitmix64 turns every seed, 0 included, into a well-mixed state.
 * The same seed and settings draw the same tokens on every machine.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sampler_candidate;

struct sampler {
    int vocab_size;
    float temperature;    /* 0: greedy */
    float top_p;          /* at most 0 or at least 1: no restriction */
    uint64_t rng_state;
    struct sampler_candidate *candidates;   /* vocab_size of them, for top-p */
};

/* Memory sampler_init needs (4-byte aligned). */
size_t sampler_memory_bytes(int vocab_size);
void sampler_init(struct sampler *s, int vocab_size, float temperature, float top_p,
                  uint64_t seed, void *memory);
/* Picks a token id (0 ... vocab_size-1). Overwrites the logits. */
int sampler_sample(struct sampler *s, float *logits);
/* The index of the largest of n values, the lowest on a tie. */
int sampler_argmax(const float *values, int n);
