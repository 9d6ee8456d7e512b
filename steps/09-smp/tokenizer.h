/*
 * llama2.c's tokenizer: byte-pair encoding with byte fallback.
 *
 * tokenizer.bin (little-endian): int32 max_token_length, then per token a float32 score, an
 * int32 byte length and the bytes. Ids 0, 1, 2 are <unk>, BOS and EOS; ids 3 ... 258 are the
 * bytes 0 ... 255, spelled <0x00> ... <0xFF>, for text no other token spells.
 *
 * Encoding, exactly as run.c does: BOS, then (unless the text is empty) a space and the text,
 * one token per UTF-8 character, or the byte tokens of its bytes if no token spells it. Then,
 * while any two neighbours together spell a token, merge the pair whose token has the highest
 * score, the leftmost on a tie. run.c rescans every pair after each merge, which is quadratic;
 * here a heap keeps the pairs ordered, so the same merges take O(n log n).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_UNKNOWN 0
#define TOKEN_BOS 1
#define TOKEN_EOS 2

struct token_entry;

struct tokenizer {
    const uint8_t *data;          /* tokenizer.bin, which must stay in place */
    int vocab_size;
    int max_token_length;         /* bytes, as the file says: no piece is longer */
    struct token_entry *tokens;   /* vocab_size: where each piece is, and its score */
    int32_t *by_spelling;         /* vocab_size ids, sorted by their bytes, for lookups */
};

/* Memory tokenizer_open needs for a vocabulary of this size (4-byte aligned). */
size_t tokenizer_memory_bytes(int vocab_size);
/*
 * Checks data as tokenizer.bin for a model of vocab_size tokens and indexes it in memory.
 * Returns NULL, or why the bytes are not such a tokenizer.
 */
const char *tokenizer_open(struct tokenizer *t, const void *data, size_t size, int vocab_size,
                           void *memory);

/* The most tokens text of this many bytes can encode to (BOS, the space, a token per byte). */
size_t tokenizer_max_tokens(size_t length);
/* Scratch memory tokenizer_encode needs for text of this many bytes (4-byte aligned). */
size_t tokenizer_scratch_bytes(size_t length);
/* Encodes text (any bytes) into tokens (room for tokenizer_max_tokens); returns the count. */
size_t tokenizer_encode(const struct tokenizer *t, const char *text, size_t length,
                        int *tokens, void *scratch);

/*
 * The bytes to print for token (0 ... vocab_size-1) when it follows previous: a byte token's
 * byte, or the piece, without its leading space right after BOS. Sets *bytes (constant
 * memory, or tokenizer.bin itself) and returns the length.
 */
size_t tokenizer_piece(const struct tokenizer *t, int previous, int token,
                       const uint8_t **bytes);
