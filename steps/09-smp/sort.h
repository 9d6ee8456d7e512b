/*
 * Heapsort, for the engine's two sorts: the tokenizer's index of token spellings and the
 * sampler's top-p candidates. O(n log n) even on the worst input, no recursion and no memory
 * of its own, which suits a kernel; and, given a comparison that breaks every tie (both
 * break them by token id), the same order on every machine.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* True if item a belongs before item b. context is sort_heap's, passed through. */
typedef bool (*sort_before)(const void *a, const void *b, const void *context);

/* Sorts count items of size bytes each at items, so that no item is before one ahead of it. */
void sort_heap(void *items, size_t count, size_t size, sort_before before, const void *context);
