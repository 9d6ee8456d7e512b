/*
 * A byte queue in a fixed circular buffer. TCP keeps one per direction of every connection:
 * the send buffer holds what the peer has not acknowledged yet, the receive buffer what the
 * application has not read yet.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ring {
    uint8_t *bytes;
    size_t capacity;
    size_t start;  /* index of the oldest queued byte */
    size_t used;   /* bytes queued from start on */
};

bool ring_init(struct ring *ring, size_t capacity);
void ring_free(struct ring *ring);
size_t ring_used(const struct ring *ring);
size_t ring_space(const struct ring *ring);

/* Append up to length bytes; returns how many fitted. */
size_t ring_write(struct ring *ring, const void *data, size_t length);
/* Remove up to length bytes from the front into data; returns how many. */
size_t ring_read(struct ring *ring, void *data, size_t length);
/* Forget length bytes at the front, without copying them anywhere. */
void ring_drop(struct ring *ring, size_t length);
/* Copy length queued bytes, starting offset bytes after the front, leaving them queued. */
void ring_peek(const struct ring *ring, size_t offset, void *data, size_t length);

/*
 * Store bytes in the free space offset bytes after the front without queueing them, and later
 * queue bytes stored that way. TCP keeps segments that arrive early where they belong, so
 * they need no copy of their own while they wait for the gap in front of them to fill.
 */
void ring_place(struct ring *ring, size_t offset, const void *data, size_t length);
void ring_extend(struct ring *ring, size_t length);
