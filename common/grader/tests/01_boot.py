"""Step 01: Multiboot2, long mode and a banner on the VGA text screen.

Step 01 has no serial console, so these tests read the VGA text screen and ask the QEMU
monitor about the CPU. Later steps keep the banner on the screen and the 4 GiB identity map.
"""
import re

from gradelib import check, test

# The kernel's banner, "ringzero <step-dir>: ...". A bare "ringzero" would also match GRUB's
# "Booting `ringzero'", which is on the screen before the kernel runs.
BANNER = r"\bringzero \d\d-[a-z0-9-]+:"
EFER_LMA = 1 << 10
CR0_PG = 1 << 31
SEGMENT_L = 1 << 21
GiB = 1 << 30


@test(5, "banner on the VGA screen")
def vga_banner(m):
    """The banner appears, and the machine neither resets nor exits for a second after it."""
    m.boot()
    m.expect_screen(BANNER, timeout=20)
    m.expect_running(1.0)


@test(5, "64-bit mode with paging")
def long_mode(m):
    """After the banner the CPU is in long mode: EFER.LMA, CR0.PG and a 64-bit CS."""
    m.boot()
    m.expect_screen(BANNER, timeout=20)
    registers = m.registers()
    check(registers.get("EFER", 0) & EFER_LMA,
          f"EFER.LMA is clear (EFER={registers.get('EFER', 0):#x}): not in long mode")
    check(registers.get("CR0", 0) & CR0_PG,
          f"CR0.PG is clear (CR0={registers.get('CR0', 0):#x}): paging is off")
    check(registers.get("CS.flags", 0) & SEGMENT_L,
          "CS is not a 64-bit code segment (its descriptor's L bit is clear)")


@test(5, "identity map of the first 4 GiB")
def identity_map(m):
    """`info mem` shows 0-4 GiB mapped, and `info tlb` maps every page there to itself."""
    m.boot()
    m.expect_screen(BANNER, timeout=20)
    covered = mapped_ranges(m.monitor("info mem"))
    check(covers(covered, 0, 4 * GiB),
          f"the page tables do not map all of 0-4 GiB; mapped: {format_ranges(covered)}")
    for virtual, physical in translations(m.monitor("info tlb")):
        if virtual < 4 * GiB:
            check(virtual == physical,
                  f"virtual {virtual:#x} maps to physical {physical:#x}, not to itself")


@test(5, "no long mode: a message, not a triple fault")
def no_long_mode(m):
    """On a 32-bit CPU (-cpu qemu32) the screen says so and the CPU halts; nothing resets."""
    m.boot(cpu="qemu32")
    m.expect_screen(r"long mode", timeout=20)
    m.expect_running(1.0)
    check(m.registers().get("HLT") == 1, "the CPU is not halted after the message")


def mapped_ranges(info_mem):
    """[(start, end)] of the virtual ranges `info mem` lists."""
    return [(int(start, 16), int(end, 16))
            for start, end in re.findall(r"^([0-9a-f]+)-([0-9a-f]+) ", info_mem, re.MULTILINE)]


def covers(ranges, start, end):
    """True if the union of ranges contains [start, end)."""
    for low, high in sorted(ranges):
        if low > start:
            return False
        start = max(start, high)
        if start >= end:
            return True
    return False


def translations(info_tlb):
    """[(virtual, physical)] page mappings that `info tlb` lists."""
    return [(int(virtual, 16), int(physical, 16))
            for virtual, physical in re.findall(r"^([0-9a-f]+): ([0-9a-f]+) ", info_tlb,
                                                re.MULTILINE)]


def format_ranges(ranges):
    return ", ".join(f"{low:#x}-{high:#x}" for low, high in ranges) or "nothing"
