/*
 * parallel.h for the host reference: one thread, every loop in order. The engine's results do
 * not depend on how its loops are cut up, so this is the kernel's arithmetic on any number of
 * CPUs, and the reference stays a simple single-threaded program to compare against.
 */
#include "parallel.h"

void parallel_for(size_t count, parallel_body body, void *arg)
{
    body(arg, 0, count);
}
