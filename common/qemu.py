#!/usr/bin/python3
"""Run a ringzero ISO in qemu-system-x86_64.

One place builds QEMU's command line, so `make step N run` and the grader boot the kernel on
the same virtual machine.

    qemu.py run ISO [--console vga|serial] [--memory 256M | --fit FILE...] [--smp N|host]
                    [--gdb PORT --elf ELF] [-- extra qemu args]
    qemu.py gdb-port        print this user's default gdb port

Environment: ACCEL=kvm|tcg forces the accelerator.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

QEMU = "qemu-system-x86_64"
DEBUG_EXIT_PORT = 0xF4
# isa-debug-exit makes QEMU exit with (value << 1) | 1; the kernel writes 1 when it panics,
# and a lab item's stub writes 2 when it is reached (common/lab/lab.h).
PANIC_STATUS = 3
LAB_MISSING_STATUS = 5


def kvm_problem():
    """Why TCG runs the kernel instead of KVM, or None when KVM can."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm not usable, using TCG (slower)"
    # PVM is KVM without hardware virtualization (nested cloud machines, this project's CI).
    # It emulates the 16- and 32-bit code of BIOS and GRUB (~35 s to reach the kernel, where
    # TCG takes half a second), runs this kernel's ring-0 code far slower than TCG, and stops
    # with an "emulation failure" at the first SSE instruction (step 08's boot.S).
    if os.path.exists("/sys/module/kvm_pvm"):
        return "/dev/kvm is PVM, slow for BIOS and GRUB and unable to run SSE; using TCG"
    return None


def choose_accel():
    """Return "kvm" or "tcg": ACCEL from the environment, else KVM when it is usable."""
    forced = os.environ.get("ACCEL", "").strip().lower()
    if forced in ("kvm", "tcg"):
        return forced
    if forced:
        raise SystemExit(f"qemu: ACCEL must be kvm or tcg, not {forced!r}")
    return "tcg" if kvm_problem() else "kvm"


def describe_accel(accel):
    """The one line that tells the user which accelerator runs the kernel."""
    if os.environ.get("ACCEL", "").strip():
        return f"qemu: using {accel.upper()} (ACCEL={accel})"
    if accel == "kvm":
        return "qemu: using KVM"
    return f"qemu: {kvm_problem()}"


def default_cpu(accel):
    # Some nested KVM hosts (PVM among them) advertise IA32_ARCH_CAPABILITIES but refuse to
    # let QEMU set it, and QEMU aborts; the kernel never reads that MSR.
    return "host,-arch-capabilities" if accel == "kvm" else "max"


def memory_for(files):
    """QEMU's -m for a kernel that GRUB loads with these module files (step 08's model).

    128 MiB for the kernel, its heap and the network, plus the files twice over: once as GRUB
    loads them, and as much again for what the kernel computes beside them (key/value caches,
    buffers). Rounded up to 64 MiB.
    """
    step = 64 << 20
    needed = (128 << 20) + 2 * sum(os.path.getsize(f) for f in files)
    return f"{-(-needed // step) * step >> 20}M"


def default_gdb_port():
    """A per-user gdb port, so two users of one machine can debug at once."""
    return 1234 + os.getuid() % 1000


def build_argv(iso, *, memory="256M", accel=None, cpu=None, smp=1, display="none",
               serial="none", monitor="none", qmp_socket=None, gdb_port=None, extra_args=()):
    """Return QEMU's argv for booting ISO.

    serial and monitor are QEMU chardev specs ("stdio", "mon:stdio", "none", ...). qmp_socket
    is a unix socket path where QEMU listens for QMP clients. gdb_port starts the guest
    stopped, waiting for gdb.
    """
    accel = accel or choose_accel()
    argv = [QEMU,
            "-cdrom", str(iso), "-boot", "order=d",
            "-m", str(memory), "-smp", str(smp),
            "-accel", accel, "-cpu", cpu or default_cpu(accel),
            # A triple fault resets the machine; -no-reboot turns that into an exit (status 0).
            "-no-reboot",
            "-device", f"isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04",
            "-display", display, "-serial", serial, "-monitor", monitor]
    if qmp_socket:
        argv += ["-qmp", f"unix:{qmp_socket},server=on,wait=off"]
    if gdb_port:
        argv += ["-S", "-gdb", f"tcp::{gdb_port}"]
    return argv + list(extra_args)


def describe_exit(status, shutdown_reason=None):
    """Explain QEMU's exit status in words, or return None for an ordinary quit.

    shutdown_reason is the "reason" of QMP's SHUTDOWN event: it tells a guest reset (triple
    fault) from the user quitting. It is "none" when a QMP client saw QEMU exit without that
    event (gdb's kill), and None when nobody was listening.
    """
    if status == PANIC_STATUS:
        return "the kernel panicked (exit status 3)"
    if status == LAB_MISSING_STATUS:
        return "the kernel reached a lab item that is not written yet (exit status 5)"
    if status < 0:
        return f"QEMU was killed by signal {-status}"
    if status & 1 and status > 1:
        return f"the kernel wrote {status >> 1} to isa-debug-exit (exit status {status})"
    if status == 1:
        return "QEMU failed to start or crashed (exit status 1)"
    if shutdown_reason in (None, "guest-reset"):
        return "the machine reset (triple fault?)"
    if shutdown_reason == "guest-shutdown":
        return "the guest powered the machine off"
    return None


class ShutdownWatcher(threading.Thread):
    """Listens on QEMU's QMP socket and remembers why the machine shut down."""

    def __init__(self, path, qemu):
        super().__init__(daemon=True)
        self.path, self.qemu, self.reason = path, qemu, None

    def run(self):
        conn = connect_unix(self.path, self.qemu)
        if conn is None:
            return
        self.reason = "none"
        stream = conn.makefile("rwb")
        stream.write(b'{"execute": "qmp_capabilities"}\n')
        stream.flush()
        for line in stream:
            message = json.loads(line)
            if message.get("event") == "SHUTDOWN":
                self.reason = message["data"].get("reason")


def connect_unix(path, process, timeout=10.0):
    """Connect to QEMU's unix socket once it exists; None if QEMU exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(path)
            return conn
        except (FileNotFoundError, ConnectionRefusedError):
            conn.close()
            time.sleep(0.01)
    return None


def display_for(console):
    """Pick the display, and say what the user will (not) see."""
    if console == "serial":
        print("qemu: serial console here; Ctrl-A X quits, Ctrl-A C toggles the QEMU monitor")
        return "none"
    if sys.stdout.isatty():
        print("qemu: VGA screen in this terminal; Esc 2 opens the QEMU monitor (type quit)")
        return "curses"
    print("qemu: stdout is not a terminal, so no display; step 01 writes only to the screen")
    return "none"


def exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def run(args):
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, exit_on_signal)
    accel = choose_accel()
    print(describe_accel(accel))
    display = display_for(args.console)
    if args.gdb:
        elf = args.elf or "kernel.elf"
        print(f"qemu: waiting for gdb: gdb -ex 'target remote :{args.gdb}' {elf}")
    with tempfile.TemporaryDirectory(prefix="ringzero-qemu-") as tmp:
        qmp = os.path.join(tmp, "qmp.sock")
        memory = memory_for(args.fit) if args.fit else args.memory
        if args.fit:
            print(f"qemu: -m {memory}, to fit {' and '.join(map(os.path.basename, args.fit))}")
        argv = build_argv(args.iso, memory=memory, accel=accel, smp=args.smp,
                          display=display,
                          serial="mon:stdio" if args.console == "serial" else "vc",
                          monitor="none" if args.console == "serial" else "vc",
                          qmp_socket=qmp, gdb_port=args.gdb, extra_args=args.extra)
        qemu = subprocess.Popen(argv)
        watcher = ShutdownWatcher(qmp, qemu)
        watcher.start()
        try:
            status = wait_ignoring_ctrl_c(qemu)
        finally:
            # Killed ourselves (SIGTERM, SIGHUP): QEMU must not run on without a terminal.
            if qemu.poll() is None:
                qemu.kill()
                qemu.wait()
        watcher.join(timeout=1.0)
    message = describe_exit(status, watcher.reason)
    if message:
        print(f"qemu: {message}")
    return status


def wait_ignoring_ctrl_c(process):
    # Ctrl-C reaches QEMU too (same terminal); it decides, and we report what it did.
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


def cpu_count(text):
    """--smp's value: a positive number, or "host", the cores this process may run on."""
    if text == "host":
        return len(os.sched_getaffinity(0))
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of CPUs or host, not {text!r}")
    return int(text)


def parse_args(argv):
    # Everything after "--" goes to QEMU untouched; argparse would mistake it for our options.
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(prog="qemu.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("gdb-port", help="print this user's default gdb port")
    runner = commands.add_parser("run", help="boot an ISO")
    runner.add_argument("iso")
    runner.add_argument("--console", choices=("vga", "serial"), default="serial")
    size = runner.add_mutually_exclusive_group()
    size.add_argument("--memory", default="256M")
    size.add_argument("--fit", nargs="+", metavar="FILE",
                      help="size the memory for these Multiboot2 modules (see memory_for)")
    runner.add_argument("--smp", type=cpu_count, default=1,
                        help="virtual CPUs: a number, or host for one per host core")
    runner.add_argument("--gdb", type=int, metavar="PORT", help="wait for gdb on PORT")
    runner.add_argument("--elf", help="the kernel ELF, for the gdb hint")
    args = parser.parse_args(argv)
    args.extra = extra
    return args


def main(argv):
    # Our lines must reach a pipe (make, CI logs) before QEMU's own output, not after it.
    sys.stdout.reconfigure(line_buffering=True)
    args = parse_args(argv)
    if args.command == "gdb-port":
        print(default_gdb_port())
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
