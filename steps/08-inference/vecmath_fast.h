/*
 * The fast path: SIMD versions of vecmath's matrix products (vecmath_fast.c), which vecmath.c
 * calls for the instructions vecmath_use chose. Each gives exactly the bits of the plain C in
 * vecmath.c. Not for the rest of the engine, which calls vecmath.h.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* vec_matmul_rows with SSE2 (every x86-64 CPU) or AVX2 registers. */
void matmul_sse(float *out, const float *w, size_t stride, const float *x, size_t rows,
                size_t cols);
void matmul_avx2(float *out, const float *w, size_t stride, const float *x, size_t rows,
                 size_t cols);

/*
 * vec_matmul_q8 with AVX2, for a group size that is a multiple of MATMUL_Q8_CHUNK: the
 * products of a group are summed 32 bytes at a time.
 */
#define MATMUL_Q8_CHUNK 32
void matmul_q8_avx2(float *out, const int8_t *w, const float *w_scale, const int8_t *x,
                    const float *x_scale, size_t rows, size_t cols, size_t group);

/* vecmath.c's definition of what follows the lanes: sum + a[j] * b[j] for j = from ... n-1. */
float add_tail(float sum, const float *a, const float *b, size_t from, size_t n);
