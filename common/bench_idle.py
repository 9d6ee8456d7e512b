#!/usr/bin/python3
"""Benchmark what an idle kernel costs its host: QEMU's CPU time while the kernel waits.

    bench_idle.py [STEP...] [--settle S] [--seconds S]

From step 05 on the kernel halts (`sti; hlt`) when a pass of its main loop found no work, and
the PIT's 100 Hz tick, the e1000 and the serial port wake it; booted with `idle=poll` it spins
instead, as it did before it took interrupts. For each step from 05 on (or the STEPs given),
the kernel boots twice on QEMU user networking, once as built and once with `idle=poll`; after
`ready` and a further --settle seconds (3) nobody talks to it, and QEMU's host CPU time (utime +
stime from /proc/PID/stat, all of its threads) over --seconds (10) is the figure: percent of
one host core. A step whose MANIFEST has `smp:` (09) boots with 2 vCPUs. The ratio is polling
over halting: how many times more host CPU the spinning kernel burns.

Under TCG the figure measures QEMU's emulation of the guest (translating and running its
instructions, the timer), not what the kernel would cost on hardware; under KVM a halted vCPU
costs the host next to nothing. Other work on the host does not change QEMU's own CPU time
much, but the busy column says how much there was. Exits non-zero only when a measurement
could not be made (a kernel that did not build or boot).
"""
import argparse
import sys
import time

import benchlib  # common/benchlib.py, which puts common/grader on the path
from benchlib import REPO, BenchError
import qemu  # common/qemu.py
import steps  # common/steps.py

FIRST_STEP = 5  # the first step with interrupts and a halting idle loop
SMP_CPUS = 2
GUEST_PORT = 7  # forwarded but unused: benchlib boots every kernel with a forward


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="*", help="step folders or numbers (default: 05 on)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to wait after `ready` before measuring (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="seconds to measure over (default 10)")
    return parser.parse_args()


def steps_to_measure(names):
    found = steps.find_steps(REPO)
    if names:
        return [steps.resolve(found, name).name for name in names]
    return [step.name for step in found if int(step.name[:2]) >= FIRST_STEP]


def memory_for(step):
    listed = steps.manifest_field(REPO / "steps" / step / "MANIFEST", "modules").split()
    if not listed:
        return "256M"
    return max(qemu.memory_for([REPO / name for name in listed]), "256M",
               key=lambda size: int(size[:-1]))


def cpus_for(step):
    return SMP_CPUS if steps.manifest_field(REPO / "steps" / step / "MANIFEST", "smp") else 1


def measure(iso, accel, memory, cpus, settle, seconds):
    """(QEMU's share of one host core, the whole host's busy cores) while the kernel idles."""
    with benchlib.boot(iso, accel, GUEST_PORT, memory, cpus, timeout=300) as kernel:
        time.sleep(settle)
        before = benchlib.cpu_seconds(kernel.process)
        time.sleep(seconds)
        after = benchlib.cpu_seconds(kernel.process)
        kernel.require_running("the end of the measurement")
    busy, own, wall = (end - start for start, end in zip(before, after))
    return own / wall, busy / wall


def main():
    args = parse_args()
    try:
        names = steps_to_measure(args.steps)
    except steps.StepError as error:
        print(f"bench_idle: {error}")
        return 2
    accel = qemu.choose_accel()
    print(f"Idle benchmark: QEMU's host CPU while the kernel waits, {args.seconds:g} s from "
          f"{args.settle:g} s after `ready`")
    print(f"date:    {benchlib.utc_now()}")
    print(f"machine: {benchlib.machine()}")
    print(f"qemu:    {benchlib.qemu_version()}, accelerator {accel.upper()}")
    print(f"         ({qemu.describe_accel(accel)})")
    print("kernel:  each step as built (halts when idle), and booted with `idle=poll` (spins, "
          "the polling reference)")
    if accel == "tcg":
        print("note:    under TCG the figure measures QEMU's emulation of the guest, not what "
              "the kernel would cost on hardware")
    print(f"\n  {'step':<14} {'vCPUs':>5} {'halting %core':>14} {'idle=poll %core':>16} "
          f"{'poll/halt':>10} {'host busy cores (halt, poll)':>29}")
    failures = 0
    for step in names:
        cpus = cpus_for(step)
        try:
            iso = benchlib.build_kernel(step)
            polling_iso = benchlib.iso_with_cmdline(step, benchlib.POLLING)
            memory = memory_for(step)
            halting, halting_busy = measure(iso, accel, memory, cpus, args.settle, args.seconds)
            polling, polling_busy = measure(polling_iso, accel, memory, cpus, args.settle,
                                            args.seconds)
        except BenchError as error:
            failures += 1
            print(f"  {step:<14} {cpus:>5} not measured: {error}".splitlines()[0], flush=True)
            continue
        ratio = f"{polling / halting:.1f}x" if halting > 0 else "inf"
        print(f"  {step:<14} {cpus:>5} {halting * 100:>13.1f}% {polling * 100:>15.1f}% "
              f"{ratio:>10} {halting_busy:>18.2f}, {polling_busy:.2f}", flush=True)
    print("\n  %core: QEMU's utime + stime over the interval, as a percentage of one host core "
          f"(with {SMP_CPUS} vCPUs a spinning guest can reach {SMP_CPUS * 100}%)")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        sys.exit(f"bench_idle: {error}")
