/*
 * The tokenizer: reading tokenizer.bin, looking pieces up by their bytes, and BPE encoding
 * with a heap of mergeable neighbours. tokenizer.bin comes from outside (a GRUB module), so
 * every length in it is checked before anything is read at an offset it gives.
 */
#include "sort.h"
#include "string.h"
#include "tokenizer.h"

#define BYTE_TOKEN_FIRST 3      /* ids 3 ... 258 are the bytes 0 ... 255 */
#define BYTE_TOKENS 256
#define RECORD_HEADER 8         /* float32 score, int32 length */
/* run.c starts its search for the best pair at this score, so no merge scores lower. */
#define LOWEST_MERGE_SCORE -1e10f

struct token_entry {
    uint32_t offset;   /* of the piece's bytes in tokenizer.bin */
    uint32_t length;
    float score;
};

static int32_t read_int32(const uint8_t *at)
{
    int32_t value;

    memcpy(&value, at, sizeof(value));
    return value;
}

static float read_float(const uint8_t *at)
{
    float value;

    memcpy(&value, at, sizeof(value));
    return value;
}

size_t tokenizer_memory_bytes(int vocab_size)
{
    return (size_t)vocab_size * (sizeof(struct token_entry) + sizeof(int32_t));
}

/*
 * Walks the token records, checking each; stores them in t->tokens unless it is NULL.
 * Returns how many records there are, or -1 if one is malformed.
 */
static int walk_records(struct tokenizer *t, size_t size)
{
    size_t at = sizeof(int32_t);
    int count = 0;

    while (at < size) {
        int32_t length;
        if (size - at < RECORD_HEADER)
            return -1;
        length = read_int32(t->data + at + sizeof(float));
        if (length < 0 || length > t->max_token_length ||
            (size_t)length > size - at - RECORD_HEADER)
            return -1;
        if (t->tokens && count < t->vocab_size)
            t->tokens[count] = (struct token_entry){ .offset = (uint32_t)(at + RECORD_HEADER),
                                                     .length = (uint32_t)length,
                                                     .score = read_float(t->data + at) };
        at += RECORD_HEADER + (size_t)length;
        count++;
    }
    return count;
}

/* Bytes compared as unsigned, a proper prefix first: the order of llama2.c's strcmp. */
static int compare_bytes(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length)
{
    int order = memcmp(a, b, a_length < b_length ? a_length : b_length);

    if (order != 0)
        return order;
    return a_length < b_length ? -1 : a_length > b_length ? 1 : 0;
}

static const uint8_t *piece_bytes(const struct tokenizer *t, int id)
{
    return t->data + t->tokens[id].offset;
}

/* By spelling, then by id: a spelling that two tokens share finds the lower id. */
static bool spelled_before(const void *a, const void *b, const void *context)
{
    const struct tokenizer *t = context;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    int order = compare_bytes(piece_bytes(t, x), t->tokens[x].length, piece_bytes(t, y),
                              t->tokens[y].length);

    return order < 0 || (order == 0 && x < y);
}

const char *tokenizer_open(struct tokenizer *t, const void *data, size_t size, int vocab_size,
                           void *memory)
{
    if (size < sizeof(int32_t))
        return "too short for a tokenizer";
    if (size > UINT32_MAX)
        return "larger than 4 GiB";
    if (vocab_size < BYTE_TOKEN_FIRST + BYTE_TOKENS)
        return "a vocabulary without the 256 byte tokens (ids 3 ... 258)";
    *t = (struct tokenizer){ .data = data, .vocab_size = vocab_size,
                             .max_token_length = read_int32(data) };
    if (t->max_token_length <= 0)
        return "max_token_length is not positive";
    int count = walk_records(t, size);
    if (count < 0)
        return "a token's length is negative, above max_token_length or past the end";
    if (count != vocab_size)
        return "the token count differs from the model's vocabulary size";
    t->tokens = memory;
    t->by_spelling = (int32_t *)(t->tokens + vocab_size);
    walk_records(t, size);
    for (int32_t id = 0; id < vocab_size; id++)
        t->by_spelling[id] = id;
    sort_heap(t->by_spelling, (size_t)vocab_size, sizeof(int32_t), spelled_before, t);
    return NULL;
}

/* Orders token id's piece against the bytes of a followed by those of b, like compare_bytes. */
static int compare_with_pair(const struct tokenizer *t, int id, const uint8_t *a,
                             size_t a_length, const uint8_t *b, size_t b_length)
{
    const uint8_t *piece = piece_bytes(t, id);
    size_t length = t->tokens[id].length;
    int order;

    if (length <= a_length) {
        order = memcmp(piece, a, length);
        return order != 0 ? order : length < a_length + b_length ? -1 : 0;
    }
    order = memcmp(piece, a, a_length);
    return order != 0 ? order : compare_bytes(piece + a_length, length - a_length, b, b_length);
}

/*
 * The lowest id whose piece is the bytes of a followed by those of b (b may be empty), or -1:
 * a binary search for the first piece not before them.
 */
static int lookup(const struct tokenizer *t, const uint8_t *a, size_t a_length,
                  const uint8_t *b, size_t b_length)
{
    size_t low = 0, high = (size_t)t->vocab_size;

    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (compare_with_pair(t, t->by_spelling[middle], a, a_length, b, b_length) < 0)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == (size_t)t->vocab_size ||
        compare_with_pair(t, t->by_spelling[low], a, a_length, b, b_length) != 0)
        return -1;
    return t->by_spelling[low];
}

/* ---- Encoding ---------------------------------------------------------------------------- */

/*
 * The text as a doubly linked list of symbols, one per token. A symbol whose token and its
 * right neighbour's together spell a token is in the heap, keyed by that token's score.
 */
struct symbol {
    int32_t token;       /* -1 once merged into its left neighbour */
    int32_t previous;    /* index of the neighbours, -1 at the ends */
    int32_t next;
    int32_t merged;      /* the token this symbol and the next spell, if heap_slot >= 0 */
    float score;         /* that token's score */
    int32_t heap_slot;   /* where it is in the heap, or -1 */
};

struct encoder {
    const struct tokenizer *t;
    struct symbol *symbols;
    int32_t *heap;       /* symbol indices; the root is the pair run.c would merge next */
    size_t heap_count;
};

size_t tokenizer_max_tokens(size_t length)
{
    return length + 2;
}

size_t tokenizer_scratch_bytes(size_t length)
{
    return (length + 1) * (sizeof(struct symbol) + sizeof(int32_t));
}

/* run.c's choice: the highest score, and of equal scores the leftmost pair. */
static bool merges_first(const struct encoder *e, int32_t a, int32_t b)
{
    float score_a = e->symbols[a].score, score_b = e->symbols[b].score;

    return score_a > score_b || (score_a == score_b && a < b);
}

static void heap_place(struct encoder *e, size_t slot, int32_t symbol)
{
    e->heap[slot] = symbol;
    e->symbols[symbol].heap_slot = (int32_t)slot;
}

static void heap_up(struct encoder *e, size_t slot)
{
    int32_t symbol = e->heap[slot];

    while (slot > 0 && merges_first(e, symbol, e->heap[(slot - 1) / 2])) {
        heap_place(e, slot, e->heap[(slot - 1) / 2]);
        slot = (slot - 1) / 2;
    }
    heap_place(e, slot, symbol);
}

static void heap_down(struct encoder *e, size_t slot)
{
    int32_t symbol = e->heap[slot];

    for (size_t child; (child = 2 * slot + 1) < e->heap_count; slot = child) {
        if (child + 1 < e->heap_count && merges_first(e, e->heap[child + 1], e->heap[child]))
            child++;
        if (!merges_first(e, e->heap[child], symbol))
            break;
        heap_place(e, slot, e->heap[child]);
    }
    heap_place(e, slot, symbol);
}

static void heap_remove(struct encoder *e, int32_t symbol)
{
    size_t slot = (size_t)e->symbols[symbol].heap_slot;
    int32_t last = e->heap[--e->heap_count];

    e->symbols[symbol].heap_slot = -1;
    if (last == symbol)
        return;
    heap_place(e, slot, last);
    heap_up(e, slot);
    heap_down(e, (size_t)e->symbols[last].heap_slot);
}

/* Puts the pair starting at symbol i into the heap, or takes it out, after a neighbour changed. */
static void refresh_pair(struct encoder *e, int32_t i)
{
    struct symbol *s = &e->symbols[i];
    const struct tokenizer *t = e->t;

    if (s->heap_slot >= 0)
        heap_remove(e, i);
    if (s->next < 0)
        return;
    int left = s->token, right = e->symbols[s->next].token;
    s->merged = lookup(t, piece_bytes(t, left), t->tokens[left].length, piece_bytes(t, right),
                       t->tokens[right].length);
    if (s->merged < 0 || !(t->tokens[s->merged].score > LOWEST_MERGE_SCORE))
        return;
    s->score = t->tokens[s->merged].score;
    e->heap[e->heap_count] = i;
    heap_up(e, e->heap_count++);
}

static void append_symbol(struct encoder *e, size_t *count, int token)
{
    int32_t i = (int32_t)*count;

    e->symbols[i] = (struct symbol){ .token = token, .previous = i - 1, .next = -1,
                                     .merged = -1, .heap_slot = -1 };
    if (i > 0)
        e->symbols[i - 1].next = i;
    (*count)++;
}

/* One UTF-8 character (a lead byte and up to 3 continuation bytes), as run.c cuts them. */
static size_t character_length(const uint8_t *text, size_t length)
{
    size_t n = 1;

    while (n < length && n < 4 && (text[n] & 0xC0) == 0x80)
        n++;
    return n;
}

static void append_character(struct encoder *e, size_t *count, const uint8_t *text,
                             size_t length)
{
    int id = lookup(e->t, text, length, text, 0);

    if (id >= 0) {
        append_symbol(e, count, id);
        return;
    }
    for (size_t i = 0; i < length; i++)
        append_symbol(e, count, BYTE_TOKEN_FIRST + text[i]);
}

/* The dummy prefix and the text, one symbol per character; returns the symbol count. */
static size_t split_text(struct encoder *e, const uint8_t *text, size_t length)
{
    static const uint8_t space = ' ';
    size_t count = 0;

    append_character(e, &count, &space, 1);
    for (size_t at = 0, n; at < length; at += n) {
        n = character_length(text + at, length - at);
        append_character(e, &count, text + at, n);
    }
    return count;
}

static void merge_best_pair(struct encoder *e)
{
    int32_t left = e->heap[0];
    struct symbol *s = &e->symbols[left];
    int32_t right = s->next;
    struct symbol *gone = &e->symbols[right];

    s->token = s->merged;
    if (gone->heap_slot >= 0)
        heap_remove(e, right);
    gone->token = -1;
    s->next = gone->next;
    if (s->next >= 0)
        e->symbols[s->next].previous = left;
    refresh_pair(e, left);
    if (s->previous >= 0)
        refresh_pair(e, s->previous);
}

size_t tokenizer_encode(const struct tokenizer *t, const char *text, size_t length,
                        int *tokens, void *scratch)
{
    struct encoder e = { .t = t, .symbols = scratch };
    size_t count = 0, symbols;

    tokens[count++] = TOKEN_BOS;
    if (length == 0)
        return count;
    e.heap = (int32_t *)(e.symbols + length + 1);
    symbols = split_text(&e, (const uint8_t *)text, length);
    for (size_t i = 0; i + 1 < symbols; i++)
        refresh_pair(&e, (int32_t)i);
    while (e.heap_count > 0)
        merge_best_pair(&e);
    for (int32_t i = 0; i >= 0; i = e.symbols[i].next)
        tokens[count++] = e.symbols[i].token;
    return count;
}

/* ---- Decoding ---------------------------------------------------------------------------- */

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A piece spelled <0xHH> stands for the byte HH; returns it, or -1. */
static int spelled_byte(const uint8_t *piece, size_t length)
{
    int high, low;

    if (length != 6 || memcmp(piece, "<0x", 3) != 0 || piece[5] != '>')
        return -1;
    high = hex_digit(piece[3]);
    low = hex_digit(piece[4]);
    return high < 0 || low < 0 ? -1 : high * 16 + low;
}

/* A byte token prints its byte from here: a constant, so that every CPU can share it. */
#define BYTES_4(n) (n), (n) + 1, (n) + 2, (n) + 3
#define BYTES_16(n) BYTES_4(n), BYTES_4((n) + 4), BYTES_4((n) + 8), BYTES_4((n) + 12)
#define BYTES_64(n) BYTES_16(n), BYTES_16((n) + 16), BYTES_16((n) + 32), BYTES_16((n) + 48)
static const uint8_t every_byte[BYTE_TOKENS] = { BYTES_64(0), BYTES_64(64), BYTES_64(128),
                                                 BYTES_64(192) };

size_t tokenizer_piece(const struct tokenizer *t, int previous, int token,
                       const uint8_t **bytes)
{
    const uint8_t *piece = piece_bytes(t, token);
    size_t length = t->tokens[token].length;
    int byte = spelled_byte(piece, length);

    if (byte >= 0) {
        *bytes = &every_byte[byte];
        return 1;
    }
    if (previous == TOKEN_BOS && length > 0 && piece[0] == ' ') {
        piece++;
        length--;
    }
    *bytes = piece;
    return length;
}
