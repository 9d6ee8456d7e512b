/*
 * How the inference engine spreads a loop over the processors.
 *
 * parallel_for(count, body, arg) calls body(arg, begin, end) on contiguous ranges that
 * together cover the items 0 ... count-1 once each, perhaps on several CPUs at the same time,
 * and returns when every range is done. The engine hands it only loops whose items are
 * independent and each computed whole by one call (a row of a matrix product, an attention
 * head), so the result is the same bits however the items are cut up: run in order on one
 * thread (the host reference, common/reference/parallel_serial.c) or shared among every CPU
 * (the kernel, parallel.c).
 *
 * A body must not call kmalloc or kfree: the heap has no lock, and only the boot CPU uses it.
 */
#pragma once

#include <stddef.h>

typedef void (*parallel_body)(void *arg, size_t begin, size_t end);

void parallel_for(size_t count, parallel_body body, void *arg);
