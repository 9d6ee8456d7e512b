#!/usr/bin/python3
"""Benchmark the kernel's HTTP server: GET /health with keep-alive, measured by wrk.

    bench_http.py [STEP] [--seconds N] [--connections LIST]

STEP is a step folder with an HTTP server (default: the last step that offers http).
The kernel boots in QEMU (KVM when usable, else TCG; ACCEL= chooses) with a port forward from
127.0.0.1; wrk measures requests per second and the 50th and 99th percentile latency there,
then the same against a reference server on the host's loopback, measured in the same run:
Python's http.server answering /health with the same body, over HTTP/1.1 keep-alive. The
reference gives the figures a scale: the kernel's requests per second as a fraction of the
host's, through QEMU's user networking. Then the same kernel booted with `idle=poll` (it spins
instead of halting when idle, as before it took interrupts): the interrupt-driven kernel's
requests per second as a fraction of the polling one's.

It prints the figures with the machine and the date. It never fails on speed: it exits
non-zero only when a measurement could not be made (wrk missing, the kernel did not boot,
a run with errors or no responses).
"""
import argparse
import http.server
import os
import re
import shutil
import subprocess
import sys

import benchlib  # common/benchlib.py
import qemu  # common/qemu.py
from benchlib import BenchError

HEALTH_BODY = b'{"status":"ok","model":"reference"}'
HTTP_PORT = 80  # the kernel's server, forwarded from a free port on 127.0.0.1


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", help="step folder, e.g. 07-http")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", default="1,8",
                        help="comma-separated keep-alive connection counts (default 1,8)")
    parser.add_argument("--reference-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------
# The reference server: Python's http.server, in a process of its own so it has a core of its
# own like QEMU does.

class HealthHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes; with Nagle's algorithm the second waits for
    # the client's delayed ACK (40 ms), which would measure the timer, not the server.
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path != "/health":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(HEALTH_BODY)))
        self.end_headers()
        self.wfile.write(HEALTH_BODY)

    def log_message(self, *arguments):
        pass


class ReferenceServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # wrk ends its runs by resetting its connections; that is not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve_reference(port):
    server = ReferenceServer(("127.0.0.1", port), HealthHandler)
    print("listening", flush=True)
    server.serve_forever()


# ---------------------------------------------------------------------------------------------
# wrk

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(port, connections, seconds):
    """{"rps", "p50_ms", "p99_ms", "requests", "errors"} of one wrk run on GET /health."""
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
    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", text)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non_2xx:
        errors += int(non_2xx[1])
    if not rps or not requests or int(requests[1]) == 0:
        raise BenchError(f"wrk measured nothing:\n{text}{result.stderr}")
    return {"rps": float(rps[1]), "p50_ms": latency(50), "p99_ms": latency(99),
            "requests": int(requests[1]), "errors": errors}


# ---------------------------------------------------------------------------------------------
# The report

def machine_description(accel):
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    wrk_version = (wrk.stdout or wrk.stderr).split("[")[0].strip()
    return [f"date:    {benchlib.utc_now()}",
            f"machine: {benchlib.machine()}",
            f"qemu:    {benchlib.qemu_version()}, accelerator {accel.upper()}",
            f"client:  {wrk_version}"]


def show(label, figures):
    p50 = f"{figures['p50_ms']:.3f}" if figures["p50_ms"] is not None else "?"
    p99 = f"{figures['p99_ms']:.3f}" if figures["p99_ms"] is not None else "?"
    print(f"  {label:<34} {figures['rps']:>10.0f} {p50:>9} {p99:>9} "
          f"{figures['requests']:>9} {figures['errors']:>6}")


def main():
    args = parse_args()
    if args.reference_server:
        serve_reference(args.reference_server)
        return 0
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed (Debian package wrk)")
    step = args.step or benchlib.default_step("http")
    connections = [int(n) for n in args.connections.split(",") if n.strip()]
    accel = qemu.choose_accel()
    iso = benchlib.build_kernel(step)
    print(f"HTTP benchmark: GET /health, keep-alive, wrk {args.seconds} s per run")
    for line in machine_description(accel):
        print(line)
    print(f"kernel:  {step} in QEMU, user networking, hostfwd from 127.0.0.1")
    print("reference: Python http.server (ThreadingHTTPServer, HTTP/1.1) on 127.0.0.1\n")
    print(f"  {'server':<34} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'requests':>9} "
          f"{'errors':>6}")
    failures = 0
    ratios, kernel_rps = [], []
    with benchlib.boot(iso, accel, HTTP_PORT) as kernel:
        reference, reference_port = benchlib.start_reference(__file__)
        try:
            # A warm-up run each, unreported: TCG translates the kernel's hot paths on first use.
            run_wrk(kernel.port, 1, 2)
            run_wrk(reference_port, 1, 2)
            for count in connections:
                ours = run_wrk(kernel.port, count, args.seconds)
                theirs = run_wrk(reference_port, count, args.seconds)
                show(f"kernel, {count} connection{'s' * (count > 1)}", ours)
                show(f"reference, {count} connection{'s' * (count > 1)}", theirs)
                failures += ours["errors"] > 0
                ratios.append((count, ours["rps"] / theirs["rps"]))
                kernel_rps.append(ours["rps"])
            kernel.require_running("the end of the benchmark")
        finally:
            benchlib.stop(reference)
    # The polling reference: the same kernel booted with idle=poll, which never halts.
    polling = []
    with benchlib.boot(benchlib.iso_with_cmdline(step, benchlib.POLLING), accel,
                       HTTP_PORT) as kernel:
        run_wrk(kernel.port, 1, 2)
        for count in connections:
            figures = run_wrk(kernel.port, count, args.seconds)
            show(f"kernel idle=poll, {count} connection{'s' * (count > 1)}", figures)
            failures += figures["errors"] > 0
            polling.append(figures["rps"])
        kernel.require_running("the end of the benchmark")
    print()
    for count, ratio in ratios:
        plural = "s" * (count > 1)
        print(f"kernel/reference requests per second, {count} connection{plural}: {ratio:.2f}")
    for (count, _), ours, poll_rps in zip(ratios, kernel_rps, polling):
        plural = "s" * (count > 1)
        print(f"kernel/idle=poll requests per second, {count} connection{plural}: "
              f"{ours / poll_rps:.2f}")
    if failures:
        print("bench_http: the kernel answered some requests with errors (see the errors "
              "column)")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        sys.exit(f"bench_http: {error}")
