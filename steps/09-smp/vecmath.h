/*
 * The float arithmetic of the transformer: matrix times vector, RMSNorm, softmax, exp, sqrt.
 *
 * Every result is bit-identical whichever instructions compute it (plain C, SSE or AVX2), on
 * the host or in the kernel: no fused multiply-add, and every sum is taken in one fixed order.
 * A dot product of n terms keeps 8 running sums, lane l taking the terms j = l mod 8 below n
 * rounded down to a multiple of 8; the lanes are then added as ((l0+l4)+(l2+l6)) +
 * ((l1+l5)+(l3+l7)), and the remaining terms one by one, in order.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vecmath_path {
    VECMATH_SCALAR,   /* plain C, one float at a time: the definition the others must match */
    VECMATH_SSE,      /* 128-bit registers: every x86-64 CPU has SSE2 */
    VECMATH_AVX2,     /* 256-bit registers: only if the CPU has AVX2 and the OS enabled it */
};

/* Chooses the instructions; the default is VECMATH_SSE. Call before any other function here. */
void vecmath_use(enum vecmath_path path);
const char *vecmath_path_name(void);

float vec_dot(const float *a, const float *b, size_t n);
/* out[i] = dot(row i of w, x) for i < rows; w is rows x cols, row-major. out must not alias x. */
void vec_matmul(float *out, const float *w, const float *x, size_t rows, size_t cols);
/* The same with row i at w + i * stride (stride >= cols): keys in the cache, say. */
void vec_matmul_rows(float *out, const float *w, size_t stride, const float *x, size_t rows,
                     size_t cols);

/*
 * Int8 (llama2.c's Q8_0): values in groups of `group` (a count that divides every row), each
 * group an int8 per value and one float scale, value = int8 x scale. vec_quantize scales each
 * group of x so that its largest magnitude becomes 127 and rounds to the nearest integer, ties
 * to even. vec_matmul_q8: out[i] = sum over the groups g, in order from 0, of
 * (float)(the exact integer dot product of group g) * w_scale * x_scale.
 */
void vec_quantize(int8_t *q, float *scale, const float *x, size_t n, size_t group);
void vec_dequantize(float *out, const int8_t *q, const float *scale, size_t n, size_t group);
/* w is rows x cols int8 with rows x cols/group scales, row after row; x is cols int8. */
void vec_matmul_q8(float *out, const int8_t *w, const float *w_scale, const int8_t *x,
                   const float *x_scale, size_t rows, size_t cols, size_t group);

/* out = weight * x / sqrt(mean(x^2) + 1e-5); out may be x. */
void vec_rmsnorm(float *out, const float *x, const float *weight, size_t n);
/* x = exp(x - max) / sum, in place. */
void vec_softmax(float *x, size_t n);
/* x = x * (1 + exp(-x))^-1 * y, the SwiGLU gate; in place in x. */
void vec_swiglu(float *x, const float *y, size_t n);
void vec_add(float *x, const float *y, size_t n);
/* out += a * x; out must not overlap x. */
void vec_add_scaled(float *restrict out, float a, const float *restrict x, size_t n);

float vec_exp(float x);
float vec_sqrt(float x);
/* The rotary table of llama2.c's version 0 files for one position: cos and sin of
 * pos * 10000^(-2i/head_size) for i < head_size/2. */
void vec_rotary(float *cosines, float *sines, int pos, int head_size);
