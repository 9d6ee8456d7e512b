/*
 * A llama2.c checkpoint as it lies in memory. The weights stay where they are: the checkpoint
 * only points into the bytes. Two of llama2.c's formats:
 *
 * Version 0 ("legacy"): seven little-endian int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len; vocab_size is negative when the classifier is a matrix of
 * its own), then float32 tensors in this order: token embedding, attention RMSNorm, wq, wk,
 * wv, wo, feed-forward RMSNorm, w1, w2, w3, final RMSNorm, the rotary tables freq_cis_real and
 * freq_cis_imag, and the classifier if separate.
 *
 * Version 2 (Q8_0, what llama2.c's export.py --version 2 writes and runq.c reads): a 256-byte
 * header, the uint32 magic 0x616b3432 ("ak42"), int32 version 2, the seven int32 (vocab_size
 * positive), a byte that is 1 when the classifier is the embedding, the int32 group size, zeros.
 * Then the three RMSNorm tensors as float32 (attention, feed-forward, final), then every
 * matrix in int8: the token embedding, every layer's wq, then wk, wv, wo, w1, w2, w3, and the
 * classifier if separate. Each layer's matrix is its int8 values, row-major, followed by one
 * float32 scale per group of group-size values: weight = value x scale. No rotary tables.
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
    int group_size;   /* 0: float32 weights (version 0); else int8 in groups of this many */
    bool shared_classifier;   /* the classifier is the token embedding */
};

/*
 * One matrix of every layer (or of the only one), row-major with one row per output. Layer l
 * starts layer_bytes after layer l-1: its floats, or its int8 values and then their scales.
 */
struct layered_matrix {
    const uint8_t *first;   /* layer 0 */
    uint64_t layer_bytes;
    uint64_t values;        /* rows x columns, per layer */
};

/* One layer's matrix, as the arithmetic takes it: f for float32, else q and scale. */
struct matrix {
    const float *f;
    const int8_t *q;
    const float *scale;     /* one per group of config.group_size values, row after row */
};

struct model_weights {
    struct layered_matrix token_embedding;   /* vocab_size x dim */
    const float *rms_attention;               /* n_layers x dim */
    struct layered_matrix wq;                 /* dim x dim */
    struct layered_matrix wk;                 /* kv_dim x dim */
    struct layered_matrix wv;                 /* kv_dim x dim */
    struct layered_matrix wo;                 /* dim x dim */
    const float *rms_ffn;                     /* n_layers x dim */
    struct layered_matrix w1;                 /* hidden_dim x dim */
    struct layered_matrix w2;                 /* dim x hidden_dim */
    struct layered_matrix w3;                 /* hidden_dim x dim */
    const float *rms_final;                   /* dim */
    /* seq_len x head_size/2: cos(pos * 10000^(-2i/head_size)); NULL in version 2 */
    const float *rope_cos;
    const float *rope_sin;                    /* the sines; NULL in version 2 */
    struct layered_matrix classifier;         /* vocab_size x dim */
};

struct checkpoint {
    struct model_config config;
    struct model_weights weights;
    uint64_t parameters;   /* learned numbers: every weight but the rotary tables and scales */
};

/*
 * Reads the header and points the weights into data, which must stay in place and be 4-byte
 * aligned. Returns NULL, or why the bytes are not a checkpoint this engine can run: the
 * header is checked field by field and the size must be exactly what the header implies.
 */
const char *checkpoint_open(struct checkpoint *checkpoint, const void *data, size_t size);

/* Layer layer's matrix (0 for the embedding and the classifier). */
struct matrix checkpoint_matrix(const struct checkpoint *checkpoint,
                                const struct layered_matrix *matrix, int layer);
