/*
 * Boot-time tests that every CPU takes part in, through smp_run. Each prints its counts, and
 * a wrong count panics: a lock that lets two CPUs in, a lost update, or a barrier that lets a
 * CPU through early shows up here rather than as a subtly wrong answer later.
 */
#include <stdatomic.h>
#include <stdint.h>
#include "acpi.h"
#include "barrier.h"
#include "kprintf.h"
#include "panic.h"
#include "smp.h"
#include "smp_selftest.h"
#include "spinlock.h"

/* Small: with more virtual CPUs than host cores, each lock handoff may wait for the host to
 * schedule the next CPU's thread. */
#define LOCKED_INCREMENTS 1000
#define SUM_LIMIT 1000000
#define BARRIER_ROUNDS 200

/* One cache line per CPU, so counting on one CPU never slows another. */
struct per_cpu_counter {
    uint64_t value;
} __attribute__((aligned(64)));

static struct per_cpu_counter per_cpu_counts[ACPI_MAX_CPUS];
static struct spinlock counter_lock = SPINLOCK_INIT;
static uint64_t shared_count;          /* a plain variable: only the lock protects it */

/* The lock's test: shared_count++ is a read and a write, which CPUs would interleave. */
static void count_work(void *arg, int cpu, int cpu_count)
{
    (void)arg, (void)cpu_count;
    for (int i = 0; i < LOCKED_INCREMENTS; i++) {
        spin_lock(&counter_lock);
        shared_count++;
        spin_unlock(&counter_lock);
        per_cpu_counts[cpu].value++;
    }
}

static void test_counters(int cpus)
{
    uint64_t per_cpu_total = 0;

    smp_run(count_work, NULL);
    for (int cpu = 0; cpu < cpus; cpu++)
        per_cpu_total += per_cpu_counts[cpu].value;
    kprintf("smp selftest counters: %d CPUs x %d = %lu locked increments, %lu per-CPU\n",
            cpus, LOCKED_INCREMENTS, shared_count, per_cpu_total);
    if (shared_count != (uint64_t)cpus * LOCKED_INCREMENTS || per_cpu_total != shared_count)
        panic("smp selftest counters: expected %d", cpus * LOCKED_INCREMENTS);
}

/* Each CPU sums its own slice; the boot CPU adds the slices in CPU order. */
static uint64_t partial_sums[ACPI_MAX_CPUS];

static void sum_work(void *arg, int cpu, int cpu_count)
{
    uint64_t begin, end, sum = 0;

    smp_share(*(const uint64_t *)arg, cpu, cpu_count, &begin, &end);
    for (uint64_t i = begin; i < end; i++)
        sum += i + 1;
    partial_sums[cpu] = sum;
}

static void test_sum(int cpus)
{
    uint64_t limit = SUM_LIMIT, total = 0, expected = limit * (limit + 1) / 2;

    smp_run(sum_work, &limit);
    for (int cpu = 0; cpu < cpus; cpu++)
        total += partial_sums[cpu];
    kprintf("smp selftest sum: 1..%lu = %lu on %d CPUs (expected %lu)\n", limit, total, cpus,
            expected);
    if (total != expected)
        panic("smp selftest sum: wrong total");
}

/*
 * Every round, each CPU checks in, waits at the barrier, and then all must see every CPU's
 * check-in. The second barrier keeps a fast CPU from checking in for the next round while a
 * slow one is still counting this one.
 */
static struct barrier round_barrier;
static atomic_uint arrivals;
static atomic_uint barrier_errors;

static void barrier_work(void *arg, int cpu, int cpu_count)
{
    (void)arg, (void)cpu;
    for (unsigned round = 1; round <= BARRIER_ROUNDS; round++) {
        atomic_fetch_add(&arrivals, 1);
        barrier_wait(&round_barrier);
        if (atomic_load(&arrivals) != round * (unsigned)cpu_count)
            atomic_fetch_add(&barrier_errors, 1);
        barrier_wait(&round_barrier);
    }
}

static void test_barrier(int cpus)
{
    barrier_init(&round_barrier, cpus);
    smp_run(barrier_work, NULL);
    kprintf("smp selftest barrier: %d rounds on %d CPUs, %u arrivals, %u errors\n",
            BARRIER_ROUNDS, cpus, atomic_load(&arrivals), atomic_load(&barrier_errors));
    if (atomic_load(&barrier_errors) || atomic_load(&arrivals) != BARRIER_ROUNDS * (unsigned)cpus)
        panic("smp selftest barrier: a CPU got through early");
}

void smp_selftest_run(void)
{
    int cpus = smp_cpu_count();

    test_counters(cpus);
    test_sum(cpus);
    test_barrier(cpus);
}
