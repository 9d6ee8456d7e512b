#!/usr/bin/python3
"""Benchmark the kernel's HTTP server against Linux and nginx: GET /health with keep-alive,
measured by wrk.

    bench_http.py [STEP] [--seconds N] [--connections LIST] [--cpus N]

STEP is a step folder with an HTTP server (default: the last step that offers http). Three
guests boot in turn, one at a time, on the same virtual machine: QEMU (KVM when usable, else
TCG; ACCEL= chooses) with the same processor, vCPUs (--cpus, default 1) and memory, an e1000
on QEMU's user networking, and a port forward from 127.0.0.1 to the guest's port 80:

  kernel            the step's kernel;
  nginx             the reference: Debian's Linux kernel and nginx, answering /health with the
                    same body; common/linux_peer.py assembles them from Debian packages into
                    an initramfs on the first run and caches it in build/linux-peer/;
  kernel idle=poll  the same kernel booted with `idle=poll` (it spins instead of halting when
                    idle, as before it took interrupts).

Against each, wrk runs once per keep-alive connection count (--connections, default
1,8,64,256), after an unreported warm-up, and reports requests per second, the 50th and 99th
percentile latency, and its errors: connect, read, write, timeout and non-2xx responses. For
each count the summary gives the kernel's requests per second, nginx's, kernel/nginx, the
errors of both, and kernel/idle=poll. Under TCG every guest runs on QEMU's emulation, so the
figures measure QEMU (its translated code, its e1000 and its user networking) as much as
either kernel; the ratios compare two guests on the same emulated machine.

It prints the figures with the machine and the date. It never fails on speed, and reports
errors without failing: it exits non-zero only when a measurement could not be made (wrk
missing, a guest that did not boot or stopped, a peer that could not be built, a run without a
single response).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

import benchlib  # common/benchlib.py
import linux_peer  # common/linux_peer.py
import qemu  # common/qemu.py
from benchlib import BenchError

HTTP_PORT = 80  # every guest's server, forwarded from a free port on 127.0.0.1
MEMORY = "256M"
BOOT_TIMEOUT = 300  # seconds; step 09 takes about a minute under TCG
ERROR_KINDS = ["connect", "read", "write", "timeout", "non-2xx"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", help="step folder, e.g. 07-http")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", default="1,8,64,256",
                        help="comma-separated keep-alive connection counts (default 1,8,64,256)")
    parser.add_argument("--cpus", type=int, default=1,
                        help="vCPUs of every guest (QEMU's -smp; default 1)")
    args = parser.parse_args()
    if args.cpus < 1:
        parser.error("--cpus must be at least 1")
    return args


# ---------------------------------------------------------------------------------------------
# wrk

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(port, connections, seconds):
    """{"rps", "p50_ms", "p99_ms", "requests", "errors": {kind: count}} of one wrk run on
    GET /health."""
    threads = min(connections, os.cpu_count() or 1)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            f"http://127.0.0.1:{port}/health"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    text = result.stdout
    if result.returncode != 0:
        raise BenchError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")

    def latency(percent):
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        return float(match[1]) * UNITS[match[2]] if match else None

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    requests = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    if not rps or not requests or int(requests[1]) == 0:
        raise BenchError(f"wrk measured nothing:\n{text}{result.stderr}")
    return {"rps": float(rps[1]), "p50_ms": latency(50), "p99_ms": latency(99),
            "requests": int(requests[1]), "errors": wrk_errors(text)}


def wrk_errors(text):
    """{kind: count} of ERROR_KINDS from wrk's report, which leaves out the lines whose counts
    are all zero."""
    errors = dict.fromkeys(ERROR_KINDS, 0)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", text)
    if socket_errors:
        errors.update(zip(ERROR_KINDS, map(int, socket_errors.groups())))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non_2xx:
        errors["non-2xx"] = int(non_2xx[1])
    return errors


# ---------------------------------------------------------------------------------------------
# The guests and their runs

def guests(step, accel, cpus):
    """The peer's image, and [(label, a function that boots the guest and returns it once it
    serves)] in the order they are measured. Everything they boot from is built first, so
    that a build failure stops the benchmark before it measures anything."""
    iso = benchlib.build_kernel(step)
    polling_iso = benchlib.iso_with_cmdline(step, benchlib.POLLING)
    peer = linux_peer.build()
    return peer, [
        ("kernel", lambda: benchlib.boot(iso, accel, HTTP_PORT, MEMORY, cpus, BOOT_TIMEOUT)),
        ("nginx", lambda: linux_peer.boot(peer, accel, MEMORY, cpus, BOOT_TIMEOUT)),
        (f"kernel {benchlib.POLLING}",
         lambda: benchlib.boot(polling_iso, accel, HTTP_PORT, MEMORY, cpus, BOOT_TIMEOUT)),
    ]


def measure(label, guest, connections, seconds):
    """{connection count: wrk's figures} against a guest that serves, each printed as it
    comes."""
    # A warm-up run, unreported: TCG translates the guest's hot paths on first use.
    run_wrk(guest.port, 1, 2)
    figures = {}
    for count in connections:
        figures[count] = run_wrk(guest.port, count, seconds)
        show(label, count, figures[count])
    guest.require_running(f"the end of the {label} runs")
    return figures


# ---------------------------------------------------------------------------------------------
# The report

def machine_description(accel):
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    wrk_version = (wrk.stdout or wrk.stderr).split("[")[0].strip()
    return [f"date:    {benchlib.utc_now()}",
            f"machine: {benchlib.machine()}",
            f"qemu:    {benchlib.qemu_version()}, accelerator {accel.upper()}",
            f"client:  {wrk_version}"]


def guest_description(step, peer, accel, cpus):
    lines = [f"guests:  one at a time, each in QEMU with {cpus} vCPU{'s' * (cpus > 1)} and "
             f"{MEMORY}, an e1000 on user networking, 127.0.0.1 forwarded to port {HTTP_PORT}",
             f"kernel:  {step}",
             f"nginx:   {peer.description} (common/linux_peer.py)"]
    if accel == "tcg":
        lines.append("note:    under TCG every figure measures QEMU's emulation (its translated "
                     "code, e1000 and user networking) as much as the guest's kernel")
    return lines


def show_heading():
    print(f"  {'server':<18} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'requests':>9} " + " ".join(f"{kind:>7}" for kind in ERROR_KINDS), flush=True)


def show(label, count, figures):
    def milliseconds(value):
        return f"{value:.3f}" if value is not None else "?"

    print(f"  {label:<18} {count:>5} {figures['rps']:>9.0f} {milliseconds(figures['p50_ms']):>8} "
          f"{milliseconds(figures['p99_ms']):>8} {figures['requests']:>9} "
          + " ".join(f"{figures['errors'][kind]:>7}" for kind in ERROR_KINDS), flush=True)


def show_summary(results, connections):
    """Per connection count: the kernel's requests per second against nginx's and against
    its own with idle=poll, and each server's errors (all kinds added up)."""
    kernel, nginx, polling = (results[label] for label in
                              ("kernel", "nginx", f"kernel {benchlib.POLLING}"))
    print(f"\n  {'conns':>5} {'kernel req/s':>12} {'nginx req/s':>11} {'kernel/nginx':>12} "
          f"{'kernel errors':>13} {'nginx errors':>12} {'idle=poll req/s':>15} "
          f"{'kernel/idle=poll':>16}")
    for count in connections:
        print(f"  {count:>5} {kernel[count]['rps']:>12.0f} {nginx[count]['rps']:>11.0f} "
              f"{kernel[count]['rps'] / nginx[count]['rps']:>12.2f} "
              f"{sum(kernel[count]['errors'].values()):>13} "
              f"{sum(nginx[count]['errors'].values()):>12} "
              f"{polling[count]['rps']:>15.0f} "
              f"{kernel[count]['rps'] / polling[count]['rps']:>16.2f}")


def main():
    args = parse_args()
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed (Debian package wrk)")
    step = args.step or benchlib.default_step("http")
    connections = [int(n) for n in args.connections.split(",") if n.strip()]
    accel = qemu.choose_accel()
    peer, boots = guests(step, accel, args.cpus)
    print(f"HTTP benchmark: GET /health, keep-alive, wrk {args.seconds} s per run")
    for line in machine_description(accel) + guest_description(step, peer, accel, args.cpus):
        print(line)
    print()
    show_heading()
    results = {}
    for label, boot in boots:
        with boot() as guest:
            results[label] = measure(label, guest, connections, args.seconds)
    show_summary(results, connections)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        sys.exit(f"bench_http: {error}")
