/*
 * The heap keeps the item that belongs last at its root. Each round swaps the root to the end
 * of the unsorted part and sifts the new root down, so the array fills from the back.
 */
#include <stdbool.h>
#include <stddef.h>
#include "sort.h"

static void swap(unsigned char *a, unsigned char *b, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned char byte = a[i];
        a[i] = b[i];
        b[i] = byte;
    }
}

static void sift_down(unsigned char *items, size_t at, size_t count, size_t size,
                      sort_before before, const void *context)
{
    for (size_t child; (child = 2 * at + 1) < count; at = child) {
        if (child + 1 < count && before(items + child * size, items + (child + 1) * size, context))
            child++;
        if (!before(items + at * size, items + child * size, context))
            return;
        swap(items + at * size, items + child * size, size);
    }
}

void sort_heap(void *items, size_t count, size_t size, sort_before before, const void *context)
{
    unsigned char *bytes = items;

    for (size_t i = count / 2; i-- > 0;)
        sift_down(bytes, i, count, size, before, context);
    for (size_t end = count; end-- > 1;) {
        swap(bytes, bytes + end * size, size);
        sift_down(bytes, 0, end, size, before, context);
    }
}
