#!/usr/bin/python3
"""The tools students reach for, used as a student would: make's targets and real programs.

- `make compile-commands` writes compile_commands.json, and clangd, reading it, resolves every
  include of a step-09 file (clangd --check reports no error).
- `make step 5 run PCAP=file` records the NIC's frames: after the boot's ping to the gateway,
  tshark reads the capture and finds the ARP exchange and the ICMP echo request and reply.
- `make step 4 run PCAP=file` stops with an error naming the missing network card, and boots
  nothing.

Ends with `N passed, N failed`.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BOOT_SECONDS = 240  # until `ready` under TCG, with room for a busy machine
results = []


def report(passed, title, detail=""):
    results.append(passed)
    print(f"{'PASS' if passed else 'FAIL'} {title}" + (f": {detail}" if detail else ""),
          flush=True)


def clangd_resolves_includes():
    made = subprocess.run(["make", "-s", "--no-print-directory", "compile-commands"], cwd=REPO,
                          capture_output=True, text=True)
    if made.returncode != 0:
        return report(False, "make compile-commands", made.stderr.strip()[-400:])
    checked = subprocess.run(["clangd", "--check=steps/09-smp/kmain.c"], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    log = checked.stdout + checked.stderr
    # A header it could not find would be an error ("'kprintf.h' file not found").
    ok = (checked.returncode == 0 and "Loaded compilation database" in log and
          "All checks completed, 0 errors" in log)
    report(ok, "clangd --check=steps/09-smp/kmain.c resolves its includes through "
           "compile_commands.json", "" if ok else f"exit {checked.returncode}: {log[-600:]}")


def run_with_pcap(capture):
    """make step 5 run PCAP=capture until `ready`, then stop QEMU; the serial output."""
    process = subprocess.Popen(["make", "-s", "--no-print-directory", "step", "5", "run",
                                f"PCAP={capture}"], cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    output = b""
    deadline = time.monotonic() + BOOT_SECONDS
    os.set_blocking(process.stdout.fileno(), False)
    try:
        while b"\nready" not in output.replace(b"\r", b"") and time.monotonic() < deadline:
            chunk = process.stdout.read()
            if chunk:
                output += chunk
            elif process.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    return output.decode(errors="replace")


def pcap_read_by_tshark():
    with tempfile.TemporaryDirectory(prefix="ringzero-pcap-") as folder:
        capture = Path(folder) / "05.pcap"
        output = run_with_pcap(capture)
        if "ready" not in output:
            return report(False, "make step 5 run PCAP=... boots to ready", output[-400:])
        read = subprocess.run(["tshark", "-r", str(capture)], capture_output=True, text=True,
                              timeout=120)
        lines = read.stdout.splitlines()
        wanted = {"ARP request": lambda l: "ARP" in l and "Who has" in l,
                  "ARP reply": lambda l: "ARP" in l and " is at " in l,
                  "echo request": lambda l: "ICMP" in l and "Echo (ping) request" in l,
                  "echo reply": lambda l: "ICMP" in l and "Echo (ping) reply" in l}
        missing = [name for name, found in wanted.items() if not any(map(found, lines))]
        report(read.returncode == 0 and not missing,
               "make step 5 run PCAP=file: tshark -r reads the boot's ARP and ping",
               "" if read.returncode == 0 and not missing else
               f"tshark exit {read.returncode}, missing {missing}: {read.stdout[-400:]}"
               f"{read.stderr[-300:]}")


def pcap_refused_without_nic():
    with tempfile.TemporaryDirectory(prefix="ringzero-pcap-") as folder:
        capture = Path(folder) / "04.pcap"
        run = subprocess.run(["make", "-s", "--no-print-directory", "step", "4", "run",
                              f"PCAP={capture}"], cwd=REPO, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=120)
        said = run.stdout + run.stderr
        ok = run.returncode != 0 and "no network card" in said and not capture.exists()
        report(ok, "make step 4 run PCAP=file stops: step 04 has no network card",
               "" if ok else f"exit {run.returncode}: {said[-300:]}")


def main():
    clangd_resolves_includes()
    pcap_read_by_tshark()
    pcap_refused_without_nic()
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
