/*
 * Boot-time self-tests of this step's memory code. Each check counts as passed or failed and
 * the totals are printed, so the grader sees how much was checked, not just "ok". The random
 * stress uses a seed from the command line (`seed=N`) or the time stamp counter, and prints
 * it, so a failing run can be repeated exactly.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cmdline.h"
#include "frames.h"
#include "heap.h"
#include "kprintf.h"
#include "memtest.h"
#include "string.h"
#include "x86.h"

#define FRAME_SLOTS 512
#define HEAP_SLOTS 256
#define HEAP_OPERATIONS 6000
#define FRAME_STAMP 0x5EED0F4A3E000000ull

struct tally {
    const char *name;
    int passed;
    int total;
};

static uint64_t random_state;

/* xorshift64: tiny, fast, and good enough to shuffle allocation patterns. */
static uint64_t next_random(void)
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return random_state;
}

static uint64_t random_below(uint64_t limit)
{
    return next_random() % limit;
}

static void check(struct tally *tally, bool ok, const char *what)
{
    tally->total++;
    if (ok)
        tally->passed++;
    else
        kprintf("selftest %s: FAILED: %s\n", tally->name, what);
}

static void report(const struct tally *tally)
{
    kprintf("selftest %s: %d/%d passed\n", tally->name, tally->passed, tally->total);
}

static void test_string(void)
{
    struct tally tally = { "string", 0, 0 };
    char buffer[32];

    memset(buffer, 'x', sizeof(buffer));
    check(&tally, buffer[0] == 'x' && buffer[31] == 'x', "memset fills");
    memcpy(buffer, "ringzero", 9);
    check(&tally, strcmp(buffer, "ringzero") == 0, "memcpy copies");
    memmove(buffer + 2, buffer, 9);
    check(&tally, memcmp(buffer, "riringzero", 11) == 0, "memmove forward overlap");
    memmove(buffer, buffer + 2, 9);
    check(&tally, strcmp(buffer, "ringzero") == 0, "memmove backward overlap");
    check(&tally, strlen("ringzero") == 8 && strlen("") == 0, "strlen");
    check(&tally, strncmp("ring", "rinG", 3) == 0 && strncmp("a", "b", 1) < 0, "strncmp");
    check(&tally, memcmp("abc", "abd", 3) < 0 && memcmp("abd", "abc", 3) > 0, "memcmp order");
    check(&tally, snprintf(buffer, 4, "%d", 12345) == 5 && strcmp(buffer, "123") == 0,
          "snprintf truncates and counts");
    report(&tally);
}

/* A frame in use carries its own address, so handing it out twice or losing it shows up. */
static uint64_t stamp_of(uint64_t frame)
{
    return FRAME_STAMP ^ frame;
}

static void take_frame(struct tally *tally, uint64_t *slot)
{
    uint64_t frame = frame_alloc();
    uint64_t *words = (uint64_t *)frame;

    check(tally, frame != 0 && frame % FRAME_SIZE == 0, "frame_alloc returns a frame");
    if (!frame)
        return;
    check(tally, words[0] != stamp_of(frame), "frame is not already in use");
    words[0] = words[FRAME_SIZE / 8 - 1] = stamp_of(frame);
    *slot = frame;
}

static void give_back_frame(struct tally *tally, uint64_t *slot)
{
    uint64_t *words = (uint64_t *)*slot;

    check(tally, words[0] == stamp_of(*slot) && words[FRAME_SIZE / 8 - 1] == stamp_of(*slot),
          "frame kept its contents while in use");
    words[0] = 0;
    frame_free(*slot);
    *slot = 0;
}

static void test_frames(void)
{
    struct tally tally = { "frames", 0, 0 };
    static uint64_t slots[FRAME_SLOTS];
    size_t baseline = frames_free_count();
    uint64_t run;

    for (int i = 0; i < 4 * FRAME_SLOTS; i++) {
        uint64_t *slot = &slots[random_below(FRAME_SLOTS)];
        if (*slot)
            give_back_frame(&tally, slot);
        else
            take_frame(&tally, slot);
    }
    for (int i = 0; i < FRAME_SLOTS; i++)
        if (slots[i])
            give_back_frame(&tally, &slots[i]);
    run = frame_alloc_contiguous(64);
    check(&tally, run != 0 && frames_free_count() == baseline - 64, "a run of 64 frames");
    if (run)
        frame_free_contiguous(run, 64);
    check(&tally, frames_free_count() == baseline, "free count back to baseline");
    report(&tally);
}

struct allocation {
    unsigned char *pointer;
    size_t size;
};

static unsigned char fill_byte(const struct allocation *a)
{
    return (unsigned char)(((uintptr_t)a->pointer >> 4) ^ a->size);
}

static bool holds_fill(const struct allocation *a)
{
    for (size_t i = 0; i < a->size; i++)
        if (a->pointer[i] != fill_byte(a))
            return false;
    return true;
}

/* Mostly small sizes, sometimes large ones that make the heap grow. */
static size_t random_size(void)
{
    return random_below(16) == 0 ? 1 + random_below(300000) : 1 + random_below(2048);
}

static void heap_allocate(struct tally *tally, struct allocation *a)
{
    a->size = random_size();
    a->pointer = random_below(8) == 0 ? kcalloc(1, a->size) : kmalloc(a->size);
    check(tally, a->pointer && (uintptr_t)a->pointer % 16 == 0, "allocation is 16-byte aligned");
    if (!a->pointer)
        return;
    memset(a->pointer, fill_byte(a), a->size);
}

static void heap_resize(struct tally *tally, struct allocation *a)
{
    size_t kept = a->size;
    unsigned char old_fill = fill_byte(a);
    bool preserved = true;

    a->size = random_size();
    a->pointer = krealloc(a->pointer, a->size);
    check(tally, a->pointer != NULL, "krealloc succeeds");
    if (!a->pointer)
        return;
    for (size_t i = 0; i < kept && i < a->size; i++)
        preserved &= a->pointer[i] == old_fill;
    check(tally, preserved, "krealloc keeps the contents");
    memset(a->pointer, fill_byte(a), a->size);
}

static void heap_release(struct tally *tally, struct allocation *a)
{
    check(tally, holds_fill(a), "no other allocation overlapped this one");
    kfree(a->pointer);
    a->pointer = NULL;
}

static void test_heap(void)
{
    struct tally tally = { "heap", 0, 0 };
    static struct allocation slots[HEAP_SLOTS];
    struct heap_stats before = heap_stats(), after;

    for (int i = 0; i < HEAP_OPERATIONS; i++) {
        struct allocation *a = &slots[random_below(HEAP_SLOTS)];
        if (!a->pointer)
            heap_allocate(&tally, a);
        else if (random_below(4) == 0)
            heap_resize(&tally, a);
        else
            heap_release(&tally, a);
    }
    for (int i = 0; i < HEAP_SLOTS; i++)
        if (slots[i].pointer)
            heap_release(&tally, &slots[i]);
    after = heap_stats();
    check(&tally, after.used_bytes == before.used_bytes, "used bytes back to baseline");
    check(&tally, after.used_bytes + after.free_bytes == after.arena_bytes, "no bytes lost");
    check(&tally, after.free_blocks <= after.arenas, "free memory coalesced");
    check(&tally, kmalloc(0) == NULL && kcalloc(SIZE_MAX / 2, 4) == NULL,
          "impossible sizes are refused");
    report(&tally);
}

static uint64_t choose_seed(void)
{
    uint64_t seed;

    if (!cmdline_get_number("seed", 0, UINT64_MAX, &seed))
        seed = rdtsc();
    /* xorshift never leaves zero. */
    return seed ? seed : 1;
}

void memtest_run(void)
{
    random_state = choose_seed();
    kprintf("selftest seed: %lu\n", random_state);
    test_string();
    test_frames();
    test_heap();
}
