/*
 * --golden: the engine against golden.txt, the values PyTorch computed when the model was
 * exported (format: common/model/README.md). For each prompt: the tokens it encodes to, the
 * logits of its first positions (within 1e-4), 32 greedy tokens and the text they print.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "reference.h"
#include "sampler.h"

#define TOLERANCE 1e-4
#define MAX_LOGIT_ROWS 4

struct golden_case {
    uint8_t *prompt, *text;
    size_t prompt_length, text_length;
    int *tokens, *greedy;
    size_t token_count, greedy_count;
    float *logits[MAX_LOGIT_ROWS];
    int logit_rows;
};

struct check {
    struct engine *e;
    int line, prompts, failures;
    long expected_prompts;
    bool ended;   /* the file's last line, "end", was seen: it is complete */
    double worst;
};

static void problem(struct check *c, const char *format, const char *detail)
{
    printf("  FAIL ");
    printf(format, detail);
    putchar('\n');
    c->failures++;
}

static void malformed(struct check *c, const char *why)
{
    printf("golden.txt line %d: %s\n", c->line, why);
    exit(1);
}

static long next_integer(struct check *c, char **cursor)
{
    char *end;
    long value = strtol(*cursor, &end, 10);

    if (end == *cursor)
        malformed(c, "expected an integer");
    *cursor = end;
    return value;
}

static int *read_ids(struct check *c, char **cursor, size_t *count)
{
    long n = next_integer(c, cursor);
    int *ids;

    if (n < 0 || n > 1 << 20)
        malformed(c, "bad count");
    ids = allocate((size_t)n * sizeof(int));
    for (long i = 0; i < n; i++)
        ids[i] = (int)next_integer(c, cursor);
    *count = (size_t)n;
    return ids;
}

/* "<n> <hex>", or "0 -" for no bytes. */
static uint8_t *read_hex(struct check *c, char **cursor, size_t *length)
{
    long n = next_integer(c, cursor);
    uint8_t *bytes;
    char *at = *cursor + strspn(*cursor, " ");
    unsigned value;

    if (n < 0 || (size_t)n * 2 > strlen(at))
        malformed(c, "bad byte count");
    bytes = allocate((size_t)n + 1);
    for (long i = 0; i < n; i++, at += 2) {
        if (sscanf(at, "%2x", &value) != 1)
            malformed(c, "bad hex");
        bytes[i] = (uint8_t)value;
    }
    bytes[n] = '\0';
    *length = (size_t)n;
    return bytes;
}

static void read_logits(struct check *c, struct golden_case *g, char **cursor)
{
    int vocab = c->e->model.config.vocab_size;
    float *row;
    char *end;

    if (next_integer(c, cursor) != g->logit_rows || g->logit_rows == MAX_LOGIT_ROWS)
        malformed(c, "logits out of order");
    row = g->logits[g->logit_rows++] = allocate((size_t)vocab * sizeof(float));
    for (int i = 0; i < vocab; i++, *cursor = end)
        if ((row[i] = strtof(*cursor, &end)), end == *cursor)
            malformed(c, "fewer logits than the vocabulary");
}

static bool same_ids(const int *a, size_t a_count, const int *b, size_t b_count)
{
    return a_count == b_count && memcmp(a, b, a_count * sizeof(int)) == 0;
}

/* Feeds the golden tokens, comparing the first logits; returns the last position's logits. */
static float *check_logits(struct check *c, const struct golden_case *g, const char *name)
{
    float *logits = NULL;
    int vocab = c->e->model.config.vocab_size;

    for (size_t pos = 0; pos < g->token_count; pos++) {
        logits = transformer_forward(&c->e->model, &c->e->state, g->tokens[pos], (int)pos);
        if ((int)pos >= g->logit_rows)
            continue;
        double worst = 0;
        for (int i = 0; i < vocab; i++)
            worst = fmax(worst, fabs((double)logits[i] - (double)g->logits[pos][i]));
        c->worst = fmax(c->worst, worst);
        if (!(worst <= TOLERANCE))
            problem(c, "%s: logits off by more than 1e-4", name);
    }
    return logits;
}

static void check_case(struct check *c, const struct golden_case *g)
{
    struct engine *e = c->e;
    const char *name = (const char *)g->prompt;
    size_t count, length;
    int *tokens = encode_text(e, name, g->prompt_length, &count);
    int *greedy = allocate((g->greedy_count + 1) * sizeof(int));
    size_t context = (size_t)e->model.config.seq_len, printed = 0;

    if (!same_ids(tokens, count, g->tokens, g->token_count))
        problem(c, "'%s': encodes to other tokens", name);
    if (g->token_count == 0 || g->token_count + g->greedy_count > context)
        malformed(c, "the case does not fit the context");
    float *logits = check_logits(c, g, name);
    for (size_t i = 0; i < g->greedy_count; i++) {
        greedy[i] = sampler_argmax(logits, e->model.config.vocab_size);
        logits = transformer_forward(&e->model, &e->state, greedy[i], (int)(g->token_count + i));
    }
    if (!same_ids(greedy, g->greedy_count, g->greedy, g->greedy_count))
        problem(c, "'%s': greedy tokens differ", name);
    while (printed < g->greedy_count && greedy[printed] != TOKEN_BOS)
        printed++;
    uint8_t *text = decode_tokens(e, g->tokens[g->token_count - 1], greedy, printed, &length);
    if (length != g->text_length || memcmp(text, g->text, length) != 0)
        problem(c, "'%s': prints other text", name);
    c->prompts++;
    free(text);
    free(tokens);
    free(greedy);
}

static void free_case(struct golden_case *g)
{
    free(g->prompt);
    free(g->text);
    free(g->tokens);
    free(g->greedy);
    for (int i = 0; i < g->logit_rows; i++)
        free(g->logits[i]);
    *g = (struct golden_case){ 0 };
}

static void read_line(struct check *c, struct golden_case *g, char *line)
{
    char *cursor = line + strcspn(line, " ");
    size_t key = (size_t)(cursor - line);

#define IS(word) (key == strlen(word) && strncmp(line, word, key) == 0)
    if (IS("prompt"))
        g->prompt = read_hex(c, &cursor, &g->prompt_length);
    else if (IS("tokens"))
        g->tokens = read_ids(c, &cursor, &g->token_count);
    else if (IS("logits"))
        read_logits(c, g, &cursor);
    else if (IS("greedy"))
        g->greedy = read_ids(c, &cursor, &g->greedy_count);
    else if (IS("text") && (!g->prompt || !g->tokens || !g->greedy))
        malformed(c, "a case without prompt, tokens or greedy");
    else if (IS("text")) {
        g->text = read_hex(c, &cursor, &g->text_length);
        check_case(c, g);
        free_case(g);
    } else if (IS("prompts"))
        c->expected_prompts = next_integer(c, &cursor);
    else if (IS("end"))
        c->ended = true;
    else if (IS("vocab_size") && next_integer(c, &cursor) != c->e->model.config.vocab_size)
        malformed(c, "golden.txt is for another vocabulary size");
#undef IS
}

int check_golden(struct engine *e, const char *golden_path)
{
    size_t size;
    char *data = read_whole_file(golden_path, &size), *line = data, *newline;
    struct check c = { .e = e };
    struct golden_case g = { 0 };

    if (strncmp(data, "ringzero-golden 1\n", 18) != 0)
        malformed(&c, "not a ringzero-golden 1 file");
    for (; *line; line = newline + 1) {
        c.line++;
        newline = line + strcspn(line, "\n");
        if (*newline == '\0')
            malformed(&c, "the last line does not end");
        *newline = '\0';
        if (line[0] != '#')
            read_line(&c, &g, line);
    }
    if (!c.ended || c.prompts != c.expected_prompts)
        malformed(&c, "the file ends before its last case or its \"end\" line");
    printf("golden: %d prompts, largest logit difference %.2e (tolerance %.0e): %s\n",
           c.prompts, c.worst, TOLERANCE, c.failures ? "FAILED" : "ok");
    free(data);
    return c.failures || c.prompts == 0 ? 1 : 0;
}
