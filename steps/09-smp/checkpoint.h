/*
 * A llama2.c checkpoint, version 0 ("legacy"), as it lies in memory: seven little-endian
 * int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; vocab_size is
 * negative when the classifier is a matrix of its own), then float32 tensors in this order:
 * token embedding, attention RMSNorm, wq, wk, wv, wo, feed-forward RMSNorm, w1, w2, w3, final
 * RMSNorm, the rotary tables freq_cis_real and freq_cis_imag, and the classifier if separate.
 * The weights stay where they are: the checkpoint only points into the bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct model_config {
    int dim;          /* width of the residual stream */
    int hidden_dim;   /* width of the feed-forward layer */
    int n_layers;
    int n_heads;      /* query heads */
    int n_kv_heads;   /* key/value heads; each serves n_heads / n_kv_heads query heads */
    int vocab_size;   /* always positive here; see shared_classifier */
    int seq_len;      /* the context: the longest sequence the rotary tables cover */
    int head_size;    /* dim / n_heads */
    int kv_dim;       /* n_kv_heads * head_size */
    bool shared_classifier;   /* the classifier is the token embedding */
};

/* Matrices are row-major, one row per output; per-layer tensors are stacked layer by layer. */
struct model_weights {
    const float *token_embedding;   /* vocab_size x dim */
    const float *rms_attention;     /* n_layers x dim */
    const float *wq;                /* n_layers x dim x dim */
    const float *wk;                /* n_layers x kv_dim x dim */
    const float *wv;                /* n_layers x kv_dim x dim */
    const float *wo;                /* n_layers x dim x dim */
    const float *rms_ffn;           /* n_layers x dim */
    const float *w1;                /* n_layers x hidden_dim x dim */
    const float *w2;                /* n_layers x dim x hidden_dim */
    const float *w3;                /* n_layers x hidden_dim x dim */
    const float *rms_final;         /* dim */
    const float *rope_cos;          /* seq_len x head_size/2: cos(pos * 10000^(-2i/head_size)) */
    const float *rope_sin;          /* seq_len x head_size/2: the sines */
    const float *classifier;        /* vocab_size x dim */
};

struct checkpoint {
    struct model_config config;
    struct model_weights weights;
    uint64_t parameters;   /* learned numbers: every float but the rotary tables */
};

/*
 * Reads the header and points the weights into data, which must stay in place and be 4-byte
 * aligned. Returns NULL, or why the bytes are not a checkpoint this engine can run: the
 * header is checked field by field and the size must be exactly what the header implies.
 */
const char *checkpoint_open(struct checkpoint *checkpoint, const void *data, size_t size);
