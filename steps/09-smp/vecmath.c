/*
 * The float arithmetic of the transformer. Nearly all of the time goes into vec_matmul, so it
 * alone has SIMD versions, written with GCC's vector extension (a float[4] or float[8] that +
 * and * act on lane by lane): for SSE, a row's 8 lanes are two 128-bit registers, lanes 0-3
 * and 4-7; for AVX2, one 256-bit register. Lane by lane, each does exactly what the plain C
 * version does, so all three give the same bits.
 */
#include "vecmath.h"

#define LANES 8
#define RMS_EPSILON 1e-5f

/* aligned(4): weights are only float-aligned; may_alias: they are memory written as float. */
typedef float lanes4_t __attribute__((vector_size(4 * sizeof(float)), aligned(4), may_alias));
typedef float lanes8_t __attribute__((vector_size(8 * sizeof(float)), aligned(4), may_alias));

#define LOAD4(p) (*(const lanes4_t *)(p))
#define LOAD8(p) (*(const lanes8_t *)(p))

static enum vecmath_path path = VECMATH_SSE;

void vecmath_use(enum vecmath_path chosen)
{
    path = chosen;
}

const char *vecmath_path_name(void)
{
    return path == VECMATH_AVX2 ? "avx2" : path == VECMATH_SSE ? "sse" : "scalar";
}

/* After the lanes: the terms past the last multiple of 8, in order. */
static float add_tail(float sum, const float *a, const float *b, size_t from, size_t n)
{
    for (size_t j = from; j < n; j++)
        sum += a[j] * b[j];
    return sum;
}

/* The fixed tree over 8 lanes, in plain C. */
static float lane_tree(const float lane[LANES])
{
    return ((lane[0] + lane[4]) + (lane[2] + lane[6])) +
           ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

static float dot_scalar(const float *a, const float *b, size_t n)
{
    float lane[LANES] = { 0 };
    size_t whole = n - n % LANES;

    for (size_t j = 0; j < whole; j += LANES)
        for (size_t l = 0; l < LANES; l++)
            lane[l] += a[j + l] * b[j + l];
    return add_tail(lane_tree(lane), a, b, whole, n);
}

/*
 * The SIMD versions take four rows at a time: each row still sums its own lanes in the order
 * above, but four independent sums keep the adder busy, and x is loaded once for all four.
 * Past the last row they repeat it, computing a result that is not stored.
 */
struct four_rows {
    const float *w[4];
    size_t count;   /* how many are real rows: 1 ... 4 */
};

static inline __attribute__((always_inline)) struct four_rows
four_rows(const float *w, size_t row, size_t rows, size_t cols)
{
    struct four_rows r = { .count = rows - row < 4 ? rows - row : 4 };

    for (size_t i = 0; i < 4; i++)
        r.w[i] = w + (row + (i < r.count ? i : r.count - 1)) * cols;
    return r;
}

/*
 * The same tree for four rows at once, in SSE registers. half[r] holds row r's lanes k + k+4
 * (k = 0 ... 3), the tree's first level. Transposed, so that column[k] holds lane k of every
 * row, the other two levels are two vector additions, each lane still adding what it would
 * alone: (column 0 + column 2) + (column 1 + column 3).
 */
static inline __attribute__((always_inline)) lanes4_t
tree_of_four(lanes4_t half0, lanes4_t half1, lanes4_t half2, lanes4_t half3)
{
    lanes4_t low01 = __builtin_shufflevector(half0, half1, 0, 4, 1, 5);
    lanes4_t low23 = __builtin_shufflevector(half2, half3, 0, 4, 1, 5);
    lanes4_t high01 = __builtin_shufflevector(half0, half1, 2, 6, 3, 7);
    lanes4_t high23 = __builtin_shufflevector(half2, half3, 2, 6, 3, 7);
    lanes4_t column0 = __builtin_shufflevector(low01, low23, 0, 1, 4, 5);
    lanes4_t column1 = __builtin_shufflevector(low01, low23, 2, 3, 6, 7);
    lanes4_t column2 = __builtin_shufflevector(high01, high23, 0, 1, 4, 5);
    lanes4_t column3 = __builtin_shufflevector(high01, high23, 2, 3, 6, 7);

    return (column0 + column2) + (column1 + column3);
}

static void store_rows(float *out, const struct four_rows *r, lanes4_t sums, const float *x,
                       size_t whole, size_t cols)
{
    for (size_t i = 0; i < r->count; i++)
        out[i] = add_tail(sums[i], r->w[i], x, whole, cols);
}

static void matmul_sse(float *out, const float *w, const float *x, size_t rows, size_t cols)
{
    size_t whole = cols - cols % LANES;

    for (size_t row = 0; row < rows; row += 4) {
        struct four_rows r = four_rows(w, row, rows, cols);
        lanes4_t lo0 = { 0 }, hi0 = { 0 }, lo1 = { 0 }, hi1 = { 0 };
        lanes4_t lo2 = { 0 }, hi2 = { 0 }, lo3 = { 0 }, hi3 = { 0 };
        for (size_t j = 0; j < whole; j += LANES) {
            lanes4_t x_lo = LOAD4(x + j), x_hi = LOAD4(x + j + 4);
            lo0 += LOAD4(r.w[0] + j) * x_lo;
            hi0 += LOAD4(r.w[0] + j + 4) * x_hi;
            lo1 += LOAD4(r.w[1] + j) * x_lo;
            hi1 += LOAD4(r.w[1] + j + 4) * x_hi;
            lo2 += LOAD4(r.w[2] + j) * x_lo;
            hi2 += LOAD4(r.w[2] + j + 4) * x_hi;
            lo3 += LOAD4(r.w[3] + j) * x_lo;
            hi3 += LOAD4(r.w[3] + j + 4) * x_hi;
        }
        store_rows(out + row, &r, tree_of_four(lo0 + hi0, lo1 + hi1, lo2 + hi2, lo3 + hi3), x,
                   whole, cols);
    }
}

/* Lanes 0-3 plus lanes 4-7: the first level of the tree, as an SSE register. */
#define FOLD(s) \
    (__builtin_shufflevector(s, s, 0, 1, 2, 3) + __builtin_shufflevector(s, s, 4, 5, 6, 7))

__attribute__((target("avx2"))) static void matmul_avx2(float *out, const float *w,
                                                        const float *x, size_t rows,
                                                        size_t cols)
{
    size_t whole = cols - cols % LANES;

    for (size_t row = 0; row < rows; row += 4) {
        struct four_rows r = four_rows(w, row, rows, cols);
        lanes8_t s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
        for (size_t j = 0; j < whole; j += LANES) {
            lanes8_t xj = LOAD8(x + j);
            s0 += LOAD8(r.w[0] + j) * xj;
            s1 += LOAD8(r.w[1] + j) * xj;
            s2 += LOAD8(r.w[2] + j) * xj;
            s3 += LOAD8(r.w[3] + j) * xj;
        }
        store_rows(out + row, &r, tree_of_four(FOLD(s0), FOLD(s1), FOLD(s2), FOLD(s3)), x,
                   whole, cols);
    }
}

void vec_matmul(float *out, const float *w, const float *x, size_t rows, size_t cols)
{
    if (path == VECMATH_AVX2)
        matmul_avx2(out, w, x, rows, cols);
    else if (path == VECMATH_SSE)
        matmul_sse(out, w, x, rows, cols);
    else
        for (size_t row = 0; row < rows; row++)
            out[row] = dot_scalar(w + row * cols, x, cols);
}

/*
 * Short dot products (attention scores, norms) are not worth four rows at a time, and the
 * plain version gives the same sum; the compiler vectorises its inner loop anyway.
 */
float vec_dot(const float *a, const float *b, size_t n)
{
    return dot_scalar(a, b, n);
}

/*
 * The compiler's sqrtf may call the C library to set errno for a negative argument, and the
 * kernel has no C library: ask for the instruction itself, correctly rounded by IEEE 754.
 */
float vec_sqrt(float x)
{
    float root;

    __asm__("sqrtss %1, %0" : "=x"(root) : "x"(x));
    return root;
}

void vec_rmsnorm(float *out, const float *x, const float *weight, size_t n)
{
    float mean_square = vec_dot(x, x, n) / (float)n;
    float scale = 1.0f / vec_sqrt(mean_square + RMS_EPSILON);

    for (size_t i = 0; i < n; i++)
        out[i] = weight[i] * (scale * x[i]);
}

/*
 * e^x without a maths library: x = k ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor series
 * to r^10 (the next term is below 1e-11 of the result), 2^k put straight into the exponent
 * bits. All in double, so the one rounding to float at the end is what decides the result:
 * that is the correctly rounded e^x for all but a handful of arguments.
 */
float vec_exp(float x)
{
    /* 1/n! for n = 10 down to 0, for Horner's rule. */
    static const double coefficients[] = {
        1.0 / 3628800, 1.0 / 362880, 1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120,
        1.0 / 24,      1.0 / 6,      1.0 / 2,     1.0,        1.0,
    };
    static const double ln2 = 0.6931471805599453094, inverse_ln2 = 1.4426950408889634074;
    double r, sum = 0.0, scale;
    uint64_t scale_bits;
    int64_t k;

    if (x != x)
        return x;             /* NaN */
    if (x > 89.0f)
        return 1e30f * 1e30f; /* +inf: e^89 is beyond the largest float */
    if (x < -104.0f)
        return 0.0f;          /* below half the smallest subnormal float */
    k = (int64_t)(x * inverse_ln2 + (x < 0 ? -0.5 : 0.5));
    r = x - (double)k * ln2;
    for (size_t i = 0; i < sizeof(coefficients) / sizeof(coefficients[0]); i++)
        sum = sum * r + coefficients[i];
    scale_bits = (uint64_t)(k + 1023) << 52;
    __builtin_memcpy(&scale, &scale_bits, sizeof(scale));
    return (float)(sum * scale);
}

void vec_softmax(float *x, size_t n)
{
    float max = x[0], sum = 0.0f;

    for (size_t i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    for (size_t i = 0; i < n; i++) {
        x[i] = vec_exp(x[i] - max);
        sum += x[i];
    }
    for (size_t i = 0; i < n; i++)
        x[i] /= sum;
}

void vec_swiglu(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] / (1.0f + vec_exp(-x[i])) * y[i];
}

void vec_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}
