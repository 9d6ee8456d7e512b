/*
 * --perplexity FILE: how well the model predicts a text it was not trained on, the measure
 * by which an int8 checkpoint is compared with its float original. FILE is in fortune format
 * (common/model/corpus.py's val.txt: each fortune ends with a line holding only "%"). Each
 * fortune is encoded with BOS first, as tokenizer.py encodes the validation set, and the
 * tokens, end to end, are cut into windows of the context's length, as train.py cuts them:
 * every position of a window predicts the next token, and the loss is the mean of -ln p of
 * the token that comes. Perplexity is e^loss. The logarithms are libm's, in double: this is a
 * measurement around the engine, not part of it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "reference.h"

/* -ln of the softmax of logits at target. */
static double token_loss(const float *logits, int n, int target)
{
    double largest = logits[0], sum = 0.0;

    for (int i = 1; i < n; i++)
        if (logits[i] > largest)
            largest = logits[i];
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - largest);
    return log(sum) + largest - (double)logits[target];
}

/* The fortunes of text, each encoded with BOS first, end to end. */
static int *encode_fortunes(const struct engine *e, const char *text, size_t *count)
{
    int *all = allocate((strlen(text) + 2) * sizeof(int));   /* BOS and a space at most */
    const char *start = text;

    *count = 0;
    while (*start) {
        const char *end = strstr(start, "\n%\n");
        size_t length = end ? (size_t)(end - start) : strlen(start), n;
        int *tokens;
        if (end == NULL && length > 0 && start[length - 1] == '\n')
            length--;
        if (length > 0) {
            tokens = encode_text(e, start, length, &n);
            memcpy(all + *count, tokens, n * sizeof(int));
            *count += n;
            free(tokens);
        }
        start = end ? end + 3 : start + strlen(start);
    }
    return all;
}

int print_perplexity(struct engine *e, const char *path)
{
    size_t size, count;
    char *text = read_whole_file(path, &size);
    int *tokens = encode_fortunes(e, text, &count);
    const struct checkpoint *m = &e->model;
    size_t window = (size_t)m->config.seq_len, windows = count ? (count - 1) / window : 0;
    double total = 0.0;

    if (windows == 0) {
        fprintf(stderr, "reference: %s: fewer tokens than one window of %zu\n", path, window);
        return 1;
    }
    for (size_t w = 0; w < windows; w++)
        for (size_t pos = 0; pos < window; pos++) {
            const int *at = tokens + w * window + pos;
            total += token_loss(transformer_forward(m, &e->state, at[0], (int)pos),
                                m->config.vocab_size, at[1]);
        }
    total /= (double)(windows * window);
    printf("{\"tokens\":%zu,\"loss\":%.6f,\"perplexity\":%.4f}\n", windows * window, total,
           exp(total));
    free(tokens);
    free(text);
    return 0;
}
