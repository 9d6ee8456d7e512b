/*
 * The fast path: matrix times vector in SIMD registers, for SSE2 and for AVX2. They are written
 * with GCC's vector extension, in which a lanes8_t is eight floats that + and * act on lane by
 * lane: for SSE a row's eight lanes are two 128-bit registers, lanes 0-3 and 4-7; for AVX2 one
 * 256-bit register. Lane by lane, each does what dot_scalar in vecmath.c does, in the same
 * order, so every path gives the same bits.
 *
 * What makes it fast is memory, not arithmetic. A forward pass reads every weight once and
 * does two operations with it, so the processor spends its time waiting for weights to arrive;
 * the way to go faster is to keep many loads in flight. Four rows are taken at a time, so a
 * load of x serves four rows and four sums grow independently, each step of the loop covers
 * 16 columns, eight loads of weights that do not wait for one another, and it asks for the
 * next four rows' same columns before it needs them.
 */
#include <immintrin.h>
#include "vecmath_fast.h"

#define LANES 8

/* aligned(4): weights are only float-aligned; may_alias: they are memory written as float. */
typedef float lanes4_t __attribute__((vector_size(4 * sizeof(float)), aligned(4), may_alias));
typedef float lanes8_t __attribute__((vector_size(8 * sizeof(float)), aligned(4), may_alias));

#define LOAD4(p) (*(const lanes4_t *)(p))
#define LOAD8(p) (*(const lanes8_t *)(p))
/* Lanes 0-3 plus lanes 4-7: the first level of the lane tree, as an SSE register. */
#define FOLD(s) \
    (__builtin_shufflevector(s, s, 0, 1, 2, 3) + __builtin_shufflevector(s, s, 4, 5, 6, 7))

/*
 * Four rows at a time. Past the last row a group repeats it, computing a result that is not
 * stored: the one partial group of a product stays on the SIMD path.
 */
struct four_rows {
    const float *w[4];
    size_t count;   /* how many are real rows: 1 ... 4 */
};

static inline __attribute__((always_inline)) struct four_rows
four_rows(const float *w, size_t stride, size_t row, size_t rows)
{
    struct four_rows r = { .count = rows - row < 4 ? rows - row : 4 };

    for (size_t i = 0; i < 4; i++)
        r.w[i] = w + (row + (i < r.count ? i : r.count - 1)) * stride;
    return r;
}

/*
 * The lane tree for four rows at once, in SSE registers. half[r] holds row r's lanes k + k+4
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

/* The four trees' results, each completed with its row's tail; only real rows are stored. */
static inline __attribute__((always_inline)) void
store_rows(float *out, const struct four_rows *r, lanes4_t sums, const float *x, size_t whole,
           size_t cols)
{
    for (size_t i = 0; i < r->count; i++)
        out[i] = whole == cols ? sums[i] : add_tail(sums[i], r->w[i], x, whole, cols);
}

/* One row's lanes, 0-3 in lo and 4-7 in hi, plus 8 columns at j. */
#define STEP_SSE(lo, hi, row, j, x_lo, x_hi) \
    ((lo) += LOAD4((row) + (j)) * (x_lo), (hi) += LOAD4((row) + (j) + 4) * (x_hi))

void matmul_sse(float *out, const float *w, size_t stride, const float *x, size_t rows,
                size_t cols)
{
    size_t whole = cols - cols % LANES;

    for (size_t row = 0; row < rows; row += 4) {
        struct four_rows r = four_rows(w, stride, row, rows);
        lanes4_t lo0 = { 0 }, hi0 = { 0 }, lo1 = { 0 }, hi1 = { 0 };
        lanes4_t lo2 = { 0 }, hi2 = { 0 }, lo3 = { 0 }, hi3 = { 0 };
        for (size_t j = 0; j < whole; j += LANES) {
            lanes4_t x_lo = LOAD4(x + j), x_hi = LOAD4(x + j + 4);
            STEP_SSE(lo0, hi0, r.w[0], j, x_lo, x_hi);
            STEP_SSE(lo1, hi1, r.w[1], j, x_lo, x_hi);
            STEP_SSE(lo2, hi2, r.w[2], j, x_lo, x_hi);
            STEP_SSE(lo3, hi3, r.w[3], j, x_lo, x_hi);
        }
        store_rows(out + row, &r,
                   tree_of_four(lo0 + hi0, lo1 + hi1, lo2 + hi2, lo3 + hi3), x, whole, cols);
    }
}

/*
 * Four rows' sums over columns 0 ... whole-1, two steps of 8 columns per iteration. A row's
 * sum still takes its products in column order, (s + w[j..] x[j..]) + w[j+8..] x[j+8..], so
 * the bits are those of one step at a time. Each iteration also asks the cache for the 64
 * bytes (one line, 16 floats) of the same columns four rows further on, which the next group
 * reads: a prefetch changes no result, and past the last row it is harmless.
 */
__attribute__((target("avx2"))) static inline lanes4_t
sums_avx2(const struct four_rows *r, const float *x, size_t whole, size_t ahead)
{
    lanes8_t s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
    size_t j = 0;

    for (; j + 2 * LANES <= whole; j += 2 * LANES) {
        lanes8_t x0 = LOAD8(x + j), x1 = LOAD8(x + j + LANES);
        __builtin_prefetch(r->w[0] + j + ahead);
        __builtin_prefetch(r->w[1] + j + ahead);
        __builtin_prefetch(r->w[2] + j + ahead);
        __builtin_prefetch(r->w[3] + j + ahead);
        s0 = (s0 + LOAD8(r->w[0] + j) * x0) + LOAD8(r->w[0] + j + LANES) * x1;
        s1 = (s1 + LOAD8(r->w[1] + j) * x0) + LOAD8(r->w[1] + j + LANES) * x1;
        s2 = (s2 + LOAD8(r->w[2] + j) * x0) + LOAD8(r->w[2] + j + LANES) * x1;
        s3 = (s3 + LOAD8(r->w[3] + j) * x0) + LOAD8(r->w[3] + j + LANES) * x1;
    }
    if (j < whole) {
        lanes8_t x0 = LOAD8(x + j);
        s0 += LOAD8(r->w[0] + j) * x0;
        s1 += LOAD8(r->w[1] + j) * x0;
        s2 += LOAD8(r->w[2] + j) * x0;
        s3 += LOAD8(r->w[3] + j) * x0;
    }
    return tree_of_four(FOLD(s0), FOLD(s1), FOLD(s2), FOLD(s3));
}

__attribute__((target("avx2"))) void matmul_avx2(float *out, const float *w, size_t stride,
                                                 const float *x, size_t rows, size_t cols)
{
    size_t whole = cols - cols % LANES;

    for (size_t row = 0; row < rows; row += 4) {
        struct four_rows r = four_rows(w, stride, row, rows);
        store_rows(out + row, &r, sums_avx2(&r, x, whole, 4 * stride), x, whole, cols);
    }
}

/*
 * Int8. A group's products are integers, and their sum is exact in any order, so the SIMD
 * path may add them however it likes; only the float steps after each group must follow
 * dot_q8 in vecmath.c. AVX2 multiplies bytes with vpmaddubsw, which takes one operand as
 * unsigned and adds adjacent products into 16 bits: |w| goes first (|-128| is 128 as an
 * unsigned byte) and x takes w's sign. x comes from vec_quantize, so |x| <= 127 and a pair of
 * products is at most 2 x 128 x 127, which 16 bits hold. vpmaddwd by ones then adds pairs
 * into eight 32-bit sums.
 */
__attribute__((target("avx2"))) static inline __m256i chunk_products(const int8_t *w, __m256i x)
{
    __m256i weights = _mm256_loadu_si256((const __m256i *)w);
    __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(weights), _mm256_sign_epi8(x, weights));

    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/*
 * Four rows' integer sums of one group: eight 32-bit sums each, folded by horizontal
 * additions into one register that holds row 0, 1, 2 and 3's totals.
 */
__attribute__((target("avx2"))) static inline __m128i
group_sums(const int8_t *const row[4], const int8_t *x, size_t from, size_t group)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;

    for (size_t j = from; j < from + group; j += MATMUL_Q8_CHUNK) {
        __m256i xj = _mm256_loadu_si256((const __m256i *)(x + j));
        s0 = _mm256_add_epi32(s0, chunk_products(row[0] + j, xj));
        s1 = _mm256_add_epi32(s1, chunk_products(row[1] + j, xj));
        s2 = _mm256_add_epi32(s2, chunk_products(row[2] + j, xj));
        s3 = _mm256_add_epi32(s3, chunk_products(row[3] + j, xj));
    }
    __m256i folded = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
    return _mm_add_epi32(_mm256_castsi256_si128(folded), _mm256_extracti128_si256(folded, 1));
}

/* Four rows at a time, the last group repeating its last row as matmul_avx2's does. */
__attribute__((target("avx2"))) void matmul_q8_avx2(float *out, const int8_t *w,
                                                    const float *w_scale, const int8_t *x,
                                                    const float *x_scale, size_t rows,
                                                    size_t cols, size_t group)
{
    size_t groups = cols / group;

    for (size_t row = 0; row < rows; row += 4) {
        size_t count = rows - row < 4 ? rows - row : 4;
        const int8_t *r[4];
        const float *scales[4];
        __m128 sums = _mm_setzero_ps();
        float result[4];

        for (size_t i = 0; i < 4; i++) {
            size_t real = row + (i < count ? i : count - 1);
            r[i] = w + real * cols;
            scales[i] = w_scale + real * groups;
        }
        for (size_t g = 0; g < groups; g++) {
            __m128 whole = _mm_cvtepi32_ps(group_sums(r, x, g * group, group));
            __m128 row_scales = _mm_set_ps(scales[3][g], scales[2][g], scales[1][g], scales[0][g]);
            sums = _mm_add_ps(sums, _mm_mul_ps(_mm_mul_ps(whole, row_scales),
                                               _mm_set1_ps(x_scale[g])));
        }
        _mm_storeu_ps(result, sums);
        for (size_t i = 0; i < count; i++)
            out[row + i] = result[i];
    }
}
