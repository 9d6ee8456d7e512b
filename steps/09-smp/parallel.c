/*
 * The engine's loops on every CPU: each loop is one smp_run, in which CPU i takes the i-th of
 * smp_share's contiguous slices of the items. The boot processor takes the first slice, so on
 * a machine with one CPU a loop is a plain call.
 */
#include <stddef.h>
#include <stdint.h>
#include "parallel.h"
#include "smp.h"

struct loop {
    size_t count;
    parallel_body body;
    void *arg;
};

static void run_slice(void *arg, int cpu, int cpu_count)
{
    const struct loop *loop = arg;
    uint64_t begin, end;

    smp_share(loop->count, cpu, cpu_count, &begin, &end);
    if (begin < end)
        loop->body(loop->arg, begin, end);
}

void parallel_for(size_t count, parallel_body body, void *arg)
{
    struct loop loop = { count, body, arg };

    if (smp_cpu_count() == 1)
        body(arg, 0, count);
    else
        smp_run(run_slice, &loop);
}
