/*
 * Sampling. The one liberty taken with run.c: it sorts the top-p candidates with qsort, which
 * leaves equal probabilities in no particular order; here they are ordered by id, so the draw
 * is the same on every machine.
 */
#include "sampler.h"
#include "sort.h"
#include "vecmath.h"

struct sampler_candidate {
    float probability;
    int id;
};

size_t sampler_memory_bytes(int vocab_size)
{
    return (size_t)vocab_size * sizeof(struct sampler_candidate);
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void sampler_init(struct sampler *s, int vocab_size, float temperature, float top_p,
                  uint64_t seed, void *memory)
{
    *s = (struct sampler){ .vocab_size = vocab_size, .temperature = temperature,
                           .top_p = top_p, .rng_state = splitmix64(seed),
                           .candidates = memory };
    /* splitmix64 is a bijection: exactly one seed lands on 0, and xorshift would stay there. */
    if (s->rng_state == 0)
        s->rng_state = splitmix64(0);
}

static uint32_t random_u32(struct sampler *s)
{
    s->rng_state ^= s->rng_state >> 12;
    s->rng_state ^= s->rng_state << 25;
    s->rng_state ^= s->rng_state >> 27;
    return (uint32_t)((s->rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* Uniform in [0, 1): 24 random bits, all a float's significand holds. */
static float random_unit(struct sampler *s)
{
    return (float)(random_u32(s) >> 8) / 16777216.0f;
}

/* The largest value is kept in a register: reading values[best] each time would make every
 * step wait for the load that the step before chose. */
int sampler_argmax(const float *values, int n)
{
    float largest = values[0];
    int best = 0;

    for (int i = 1; i < n; i++)
        if (values[i] > largest) {
            largest = values[i];
            best = i;
        }
    return best;
}

/* The first token at which the running sum of probabilities passes coin, else the last. */
static int draw(const float *probabilities, int n, float coin)
{
    float cumulative = 0.0f;

    for (int i = 0; i < n; i++) {
        cumulative += probabilities[i];
        if (coin < cumulative)
            return i;
    }
    return n - 1;
}

/* Most likely first; equal probabilities by id. */
static bool more_likely(const void *a, const void *b, const void *context)
{
    const struct sampler_candidate *x = a, *y = b;

    (void)context;
    return x->probability > y->probability || (x->probability == y->probability && x->id < y->id);
}

/*
 * Nucleus sampling. Tokens below (1 - top_p) / (n - 1) cannot be in the nucleus (if all the
 * others were that unlikely too, they would add up to less than 1 - top_p), so they are left
 * out before sorting: usually nearly all of them.
 */
static int draw_top_p(struct sampler *s, const float *probabilities, float coin)
{
    int n = s->vocab_size, count = 0, last;
    float cutoff = (1.0f - s->top_p) / (float)(n - 1), cumulative = 0.0f;

    for (int i = 0; i < n; i++)
        if (probabilities[i] >= cutoff)
            s->candidates[count++] = (struct sampler_candidate){ probabilities[i], i };
    if (count == 0)
        return sampler_argmax(probabilities, n);   /* only if they are not numbers at all */
    sort_heap(s->candidates, (size_t)count, sizeof(*s->candidates), more_likely, NULL);
    last = count - 1;
    for (int i = 0; i < count; i++) {
        cumulative += s->candidates[i].probability;
        if (cumulative > s->top_p) {
            last = i;
            break;
        }
    }
    coin *= cumulative;
    cumulative = 0.0f;
    for (int i = 0; i <= last; i++) {
        cumulative += s->candidates[i].probability;
        if (coin < cumulative)
            return s->candidates[i].id;
    }
    return s->candidates[last].id;
}

int sampler_sample(struct sampler *s, float *logits)
{
    float coin;

    if (s->temperature == 0.0f)
        return sampler_argmax(logits, s->vocab_size);
    for (int i = 0; i < s->vocab_size; i++)
        logits[i] /= s->temperature;
    vec_softmax(logits, (size_t)s->vocab_size);
    coin = random_unit(s);
    if (s->top_p <= 0.0f || s->top_p >= 1.0f || s->vocab_size < 2)
        return draw(logits, s->vocab_size, coin);
    return draw_top_p(s, logits, coin);
}
