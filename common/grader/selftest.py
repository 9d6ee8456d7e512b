#!/usr/bin/python3
"""Self-test of the grading library; needs QEMU and xorriso but no kernel.

Instead of a kernel it boots tiny hand-assembled boot sectors that talk on COM1, write to the
VGA screen, panic through isa-debug-exit, reset the machine or hang, and checks that gradelib
judges each case right: a timeout, an unexpected exit or a reset fails a test, and no QEMU
outlives its test or a grader killed by SIGTERM, Ctrl-C or SIGKILL. It also checks the printf
model of the step 02 tests against the C library's snprintf.

    selftest.py            run every check; the last line is `N passed, N failed`
"""
import ctypes
import importlib.util
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import gradelib
from gradelib import qemu

COM1 = 0x3F8
SELFTESTS = []


def selftest(fn):
    SELFTESTS.append(fn)
    return fn


# ---------------------------------------------------------------------------------------------
# Boot sectors: 16-bit real-mode machine code, assembled by hand.

class BootSector:
    """A program the BIOS loads from an El Torito CD at 0x7C00 and runs in real mode."""

    def __init__(self):
        self.code = bytearray()

    def serial(self, text):
        self.code += b"\xba" + COM1.to_bytes(2, "little")  # mov dx, COM1
        for byte in text.encode():
            self.code += bytes([0xB0, byte, 0xEE])  # mov al, byte; out dx, al
        return self

    def screen(self, text, row):
        self.code += b"\xb8\x00\xb8\x8e\xc0"  # mov ax, 0xB800; mov es, ax
        for column, byte in enumerate(text.encode()):
            offset = (row * 80 + column) * 2
            cell = 0x0700 | byte  # light grey on black
            # mov word [es:offset], cell
            self.code += b"\x26\xc7\x06" + offset.to_bytes(2, "little") + cell.to_bytes(2, "little")
        return self

    def panic_exit(self):
        self.code += b"\xb0\x01\xe6\xf4"  # mov al, 1; out 0xF4, al: QEMU exits with status 3
        return self

    def reset(self):
        self.code += b"\xb0\xfe\xe6\x64"  # mov al, 0xFE; out 0x64, al: keyboard controller reset
        return self

    def halt(self):
        self.code += b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp back to hlt
        return self

    def echo_forever(self):
        """Send back every byte COM1 receives."""
        self.code += (b"\xba\xfd\x03\xec\xa8\x01\x74\xf8"  # wait until LSR says data ready
                      b"\xba\xf8\x03\xec\xee\xeb\xf1")  # in al, dx; out dx, al; jmp wait
        return self

    def iso(self, folder):
        """Write a bootable ISO holding this program; return the folder holding it."""
        folder.mkdir(parents=True)
        (folder / "boot.img").write_bytes(bytes(self.code).ljust(2048, b"\0"))
        subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(folder / "ringzero.iso"),
                        "-b", "boot.img", "-no-emul-boot", "-boot-load-size", "4", str(folder)],
                       check=True, capture_output=True)
        return folder


PROGRAMS = {
    "talker": BootSector().serial("hello\r\nready\r\n").halt(),
    "panicker": BootSector().serial("booting\r\nPANIC: boom\r\n").panic_exit().halt(),
    "resetter": BootSector().serial("hello\r\n").reset().halt(),
    "echoer": BootSector().serial("ready\r\n").echo_forever(),
    "painter": BootSector().screen("ringzero selftest".ljust(80), row=3)
                           .serial("painted\r\n").halt(),
}


def make_runs(root):
    """One gradelib.Run per program, as if each were a built kernel."""
    return {name: gradelib.Run("selftest", program.iso(root / name), timeout_scale=1.0)
            for name, program in PROGRAMS.items()}


def grade(run, body, timeout=30.0):
    """Run body as a gradelib test and return its Result."""
    return gradelib.run_test(run, gradelib.Test(body, 1, body.__name__, timeout, "00"))


def process_gone(pid):
    """True once pid has exited (a zombie nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def wait_gone(pid, seconds=10.0):
    """True if pid exits within seconds; if it does not, kill it so no QEMU is left behind."""
    until = time.monotonic() + seconds
    while not process_gone(pid) and time.monotonic() < until:
        time.sleep(0.05)
    if process_gone(pid):
        return True
    os.kill(pid, signal.SIGKILL)
    return False


def require(condition, message):
    if not condition:
        raise AssertionError(message)


def require_failure(result, *words):
    require(not result.passed, "the test passed but should have failed")
    for word in words:
        require(word in result.reason, f"reason {result.reason!r} does not mention {word!r}")


# ---------------------------------------------------------------------------------------------
# Checks with QEMU

@selftest
def a_passing_test_passes(runs):
    def body(m):
        m.boot()
        m.expect(r"^hello$")
        m.expect(r"^ready$")
        require(m.lines() == ["hello", "ready"], f"lines() gave {m.lines()}")
    result = grade(runs["talker"], body)
    require(result.passed, f"failed: {result.reason}")


@selftest
def a_timeout_fails_and_saves_the_log(runs):
    def body(m):
        m.boot()
        m.expect(r"^never$", timeout=1)
    result = grade(runs["talker"], body)
    require_failure(result, "timed out", "never", "'ready'")
    log = result.log_path.read_text()
    require("hello\nready" in log and result.reason in log, "the log lacks the output or reason")


@selftest
def the_test_deadline_fails(runs):
    def body(m):
        m.boot()
        m.expect(r"^never$")
    started = time.monotonic()
    result = grade(runs["talker"], body, timeout=1.5)
    require_failure(result, "timed out")
    require(time.monotonic() - started < 10, "the test ran far past its deadline")


@selftest
def an_unexpected_panic_fails(runs):
    def body(m):
        m.boot()
        m.expect(r"^ready$")
    require_failure(grade(runs["panicker"], body), "panicked", "PANIC: boom")


@selftest
def an_expected_panic_passes(runs):
    def body(m):
        m.boot()
        m.expect(r"^PANIC: boom$")
        m.expect_exit(3)
    result = grade(runs["panicker"], body)
    require(result.passed, f"failed: {result.reason}")


@selftest
def a_panic_after_the_last_expect_fails(runs):
    def body(m):
        m.boot()
        m.expect(r"^booting$")
    require_failure(grade(runs["panicker"], body), "exited unexpectedly", "panicked")


@selftest
def a_reset_fails(runs):
    def body(m):
        m.boot()
        m.expect(r"^ready$")
    require_failure(grade(runs["resetter"], body), "reset")


@selftest
def the_wrong_exit_status_fails(runs):
    def body(m):
        m.boot()
        m.expect_exit(3)
    require_failure(grade(runs["resetter"], body), "expected QEMU exit status 3", "reset")


@selftest
def typed_text_reaches_the_serial_port(runs):
    def body(m):
        m.boot(serial_input=True)
        m.expect(r"^ready$")
        m.send("typed by the grader\n")
        m.expect(r"^typed by the grader$")
    result = grade(runs["echoer"], body)
    require(result.passed, f"failed: {result.reason}")


@selftest
def a_python_error_in_a_test_fails(runs):
    def body(m):
        m.boot()
        {}["missing"]
    require_failure(grade(runs["talker"], body), "grader error", "KeyError")


@selftest
def the_screen_and_monitor_are_read(runs):
    def body(m):
        m.boot()
        m.expect_screen(r"ringzero \w+")
        m.expect(r"^painted$")
        require(m.read_vga()[3] == "ringzero selftest", f"row 3 is {m.read_vga()[3]!r}")
        registers = m.registers()
        require("EIP" in registers and registers.get("HLT") == 1, "info registers: not halted")
        m.expect_running(0.3)
    result = grade(runs["painter"], body)
    require(result.passed, f"failed: {result.reason}")


@selftest
def qemu_is_gone_after_each_test(runs):
    pids = []

    def body(m):
        m.boot()
        pids.append(m.process.pid)
        m.boot()
        pids.append(m.process.pid)
        m.expect(r"^ready$")
    grade(runs["talker"], body)
    gone = [wait_gone(pid, 0.5) for pid in pids]
    require(len(pids) == 2 and all(gone), f"QEMU {pids} outlived the test")


@selftest
def two_machines_run_at_once(runs):
    deadline = time.monotonic() + 30
    talker = gradelib.Machine(runs["talker"], deadline)
    painter = gradelib.Machine(runs["painter"], deadline)
    try:
        talker.boot()
        painter.boot()
        painter.expect(r"^painted$")
        talker.expect(r"^ready$")
        require(talker.qmp_path != painter.qmp_path, "both machines share a QMP socket")
    finally:
        talker.kill()
        painter.kill()


def hold_machine(iso_folder):
    """The child side of the signal checks: a grader stuck waiting on a running QEMU."""
    gradelib.install_cleanup_handlers()
    machine = gradelib.Machine(gradelib.Run("selftest", iso_folder), time.monotonic() + 120)
    machine.boot()
    print(machine.process.pid, flush=True)
    machine.expect(r"^never$")


def kill_grader_with(runs, signum):
    """Start a grader holding a QEMU, send it signum; return (grader status, QEMU pid)."""
    # The child's temp dir goes under ours, so it is removed even when SIGKILL stops the child.
    environment = dict(os.environ, TMPDIR=str(runs["talker"].build_dir.parent))
    child = subprocess.Popen([sys.executable, __file__, "--hold", str(runs["talker"].build_dir)],
                             stdout=subprocess.PIPE, text=True, env=environment)
    qemu_pid = int(child.stdout.readline())
    time.sleep(0.3)
    child.send_signal(signum)
    status = child.wait(timeout=20)
    return status, qemu_pid


@selftest
def sigterm_kills_qemu(runs):
    status, pid = kill_grader_with(runs, signal.SIGTERM)
    require(status == 128 + signal.SIGTERM, f"the grader exited with {status}")
    require(wait_gone(pid, 1.0), f"QEMU {pid} outlived the grader")


@selftest
def ctrl_c_kills_qemu(runs):
    status, pid = kill_grader_with(runs, signal.SIGINT)
    require(status == 128 + signal.SIGINT, f"the grader exited with {status}")
    require(wait_gone(pid, 1.0), f"QEMU {pid} outlived the grader")


@selftest
def sigkill_of_the_grader_kills_qemu(runs):
    _, pid = kill_grader_with(runs, signal.SIGKILL)
    require(wait_gone(pid), f"QEMU {pid} outlived the grader")


# ---------------------------------------------------------------------------------------------
# Checks without QEMU

@selftest
def qemu_argv_and_exit_words(runs):
    argv = qemu.build_argv("k.iso", accel="tcg", gdb_port=4321)
    for needed in ("-no-reboot", "isa-debug-exit,iobase=0xf4,iosize=0x04", "tcp::4321", "-S"):
        require(needed in argv, f"{needed} missing from {argv}")
    require("panicked" in qemu.describe_exit(3), "status 3 is not a panic")
    require("triple fault" in qemu.describe_exit(0, "guest-reset"), "status 0 is not a reset")
    require(qemu.describe_exit(0, "host-qmp-quit") is None, "quitting is reported as a problem")
    require(1234 <= qemu.default_gdb_port() < 2234, "gdb port out of range")


def load_step_tests(name):
    path = gradelib.TESTS_DIR / name
    spec = importlib.util.spec_from_file_location(f"selftest_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@selftest
def printf_model_agrees_with_the_c_library(runs):
    serial = load_step_tests("02_serial.py")
    snprintf = ctypes.CDLL(None).snprintf
    buffer = ctypes.create_string_buffer(256)
    disagreements = []
    for fmt, c_arg, value in printf_cases():
        snprintf(buffer, 256, fmt.encode(), c_arg)
        expected = buffer.value.decode()
        got = serial.c_format(fmt, (value,))
        if got != expected:
            disagreements.append(f"{fmt!r} % {value!r}: C [{expected}], model [{got}]")
    require(not disagreements, f"{len(disagreements)} disagree: " + "; ".join(disagreements[:4]))


def printf_cases():
    """(format, ctypes argument, Python value) over flags, widths, precisions and lengths.

    %p is left out: the kernel's convention (0x and 16 digits) is not glibc's.
    """
    integers = (0, 1, -1, 42, -42, 255, 2**31 - 1, -2**31, 2**32 - 1, 2**63 - 1, -2**63)
    lengths = {"": ctypes.c_int, "l": ctypes.c_long, "ll": ctypes.c_longlong,
               "z": ctypes.c_size_t}
    shapes = ("", "5", "-5", "05", "-05", ".0", ".3", "8.3", "08.3", "-8.3")
    for flag, shape, length, conversion in itertools.product(
            ("", "+", " ", "#"), shapes, lengths, "diuxXo"):
        if flag == "#" and conversion in "diu":
            continue  # undefined in C
        for value in integers:
            yield f"%{flag}{shape}{length}{conversion}", lengths[length](value), value
    for shape, text in itertools.product(("", "8", "-8", ".2", "-6.2"), ("", "pad", "ring zero")):
        yield f"[%{shape}s]", ctypes.c_char_p(text.encode()), text
    for shape, code in itertools.product(("", "3", "-3"), (ord("r"), ord("0"))):
        yield f"%{shape}c|", ctypes.c_int(code), code


@selftest
def printf_lines_are_parsed_and_judged(runs):
    serial = load_step_tests("02_serial.py")
    require(serial.parse_arguments("((void *)0x1000)") == (0x1000,), "a cast was not understood")
    require(serial.parse_arguments("(-9223372036854775807L - 1)") == (-2**63,), "L suffix")
    require(serial.parse_arguments("('r', 'z', 4294967295U)") == ("r", "z", 2**32 - 1), "chars")
    require(serial.parse_arguments('("", "x")') == ("", "x"), "strings")
    require(serial.printf_case_problem('printf "%u" (-1) -> [4294967295]') is None, "right case")
    require(serial.printf_case_problem('printf "%5d|" (42) -> [42   |]'), "wrong case passed")
    require(serial.printf_case_problem('printf "%c%c" (\'a\', \'b\') -> [ab]') is None, "chars")
    require(serial.printf_case_problem(
        'printf "%p" ((void *)0x1000) -> [0x0000000000001000]') is None, "%p convention")


@selftest
def fault_addresses_are_canonical_and_unmapped(runs):
    serial = load_step_tests("02_serial.py")
    for _ in range(1000):
        address = serial.random_unmapped_address()
        require(512 << 30 <= address < 1 << 47, f"{address:#x} is out of range")
        require(address % 4096, f"{address:#x} is page-aligned")


@selftest
def step_tests_load_in_order(runs):
    steps = [t.step for t in gradelib.load_tests(99)]
    require(steps == sorted(steps) and steps[0] == "01", f"tests load out of order: {steps}")
    require(all(t.step <= "02" for t in gradelib.load_tests(2)), "load_tests(2) loads step 03")


# ---------------------------------------------------------------------------------------------

def run_selftests():
    gradelib.install_cleanup_handlers()
    root = Path(tempfile.mkdtemp(prefix="ringzero-selftest-"))
    gradelib._temp_dirs.append(root)
    print(qemu.describe_accel(qemu.choose_accel()), flush=True)
    runs = make_runs(root)
    passed = failed = 0
    for check in SELFTESTS:
        started = time.monotonic()
        try:
            check(runs)
            verdict, why = "PASS", ""
            passed += 1
        except Exception as error:
            verdict, why = "FAIL", f"  {type(error).__name__}: {error}"
            failed += 1
            traceback.print_exc(file=sys.stdout)
        name = check.__name__.replace("_", " ")
        print(f"  {verdict}  {name}  {time.monotonic() - started:.1f}s{why}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--hold"]:
        hold_machine(Path(sys.argv[2]))
    else:
        sys.exit(run_selftests())
