"""Step 03: the memory map, a page-frame allocator, a kernel heap and libc.

The kernel prints the firmware's memory map, what it found usable, and the results of its
allocator self-tests. The grader changes QEMU's -m to see that the numbers follow the machine.
"""
import random
import re

from gradelib import check, exercise, test

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
FRAME = 4 * KiB
# QEMU's firmware keeps about 0.5 MiB for itself: below 640 KiB, the BIOS area and at the top.
FIRMWARE_SLACK = 2 * MiB
MIN_FRAME_CHECKS = 100
MIN_HEAP_CHECKS = 1000
MEMORY_LINE = r"^memory: usable (\d+) KiB in (\d+) regions"
FREE_FRAMES_LINE = r"^(?:memory|frames): .*?\b(\d+) free frames"


@test(10, "usable memory follows QEMU's -m", timeout=60)
def usable_memory(m):
    """With -m 128M and -m 1G, the usable memory is within 2 MiB below -m, and it is the sum
    of the `mmap:` lines of type usable.

    `mmap: 0x<base>-0x<end> <type>` has an exclusive end. The kernel may trim usable regions
    to whole pages (dropping those that vanish), so its sum may be up to 8 KiB per region
    below the map's raw sum.
    """
    for size in (128 * MiB, 1 * GiB):
        m.boot(memory=f"{size // MiB}M")
        usable = m.expect(MEMORY_LINE)
        usable_kib, regions = int(usable[1]), int(usable[2])
        check(size - FIRMWARE_SLACK <= usable_kib * KiB <= size,
              f"with -m {size // MiB}M the kernel reports {usable_kib} KiB usable; expected "
              f"{(size - FIRMWARE_SLACK) // KiB}..{size // KiB} KiB")
        mapped = usable_regions(m.lines())
        mapped_kib = sum(end - base for base, end in mapped) // KiB
        check(1 <= regions <= len(mapped),
              f"the memory map lists {len(mapped)} usable regions, the kernel counts {regions}")
        check(0 <= mapped_kib - usable_kib <= 8 * len(mapped),
              f"the usable mmap lines add up to {mapped_kib} KiB, the kernel says {usable_kib} KiB")


@test(5, "the frame allocator covers all RAM", timeout=60)
def frames_cover_ram(m):
    """With -m 2G, at least 1.9 GiB is free as 4 KiB frames once the kernel has booted."""
    m.boot(memory="2G")
    free_frames = int(m.expect(FREE_FRAMES_LINE)[1])
    check(free_frames * FRAME >= 1.9 * GiB,
          f"only {free_frames} free frames ({free_frames * FRAME // MiB} MiB) with -m 2G")
    m.expect(r"^ready$")


@test(5, "frame allocator self-test")
def frame_selftest(m):
    """`selftest frames: a/b passed` with a == b and at least 100 checks."""
    require_selftest(m, "frames", MIN_FRAME_CHECKS)


@test(5, "heap self-test")
def heap_selftest(m):
    """`selftest heap: a/b passed` with a == b and at least 1000 checks (random stress)."""
    require_selftest(m, "heap", MIN_HEAP_CHECKS)


@test(5, "heap statistics add up")
def heap_statistics(m):
    """`heap: <arena> bytes arena, <used> used, <free> free, <n> blocks`: used + free fits
    in a non-empty arena, some memory is free, and boot still reaches `ready`."""
    m.boot()
    stats = m.expect(r"^heap: (\d+) bytes arena, (\d+) used, (\d+) free, (\d+) blocks$")
    arena, used, free, blocks = map(int, stats.groups())
    check(arena > 0, "the heap arena is empty")
    check(used + free <= arena, f"{used} used + {free} free is more than the {arena}-byte arena")
    check(free > 0 and blocks >= 1, f"no free heap memory ({free} bytes in {blocks} blocks)")
    m.expect(r"^ready$")


def require_selftest(m, name, minimum):
    """memtest.c's result line, once: the grader builds a student's lab with its own
    memtest.c, so a second line (printed by code that did not run the tests) is a failure.
    The random stress runs on a seed chosen here, so each run tests a new sequence."""
    seed = random.randrange(1, 1 << 32)
    m.boot(cmdline=f"seed={seed}")
    m.expect(rf"^selftest seed: {seed}$")
    result = m.expect(rf"^selftest {name}: (\d+)/(\d+) passed$")
    passed, total = int(result[1]), int(result[2])
    failures = [line for line in m.lines() if line.startswith(f"selftest {name}: FAILED")]
    check(passed == total, f"selftest {name}: {passed}/{total} passed; " + "; ".join(failures[:3]))
    check(total >= minimum, f"selftest {name} checks only {total} things; at least {minimum}")
    m.expect(r"^ready$")
    results = [line for line in m.lines() if re.match(rf"^selftest {name}: \d+/\d+", line)]
    check(len(results) == 1, f"`selftest {name}:` printed {len(results)} times; only memtest.c "
                             "prints it, once")


def usable_regions(lines):
    """[(base, end)] of the `mmap:` lines whose type is usable."""
    regions = []
    for line in lines:
        entry = re.match(r"^mmap: 0x([0-9a-fA-F]+)-0x([0-9a-fA-F]+) (.*)$", line)
        if entry and entry[3].strip().lower() in ("usable", "available"):
            regions.append((int(entry[1], 16), int(entry[2], 16)))
    return regions


# ---------------------------------------------------------------------------------------------
# Optional checks of the chapter's exercises: `make step 3 grade T=exercise-3.4`. Never scored.

@exercise("3.4", "catch overruns: test=overrun panics in kfree, naming the block")
def exercise_overrun(m):
    """A PANIC line that names kfree and an address, then the panic exit."""
    m.boot(cmdline="test=overrun")
    m.expect(r"^PANIC.*\bkfree\b.*0x[0-9a-fA-F]+")
    m.expect_exit(3)
