"""benchlib: what the three benchmarks (bench.py, bench_http.py, bench_infer.py) share.

- default_step(word): the step a benchmark measures unless told which, the last one whose
  MANIFEST offers word (tcp-echo, http, inference: OFFERS in steps.py).
- make(), build_kernel(): the kernel and its ISO, or the host reference, through the project's
  make files; iso_with_cmdline(): the same kernel in an ISO passing a command line (idle=poll).
- boot(): the kernel in QEMU with one guest port forwarded from a free port on 127.0.0.1,
  returned once it has printed `ready`, as a Kernel to stop (or to use in a with block).
- start_reference(): a benchmark's own reference server, in a process of its own.
- cpu_seconds(process): host CPU time, the whole host's and one process's, for two readings.
- utc_now(), machine(), qemu_version(): for the header of a report.

POLLING is the command line of the polling reference: from step 05 on the kernel halts when it
has no work, and `idle=poll` makes it spin instead, as it did before it took interrupts. The
benchmarks measure the kernel both ways.

A measurement that cannot be made raises BenchError.
"""
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

COMMON = Path(__file__).resolve().parent
REPO = COMMON.parent
sys.path.insert(0, str(COMMON / "grader"))
import nic  # noqa: E402  (common/grader/nic.py)
import qemu  # noqa: E402  (common/qemu.py, beside this file)
import steps  # noqa: E402  (common/steps.py)


class BenchError(Exception):
    """A measurement could not be made."""


def default_step(word):
    """The name of the last step whose MANIFEST offers word."""
    found = steps.offering(steps.find_steps(REPO), word)
    if not found:
        raise BenchError(f"no step offers {word} (offers: in its MANIFEST)")
    return found[-1].name


def make(*arguments):
    """make -s ARGUMENTS in the repository; BenchError with make's output if it fails."""
    result = subprocess.run(["make", "-s", *arguments], cwd=REPO, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise BenchError(f"make {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")


def build_kernel(step, target="iso"):
    """The step's kernel (target kernel) or also its ISO (iso) under build/STEP; the ISO's
    path."""
    make("-f", "common/kernel.mk", f"STEP_DIR=steps/{step}", f"OUT=build/{step}", target)
    return REPO / "build" / step / "ringzero.iso"


POLLING = "idle=poll"


def iso_with_cmdline(step, cmdline, modules=None):
    """The step's kernel (build_kernel first) in an ISO of its own whose GRUB entry passes
    cmdline, with the modules its MANIFEST names (step 08's model and tokenizer) or the given
    module files: build/STEP/bench-WORDS.iso."""
    folder = REPO / "build" / step
    if modules is None:
        listed = steps.manifest_field(REPO / "steps" / step / "MANIFEST", "modules").split()
        modules = [REPO / name for name in listed]
    iso = folder / f"bench-{re.sub(r'[^A-Za-z0-9]+', '-', cmdline).strip('-') or 'plain'}.iso"
    result = subprocess.run(["sh", str(COMMON / "mkiso.sh"), str(folder / "kernel.elf"),
                             str(iso), cmdline, *map(str, modules)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"mkiso.sh could not build an ISO with cmdline {cmdline!r}: "
                         f"{result.stderr.strip()}")
    return iso


def cpu_seconds(process):
    """(host CPU seconds busy, of them this process's, wall seconds): two readings,
    subtracted, say how much of a core the process used and how much other work the host did
    meanwhile. Utime and stime cover all of the process's threads (QEMU's vCPUs and I/O)."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait; steal included
    with open(f"/proc/{process.pid}/stat") as stat:
        after_name = stat.read().rpartition(")")[2].split()
    own = int(after_name[11]) + int(after_name[12])  # utime, stime
    return busy / ticks, own / ticks, time.monotonic()


def stop(process):
    if process.poll() is None:
        process.kill()
    process.wait()


class Kernel:
    """The kernel in QEMU with guest_port forwarded from self.port on 127.0.0.1. self.lines
    is its serial output so far, a line each; self.process is QEMU. A subclass boots another
    guest on the same virtual machine by overriding qemu_argv and READY_LINE (linux_peer.py)."""

    READY_LINE = "ready"  # what the guest prints on its serial console once it serves

    def __init__(self, iso, accel, guest_port, memory="256M", cpus=1):
        self.port = nic.free_port()
        argv = self.qemu_argv(iso, accel, memory, cpus,
                              nic.user_nic([(self.port, guest_port)]))
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=self.stderr, start_new_session=True)
        self.lines = []
        self.ready = threading.Event()
        threading.Thread(target=self._read_serial, daemon=True).start()

    def _read_serial(self):
        for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))
            if self.lines[-1] == self.READY_LINE:
                self.ready.set()

    def qemu_argv(self, iso, accel, memory, cpus, nic_args):
        return qemu.build_argv(iso, memory=memory, accel=accel, smp=cpus, serial="stdio",
                               extra_args=nic_args)

    def wait_ready(self, timeout):
        """Wait until the guest prints READY_LINE; stop it and raise BenchError if it does not
        within timeout seconds."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            exited = self.process.poll() is not None
            if exited or time.monotonic() > deadline:
                self.stop()
                self.stderr.seek(0)
                said = self.stderr.read().decode(errors="replace").strip()
                raise BenchError(f"the kernel did not get ready (QEMU "
                                 f"{'exited' if exited else f'timed out after {timeout} s'})"
                                 + (f"; QEMU said: {said[-500:]}" if said else "")
                                 + "; last serial lines:\n" + "\n".join(self.lines[-5:]))

    def require_running(self, what):
        if self.process.poll() is not None:
            raise BenchError(f"QEMU exited before {what} (status {self.process.returncode})")

    def stop(self):
        stop(self.process)
        self.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.stop()


def boot(iso, accel, guest_port, memory="256M", cpus=1, timeout=120):
    """A Kernel booted from iso on `cpus` vCPUs, once it is ready (timeout in seconds). Its
    boot-time ping of the gateway lets slirp learn its MAC, which the first forwarded
    connection needs."""
    kernel = Kernel(iso, accel, guest_port, memory, cpus)
    kernel.wait_ready(timeout)
    return kernel


def start_reference(script):
    """Run `script --reference-server PORT`, a benchmark's reference server, in a process of
    its own so that it has a core of its own as QEMU does: (process, port) once it has printed
    `listening`."""
    port = nic.free_port()
    process = subprocess.Popen([sys.executable, str(script), "--reference-server", str(port)],
                               stdout=subprocess.PIPE, text=True)
    if process.stdout.readline().strip() != "listening":
        stop(process)
        raise BenchError("the reference server did not start")
    return process, port


def utc_now():
    return f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def machine(cpus_word="CPUs"):
    """The host: its CPU model, how many, and its kernel."""
    with open("/proc/cpuinfo") as info:
        models = re.findall(r"^model name\s*:\s*(.+)$", info.read(), re.MULTILINE)
    cpu = models[0] if models else platform.processor() or "unknown CPU"
    return f"{cpu}, {os.cpu_count()} {cpus_word}, {platform.system()} {platform.release()}"


def qemu_version():
    version = subprocess.run([qemu.QEMU, "--version"], capture_output=True,
                             text=True).stdout.splitlines()
    return version[0] if version else "unknown"
