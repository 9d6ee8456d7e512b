#!/usr/bin/python3
"""Benchmark the kernel's TCP: echo throughput, and how long a lossy transfer takes.

    bench.py [STEP] [--sizes 1,8] [--runs N] [--no-lossy]

STEP is a step folder with TCP (default: the last step that offers tcp-echo). The kernel boots in
QEMU (KVM when usable, else TCG; ACCEL= chooses) with a port forward from 127.0.0.1 to its echo
service (port 7). One client (common/grader/echo_client.py) sends each size of random bytes
and reads them back; MB/s is the payload echoed per second (10^6 bytes, counted once). The same
client against a Linux echo server on the host's loopback, in the same run, gives the figures
a scale: the kernel's MB/s as a fraction of it. The same kernel booted with `idle=poll` (it
spins instead of halting when idle, as before it took interrupts) is measured too, and the
interrupt-driven kernel's MB/s printed as a fraction of the polling one's. Then, as root, the
1 MiB echo through the lossy wire of the step 06 test (Linux in a network namespace, 20% of frames dropped each way, 5%
duplicated, 10% reordered, a fixed seed): the seconds it takes.

It never fails on speed: it exits non-zero only when a measurement could not be made (the
kernel did not boot, bytes came back wrong, a transfer did not finish).
"""
import argparse
import os
import socket
import sys
import threading
import time

import benchlib  # common/benchlib.py, which puts common/grader on the path
import echo_client  # common/grader/echo_client.py
import gradelib
import lossy
from benchlib import BenchError
from gradelib import qemu

MiB = 1 << 20
ECHO_PORT = 7
KERNEL_ADDRESS = "10.0.2.15"
LOSS, DUPLICATE, REORDER, LOSSY_SEED = 0.20, 0.05, 0.10, "ringzero-06"
TRANSFER_TIMEOUT = 600.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", help="step folder, e.g. 06-tcp")
    parser.add_argument("--sizes", default="1,8", help="echo sizes in MiB (default 1,8)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the best counts")
    parser.add_argument("--no-lossy", action="store_true", help="skip the lossy transfer")
    parser.add_argument("--reference-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------
# The reference: a Linux echo server on loopback, a thread per connection, in a process of its
# own so it has a core of its own as QEMU does.

def serve_reference(port):
    listener = socket.create_server(("127.0.0.1", port), backlog=64)
    print("listening", flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=echo_until_closed, args=(connection,), daemon=True).start()


def echo_until_closed(connection):
    with connection:
        while True:
            data = connection.recv(65536)
            if not data:
                return
            connection.sendall(data)


# ---------------------------------------------------------------------------------------------
# The kernel

def echo(port, size, runs):
    """The best of runs 1-client echoes of size bytes: seconds."""
    best = None
    for run in range(runs):
        result = echo_client.run_clients("127.0.0.1", port, 1, size, seed=run,
                                         timeout=TRANSFER_TIMEOUT)
        if not result["ok"]:
            raise BenchError("; ".join(result["failures"]))
        best = min(best or result["seconds"], result["seconds"])
    return best


def lossy_seconds(run):
    """Seconds for the 1 MiB echo through the lossy wire, or the reason it was not run."""
    if os.geteuid() != 0:
        return None, "needs root (a network namespace)"
    m = gradelib.Machine(run, deadline=time.monotonic() + TRANSFER_TIMEOUT + 120)
    try:
        with lossy.Namespace() as namespace, \
                lossy.LossyRelay(m, namespace.open_tap(), seed=LOSSY_SEED) as relay:
            namespace.tune_tcp_peer()
            m.boot(cmdline="noping", extra_args=relay.nic_args())
            m.expect(r"^ready$", timeout=120)
            relay.set_faults(LOSS, DUPLICATE, REORDER)
            result = namespace.run_echo_client(KERNEL_ADDRESS, ECHO_PORT, MiB, seed=0,
                                               timeout=TRANSFER_TIMEOUT)
    except gradelib.TestFailure as failure:
        raise BenchError(f"the lossy transfer could not be made: {failure}")
    finally:
        m.kill()
    if not result["ok"]:
        raise BenchError("the lossy transfer failed: " + "; ".join(result["failures"]))
    return result["seconds"], None


# ---------------------------------------------------------------------------------------------
# The report

def machine_description(accel):
    return [f"date:    {benchlib.utc_now()}",
            f"machine: {benchlib.machine()}",
            f"qemu:    {benchlib.qemu_version()}, accelerator {accel.upper()}",
            f"         ({qemu.describe_accel(accel)})"]


def megabytes_per_second(size, seconds):
    return size / seconds / 1e6


def main():
    args = parse_args()
    if args.reference_server:
        serve_reference(args.reference_server)
        return 0
    sizes = [int(float(n) * MiB) for n in args.sizes.split(",") if n.strip()]
    try:
        step = args.step or benchlib.default_step("tcp-echo")
    except BenchError as error:
        print(f"bench: {error}")
        return 1
    gradelib.install_cleanup_handlers()
    accel = qemu.choose_accel()
    print("TCP benchmark: echo (port 7), one client, best of "
          f"{args.runs} run{'s' * (args.runs > 1)} per size")
    for line in machine_description(accel):
        print(line)
    print(f"kernel:  {step} in QEMU, e1000 on user networking, hostfwd from 127.0.0.1")
    print("reference: a Linux echo server on 127.0.0.1 (Python, a thread per connection), "
          "the same client\n")
    kernel = reference = None
    try:
        iso = benchlib.build_kernel(step)
        reference, reference_port = benchlib.start_reference(__file__)
        # A warm-up each, unreported: TCG translates the kernel's hot paths on first use.
        echo(reference_port, MiB // 4, 1)
        figures = {}
        for label, which in (("kernel", iso),
                             ("poll", benchlib.iso_with_cmdline(step, benchlib.POLLING))):
            kernel = benchlib.boot(which, accel, ECHO_PORT)
            echo(kernel.port, MiB // 4, 1)
            figures[label] = [megabytes_per_second(size, echo(kernel.port, size, args.runs))
                              for size in sizes]
            kernel.require_running("the end of the benchmark")
            kernel.stop()
            kernel = None
        theirs = [megabytes_per_second(size, echo(reference_port, size, args.runs))
                  for size in sizes]
        print(f"  {'size':>6} {'kernel MB/s':>12} {'idle=poll MB/s':>15} {'kernel/poll':>12} "
              f"{'reference MB/s':>15} {'kernel/reference':>17}")
        for size, ours, polling, reference_figure in zip(sizes, figures["kernel"],
                                                          figures["poll"], theirs):
            print(f"  {size / MiB:>3g} MiB {ours:>12.2f} {polling:>15.2f} "
                  f"{ours / polling:>12.2f} {reference_figure:>15.1f} "
                  f"{ours / reference_figure:>17.4f}", flush=True)
        print("  idle=poll: the same kernel booted with idle=poll, which never halts (the "
              "polling reference)")
        if not args.no_lossy:
            run = gradelib.Run(step, iso.parent, accel=accel, timeout_scale=1)
            seconds, reason = lossy_seconds(run)
            wire = (f"{LOSS:.0%} dropped each way, {DUPLICATE:.0%} duplicated, "
                    f"{REORDER:.0%} reordered, seed {LOSSY_SEED!r}")
            if seconds is None:
                print(f"\nlossy wire ({wire}): not measured, {reason}")
            else:
                print(f"\nlossy wire ({wire}): 1 MiB echoed in {seconds:.1f} s "
                      f"({megabytes_per_second(MiB, seconds) * 1000:.1f} kB/s)")
    except (BenchError, gradelib.TestFailure) as error:
        print(f"bench: {error}")
        return 1
    finally:
        gradelib.kill_all_machines()
        if kernel:
            kernel.stop()
        if reference:
            benchlib.stop(reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
