/*
 * The circular byte queue. Positions wrap around the end of the array, so every copy in or
 * out is at most two memcpy calls: up to the end of the array, then from its beginning.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heap.h"
#include "ring.h"
#include "string.h"

bool ring_init(struct ring *ring, size_t capacity)
{
    ring->bytes = kmalloc(capacity);
    ring->capacity = ring->bytes ? capacity : 0;
    ring->start = 0;
    ring->used = 0;
    return ring->bytes != NULL;
}

void ring_free(struct ring *ring)
{
    kfree(ring->bytes);
    ring->bytes = NULL;
    ring->capacity = ring->start = ring->used = 0;
}

size_t ring_used(const struct ring *ring)
{
    return ring->used;
}

size_t ring_space(const struct ring *ring)
{
    return ring->capacity - ring->used;
}

static size_t index_of(const struct ring *ring, size_t offset)
{
    return (ring->start + offset) % ring->capacity;
}

void ring_place(struct ring *ring, size_t offset, const void *data, size_t length)
{
    size_t at = index_of(ring, offset);
    size_t first = ring->capacity - at < length ? ring->capacity - at : length;

    memcpy(ring->bytes + at, data, first);
    memcpy(ring->bytes, (const uint8_t *)data + first, length - first);
}

void ring_peek(const struct ring *ring, size_t offset, void *data, size_t length)
{
    size_t at = index_of(ring, offset);
    size_t first = ring->capacity - at < length ? ring->capacity - at : length;

    memcpy(data, ring->bytes + at, first);
    memcpy((uint8_t *)data + first, ring->bytes, length - first);
}

void ring_extend(struct ring *ring, size_t length)
{
    ring->used += length;
}

void ring_drop(struct ring *ring, size_t length)
{
    ring->start = index_of(ring, length);
    ring->used -= length;
}

size_t ring_write(struct ring *ring, const void *data, size_t length)
{
    if (length > ring_space(ring))
        length = ring_space(ring);
    if (length == 0)
        return 0;
    ring_place(ring, ring->used, data, length);
    ring_extend(ring, length);
    return length;
}

size_t ring_read(struct ring *ring, void *data, size_t length)
{
    if (length > ring->used)
        length = ring->used;
    if (length == 0)
        return 0;
    ring_peek(ring, 0, data, length);
    ring_drop(ring, length);
    return length;
}
