/*
 * The float arithmetic of the transformer, in plain C: this file is the definition of every
 * result. Nearly all of the time goes into matrix products, whose SIMD versions (the fast
 * path, vecmath_fast.c) must give exactly the bits that dot_scalar gives here.
 */
#include "vecmath.h"
#include "vecmath_fast.h"

#define LANES 8
#define RMS_EPSILON 1e-5f

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
float add_tail(float sum, const float *a, const float *b, size_t from, size_t n)
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

void vec_matmul_rows(float *out, const float *w, size_t stride, const float *x, size_t rows,
                     size_t cols)
{
    if (path == VECMATH_AVX2)
        matmul_avx2(out, w, stride, x, rows, cols);
    else if (path == VECMATH_SSE)
        matmul_sse(out, w, stride, x, rows, cols);
    else
        for (size_t row = 0; row < rows; row++)
            out[row] = dot_scalar(w + row * stride, x, cols);
}

void vec_matmul(float *out, const float *w, const float *x, size_t rows, size_t cols)
{
    vec_matmul_rows(out, w, cols, x, rows, cols);
}

/*
 * Int8 weights (llama2.c's Q8_0). Each group of `group` values shares a float scale, and the
 * vector they multiply is quantized the same way, so that a group's products are integers:
 * their sum is exact, in whatever order a SIMD path adds them. Only the groups' float
 * contributions need an order: one after another, starting from 0.
 */
static float dot_q8(const int8_t *w, const float *w_scale, const int8_t *x, const float *x_scale,
                    size_t n, size_t group)
{
    float sum = 0.0f;

    for (size_t g = 0; g < n / group; g++) {
        int32_t whole = 0;
        for (size_t j = g * group; j < (g + 1) * group; j++)
            whole += (int32_t)w[j] * (int32_t)x[j];
        sum += (float)whole * w_scale[g] * x_scale[g];
    }
    return sum;
}

void vec_matmul_q8(float *out, const int8_t *w, const float *w_scale, const int8_t *x,
                   const float *x_scale, size_t rows, size_t cols, size_t group)
{
    if (path == VECMATH_AVX2 && group % MATMUL_Q8_CHUNK == 0) {
        matmul_q8_avx2(out, w, w_scale, x, x_scale, rows, cols, group);
        return;
    }
    for (size_t row = 0; row < rows; row++)
        out[row] = dot_q8(w + row * cols, w_scale + row * (cols / group), x, x_scale, cols,
                          group);
}

/* The nearest integer, ties to even: cvtss2si rounds as MXCSR says, and both the kernel and
 * Linux leave it at round to nearest. */
static int32_t nearest(float x)
{
    int32_t rounded;

    __asm__("cvtss2si %1, %0" : "=r"(rounded) : "x"(x));
    return rounded;
}

void vec_quantize(int8_t *q, float *scale, const float *x, size_t n, size_t group)
{
    for (size_t g = 0; g < n / group; g++) {
        const float *values = x + g * group;
        float largest = 0.0f;
        for (size_t j = 0; j < group; j++) {
            float magnitude = values[j] < 0.0f ? -values[j] : values[j];
            if (magnitude > largest)
                largest = magnitude;
        }
        scale[g] = largest / 127.0f;
        for (size_t j = 0; j < group; j++)
            q[g * group + j] = largest > 0.0f ? (int8_t)nearest(values[j] / scale[g]) : 0;
    }
}

void vec_dequantize(float *out, const int8_t *q, const float *scale, size_t n, size_t group)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)q[i] * scale[i / group];
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
 * bits. All in double, for |x| below about 700.
 */
static double exp_in_double(double x)
{
    /* 1/n! for n = 10 down to 0, for Horner's rule. */
    static const double coefficients[] = {
        1.0 / 3628800, 1.0 / 362880, 1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120,
        1.0 / 24,      1.0 / 6,      1.0 / 2,     1.0,        1.0,
    };
    static const double ln2 = 0.6931471805599453094, inverse_ln2 = 1.4426950408889634074;
    int64_t k = (int64_t)(x * inverse_ln2 + (x < 0 ? -0.5 : 0.5));
    double r = x - (double)k * ln2, sum = 0.0, scale;
    uint64_t scale_bits = (uint64_t)(k + 1023) << 52;

    for (size_t i = 0; i < sizeof(coefficients) / sizeof(coefficients[0]); i++)
        sum = sum * r + coefficients[i];
    __builtin_memcpy(&scale, &scale_bits, sizeof(scale));
    return sum * scale;
}

/*
 * In double, so the one rounding to float at the end is what decides the result: that is the
 * correctly rounded e^x for all but a handful of arguments.
 */
float vec_exp(float x)
{
    if (x != x)
        return x;             /* NaN */
    if (x > 89.0f)
        return 1e30f * 1e30f; /* +inf: e^89 is beyond the largest float */
    if (x < -104.0f)
        return 0.0f;          /* below half the smallest subnormal float */
    return (float)exp_in_double(x);
}

/*
 * sin and cos of an angle: minus the nearest multiple k of pi/2, which is in two parts so
 * that k times the first is exact, the rest r is within pi/4, where the Taylor series to r^17
 * (sin) and r^16 (cos) are exact to double precision; k mod 4 says which is which, and signs.
 */
static void sin_cos(double angle, double *sine, double *cosine)
{
    /* (-1)^n / (2n+1)! and (-1)^n / (2n)! for n = 8 down to 0, for Horner's rule in r^2. */
    static const double sin_terms[] = {
        1.0 / 355687428096000, -1.0 / 1307674368000, 1.0 / 6227020800, -1.0 / 39916800,
        1.0 / 362880, -1.0 / 5040, 1.0 / 120, -1.0 / 6, 1.0,
    };
    static const double cos_terms[] = {
        1.0 / 20922789888000, -1.0 / 87178291200, 1.0 / 479001600, -1.0 / 3628800,
        1.0 / 40320, -1.0 / 720, 1.0 / 24, -1.0 / 2, 1.0,
    };
    static const double half_pi_high = 1.57079632673412561417;   /* 33 bits of pi/2 */
    static const double half_pi_low = 6.07710050650619224932e-11;
    static const double two_over_pi = 0.63661977236758134308;
    int64_t k = (int64_t)(angle * two_over_pi + (angle < 0 ? -0.5 : 0.5));
    double r = (angle - (double)k * half_pi_high) - (double)k * half_pi_low, r2 = r * r;
    double s = 0.0, c = 0.0;

    for (size_t i = 0; i < sizeof(sin_terms) / sizeof(sin_terms[0]); i++) {
        s = s * r2 + sin_terms[i];
        c = c * r2 + cos_terms[i];
    }
    s *= r;
    switch (k & 3) {
    case 0:  *sine = s;  *cosine = c;  break;
    case 1:  *sine = c;  *cosine = -s; break;
    case 2:  *sine = -s; *cosine = -c; break;
    default: *sine = -c; *cosine = s;  break;
    }
}

void vec_rotary(float *cosines, float *sines, int pos, int head_size)
{
    static const double ln_theta = 9.2103403719761827361;   /* ln 10000 */

    for (int i = 0; i < head_size / 2; i++) {
        double frequency = exp_in_double(-(double)(2 * i) / head_size * ln_theta), s, c;
        sin_cos((double)pos * frequency, &s, &c);
        cosines[i] = (float)c;
        sines[i] = (float)s;
    }
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

/*
 * Eight at a time, so that GCC turns the inner loop into vector instructions, which it does
 * for a loop of a known count; restrict tells it that out is no other array.
 */
void vec_add_scaled(float *restrict out, float a, const float *restrict x, size_t n)
{
    size_t whole = n - n % LANES;

    for (size_t j = 0; j < whole; j += LANES)
        for (size_t l = 0; l < LANES; l++)
            out[j + l] += a * x[j + l];
    for (size_t j = whole; j < n; j++)
        out[j] += a * x[j];
}
