/*
 * The host reference: step 08's inference engine, compiled unchanged for Linux, behind a small
 * command line. Tests compare the kernel's output with it, and the benchmark races it.
 *
 *   reference MODEL TOKENIZER [--prompt TEXT] [--steps N=32] [--temperature T=0] [--top-p P=1]
 *             [--seed S=0] [--chat] [--embed] [--golden golden.txt] [--bench]
 *             [--perplexity FORTUNES] [--isa avx2|sse|scalar]
 *
 * One thread, no tricks: the same code the kernel runs, with the same compiler flags.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE   /* madvise */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "reference.h"
#include "sampler.h"
#include "utf8.h"
#include "vecmath.h"

#define MICROS 1000000
#define HUGE_PAGE (2u << 20)
#define CHAT_BEFORE "<|user|>\n"
#define CHAT_AFTER "\n<|assistant|>\n"

struct options {
    const char *model, *tokenizer, *prompt, *golden, *perplexity;
    long steps;
    int64_t temperature_micros, top_p_micros;
    uint64_t seed;
    bool chat, embed, bench;
    enum vecmath_path isa;
};

static void usage(void)
{
    fputs("usage: reference MODEL TOKENIZER [--prompt TEXT] [--steps N] [--temperature T]\n"
          "                 [--top-p P] [--seed S] [--chat] [--embed] [--golden FILE]\n"
          "                 [--bench] [--perplexity FORTUNES] [--isa avx2|sse|scalar]\n",
          stderr);
    exit(2);
}

static void fail(const char *what, const char *why)
{
    fprintf(stderr, "reference: %s: %s\n", what, why);
    exit(1);
}

void *allocate(size_t bytes)
{
    void *memory = malloc(bytes ? bytes : 1);

    if (!memory)
        fail("out of memory", strerror(errno));
    return memory;
}

/*
 * The kernel maps memory with 2 MiB pages. A process gets 4 KiB pages unless it asks, and the
 * weights, read from end to end for every token, would then cross a page every 4 KiB, each a
 * translation to look up. Asking for huge pages makes the reference read them as the kernel
 * does; where Linux has transparent huge pages switched off, madvise changes nothing.
 */
static void *allocate_huge(size_t bytes)
{
    size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *memory = NULL;

    if (posix_memalign(&memory, HUGE_PAGE, rounded) != 0)
        fail("out of memory", "posix_memalign");
    madvise(memory, rounded, MADV_HUGEPAGE);
    return memory;
}

static char *read_file(const char *path, size_t *size, bool huge)
{
    FILE *file = fopen(path, "rb");
    char *data;
    long length;

    if (!file || fseek(file, 0, SEEK_END) != 0 || (length = ftell(file)) < 0 ||
        fseek(file, 0, SEEK_SET) != 0)
        fail(path, strerror(errno));
    data = huge ? allocate_huge((size_t)length + 1) : allocate((size_t)length + 1);
    if (fread(data, 1, (size_t)length, file) != (size_t)length)
        fail(path, "read error");
    fclose(file);
    data[length] = '\0';
    *size = (size_t)length;
    return data;
}

char *read_whole_file(const char *path, size_t *size)
{
    return read_file(path, size, false);
}

/*
 * A decimal number of millionths, as the kernel's JSON reader gives it: digits, optionally a
 * point and more digits, rounded to the nearest millionth, halves up. -1 if malformed.
 */
static int64_t parse_micros(const char *text)
{
    int64_t whole = 0, fraction = 0, scale = MICROS;
    const char *c = text;

    if (*c < '0' || *c > '9')
        return -1;
    for (; *c >= '0' && *c <= '9'; c++)
        if ((whole = whole * 10 + (*c - '0')) > 1000000)
            return -1;
    if (*c == '.')
        for (c++; *c >= '0' && *c <= '9'; c++) {
            if (scale > 1) {
                fraction += (*c - '0') * (scale /= 10);
            } else if (scale == 1) {
                fraction += *c >= '5';   /* the seventh digit rounds; later ones cannot */
                scale = 0;
            }
        }
    return *c ? -1 : whole * MICROS + fraction;
}

static uint64_t parse_unsigned(const char *text, uint64_t maximum)
{
    char *end;
    unsigned long long value;

    errno = 0;
    value = strtoull(text, &end, 10);
    if (*text < '0' || *text > '9' || *end || errno || value > maximum)
        usage();
    return value;
}

static enum vecmath_path parse_isa(const char *name)
{
    if (strcmp(name, "avx2") == 0)
        return VECMATH_AVX2;
    if (strcmp(name, "sse") == 0)
        return VECMATH_SSE;
    if (strcmp(name, "scalar") != 0)
        usage();
    return VECMATH_SCALAR;
}

static const char *option_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        usage();
    return argv[++*i];
}

static void parse_option(struct options *o, int argc, char **argv, int *i)
{
    const char *name = argv[*i];

    if (strcmp(name, "--prompt") == 0)
        o->prompt = option_value(argc, argv, i);
    else if (strcmp(name, "--steps") == 0)
        o->steps = (long)parse_unsigned(option_value(argc, argv, i), INT32_MAX);
    else if (strcmp(name, "--temperature") == 0)
        o->temperature_micros = parse_micros(option_value(argc, argv, i));
    else if (strcmp(name, "--top-p") == 0)
        o->top_p_micros = parse_micros(option_value(argc, argv, i));
    else if (strcmp(name, "--seed") == 0)
        o->seed = parse_unsigned(option_value(argc, argv, i), UINT64_MAX);
    else if (strcmp(name, "--golden") == 0)
        o->golden = option_value(argc, argv, i);
    else if (strcmp(name, "--perplexity") == 0)
        o->perplexity = option_value(argc, argv, i);
    else if (strcmp(name, "--isa") == 0)
        o->isa = parse_isa(option_value(argc, argv, i));
    else if (strcmp(name, "--chat") == 0)
        o->chat = true;
    else if (strcmp(name, "--embed") == 0)
        o->embed = true;
    else if (strcmp(name, "--bench") == 0)
        o->bench = true;
    else
        usage();
}

static struct options parse_options(int argc, char **argv)
{
    struct options o = { .prompt = "", .steps = 32, .top_p_micros = MICROS,
                         .isa = __builtin_cpu_supports("avx2") ? VECMATH_AVX2 : VECMATH_SSE };

    if (argc < 3)
        usage();
    o.model = argv[1];
    o.tokenizer = argv[2];
    for (int i = 3; i < argc; i++)
        parse_option(&o, argc, argv, &i);
    if (o.temperature_micros < 0 || o.temperature_micros > 2 * MICROS || o.top_p_micros < 0 ||
        o.top_p_micros > MICROS)
        fail("settings", "temperature must be 0 ... 2 and top-p 0 ... 1");
    return o;
}

static void open_engine(struct engine *e, const struct options *o)
{
    size_t model_size, tokenizer_size;
    char *model = read_file(o->model, &model_size, true);
    char *tokenizer = read_whole_file(o->tokenizer, &tokenizer_size);
    const char *problem = checkpoint_open(&e->model, model, model_size);
    const struct model_config *c = &e->model.config;

    if (problem)
        fail(o->model, problem);
    problem = tokenizer_open(&e->tokenizer, tokenizer, tokenizer_size, c->vocab_size,
                             allocate(tokenizer_memory_bytes(c->vocab_size)));
    if (problem)
        fail(o->tokenizer, problem);
    transformer_state_init(&e->state, c, c->seq_len,
                           allocate(transformer_state_bytes(c, c->seq_len)));
}

int *encode_text(const struct engine *e, const char *text, size_t length, size_t *count)
{
    int *tokens = allocate(tokenizer_max_tokens(length) * sizeof(int));
    void *scratch = allocate(tokenizer_scratch_bytes(length));

    *count = tokenizer_encode(&e->tokenizer, text, length, tokens, scratch);
    free(scratch);
    return tokens;
}

/* The prompt, or with --chat the prompt as one user message through the chat template. */
static int *encode_prompt(const struct engine *e, const struct options *o, size_t *count)
{
    size_t length = strlen(o->prompt);
    char *text;
    int *tokens;

    if (!o->chat)
        return encode_text(e, o->prompt, length, count);
    text = allocate(sizeof(CHAT_BEFORE CHAT_AFTER) + length);
    sprintf(text, "%s%s%s", CHAT_BEFORE, o->prompt, CHAT_AFTER);
    tokens = encode_text(e, text, strlen(text), count);
    free(text);
    return tokens;
}

static void check_fits(const struct engine *e, size_t count)
{
    char message[96];

    if (count > (size_t)e->model.config.seq_len) {
        snprintf(message, sizeof(message), "prompt is %zu tokens; the context holds %d", count,
                 e->model.config.seq_len);
        fail("prompt", message);
    }
}

static const char *short_escape(uint8_t c)
{
    switch (c) {
    case '"':  return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default:   return NULL;
    }
}

/* A JSON string, escaped as the kernel's json_write_string does: bad UTF-8 becomes U+FFFD. */
static void print_json_string(const uint8_t *s, size_t length)
{
    putchar('"');
    for (size_t at = 0, n; at < length; at += n) {
        n = s[at] < 0x80 ? 1 : utf8_sequence_length(s + at, length - at);
        if (n == 0) {
            fputs("\\ufffd", stdout);
            n = 1;
        } else if (s[at] >= 0x80) {
            fwrite(s + at, 1, n, stdout);
        } else if (short_escape(s[at])) {
            fputs(short_escape(s[at]), stdout);
        } else if (s[at] < 0x20) {
            printf("\\u%04x", s[at]);
        } else {
            putchar(s[at]);
        }
    }
    putchar('"');
}

static void print_tokens(const char *key, const int *tokens, size_t count)
{
    printf("\"%s\":[", key);
    for (size_t i = 0; i < count; i++)
        printf("%s%d", i ? "," : "", tokens[i]);
    putchar(']');
}

static double seconds(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

struct generation {
    int *prompt, *tokens;
    size_t prompt_count, count;
    bool stopped;                  /* by BOS or EOS, rather than by length */
    double started, first_token, finished;
};

/*
 * Prompt and generated tokens together never exceed the context. The token that stops the
 * generation (BOS or EOS) is not part of it. A token is fed back only if another will follow.
 */
static void generate(struct engine *e, const struct options *o, struct sampler *sampler,
                     struct generation *g)
{
    const struct checkpoint *m = &e->model;
    size_t pos = g->prompt_count, context = (size_t)m->config.seq_len;
    float *logits = NULL;

    g->tokens = allocate(((size_t)o->steps < context ? (size_t)o->steps : context) * sizeof(int));
    for (size_t i = 0; i < g->prompt_count; i++)
        logits = transformer_forward(m, &e->state, g->prompt[i], (int)i);
    g->first_token = seconds();   /* in case no token comes at all */
    while (g->count < (size_t)o->steps && pos < context) {
        int next = sampler_sample(sampler, logits);
        if (g->count == 0)
            g->first_token = seconds();
        if (next == TOKEN_BOS || next == TOKEN_EOS) {
            g->stopped = true;
            break;
        }
        g->tokens[g->count++] = next;
        pos++;
        if (g->count < (size_t)o->steps && pos < context)
            logits = transformer_forward(m, &e->state, next, (int)pos - 1);
    }
    g->finished = seconds();
}

static void run_generation(struct engine *e, const struct options *o, struct generation *g)
{
    struct sampler sampler;
    const struct model_config *c = &e->model.config;

    sampler_init(&sampler, c->vocab_size, (float)o->temperature_micros / 1e6f,
                 (float)o->top_p_micros / 1e6f, o->seed,
                 allocate(sampler_memory_bytes(c->vocab_size)));
    g->started = seconds();
    g->prompt = encode_prompt(e, o, &g->prompt_count);
    check_fits(e, g->prompt_count);
    generate(e, o, &sampler, g);
}

uint8_t *decode_tokens(const struct engine *e, int previous, const int *tokens, size_t count,
                       size_t *length)
{
    uint8_t *text = allocate(count * (size_t)e->tokenizer.max_token_length);

    *length = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *piece;
        size_t n = tokenizer_piece(&e->tokenizer, previous, tokens[i], &piece);
        memcpy(text + *length, piece, n);
        *length += n;
        previous = tokens[i];
    }
    return text;
}

static void print_generation(const struct engine *e, const struct generation *g)
{
    size_t length;
    uint8_t *text = decode_tokens(e, g->prompt[g->prompt_count - 1], g->tokens, g->count, &length);

    putchar('{');
    print_tokens("prompt_tokens", g->prompt, g->prompt_count);
    putchar(',');
    print_tokens("tokens", g->tokens, g->count);
    fputs(",\"text\":", stdout);
    print_json_string(text, length);
    printf(",\"finish_reason\":\"%s\"}\n", g->stopped ? "stop" : "length");
    free(text);
}

static void print_bench(const struct generation *g)
{
    double decoding = g->finished - g->first_token;

    printf("{\"tokens_per_second\":%.3f,\"time_to_first_token_ms\":%.3f,\"prompt_tokens\":%zu,"
           "\"generated\":%zu,\"isa\":\"%s\"}\n",
           g->count > 1 && decoding > 0 ? (double)(g->count - 1) / decoding : 0.0,
           (g->first_token - g->started) * 1e3, g->prompt_count, g->count, vecmath_path_name());
}

static void print_embedding(struct engine *e, const struct options *o)
{
    size_t count;
    int *tokens = encode_prompt(e, o, &count);
    float *embedding = allocate((size_t)e->model.config.dim * sizeof(float));

    check_fits(e, count);
    transformer_embed(&e->model, &e->state, tokens, (int)count, embedding);
    fputs("{\"embedding\":[", stdout);
    for (int i = 0; i < e->model.config.dim; i++)
        printf("%s%.9g", i ? "," : "", (double)embedding[i]);
    puts("]}");
}

int main(int argc, char **argv)
{
    struct options o = parse_options(argc, argv);
    struct engine e;
    struct generation g = { 0 };

    vecmath_use(o.isa);
    open_engine(&e, &o);
    if (o.golden)
        return check_golden(&e, o.golden);
    if (o.perplexity)
        return print_perplexity(&e, o.perplexity);
    if (o.embed) {
        print_embedding(&e, &o);
        return 0;
    }
    run_generation(&e, &o, &g);
    if (o.bench)
        print_bench(&g);
    else
        print_generation(&e, &g);
    return 0;
}
