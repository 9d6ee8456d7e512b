"""gradelib: boot the kernel in QEMU and check what it did.

A test is a short function that gets a Machine and talks to it; register it with @test:

    @test(5, "serial banner")
    def serial_banner(m):
        m.boot()
        m.expect(r"^ringzero \\S+: booting$")
        m.expect(r"^ready$")

Each test runs in a fresh headless QEMU (no display, serial through a pipe, QMP on a private
unix socket, isa-debug-exit, -no-reboot). A test passes only if it returns without raising and
QEMU did nothing unexpected: a panic it did not wait for with expect_exit(3), a reset (triple
fault), a crash or a timeout fails it. Fail with fail(message) or check(condition, message);
a plain assert works too.

What a test can do with its Machine m:
    m.boot(cmdline=None, memory=None, cpu=None, extra_args=(), serial_input=False, iso=None)
    m.expect(regex, timeout=None) -> match     wait for a serial line; consumes output
    m.send(text)                               type into COM1 (needs serial_input=True)
    m.lines(), m.output                        all serial lines / text of this boot
    m.monitor("info mem"), m.registers(), m.status(), m.qmp(command, **args)
    m.read_vga() -> 25 lines, m.expect_screen(regex, timeout=None) -> match
    m.wait_exit(timeout=None) -> status, m.expect_exit(3), m.expect_running(seconds)
    m.run.symbolize(address) -> (function, offset) from nm on the step's kernel.elf

Timeouts are in seconds on KVM and are multiplied by the run's timeout scale (3 under TCG by
default, --timeout-scale / TIMEOUT_SCALE to change it). A failing test's serial log and QEMU's
stderr are saved to build/<step>/grade-logs/<NN>_<test>.log.
"""
import atexit
import bisect
import codecs
import ctypes
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import qemu  # noqa: E402  (common/qemu.py, found through the path set just above)

REPO = Path(__file__).resolve().parents[2]
TESTS_DIR = Path(__file__).resolve().parent / "tests"
DEFAULT_TIMEOUT = 20.0
TCG_TIMEOUT_SCALE = 3.0
DEFAULT_MEMORY = "256M"
FINISH_GRACE = 0.2

TESTS = []


@dataclass
class Test:
    fn: object
    points: int
    title: str
    timeout: float
    step: str = ""  # "02", from the name of the module that defines the test
    exercise: str = ""  # "2.3" for the optional check of a book exercise

    @property
    def name(self):
        return self.fn.__name__

    @property
    def label(self):
        return f"{self.step} {self.title}"


def test(points, title, timeout=DEFAULT_TIMEOUT):
    """Register a test worth `points`; `timeout` bounds the whole test (seconds, scaled)."""
    def register(fn):
        TESTS.append(Test(fn, points, title, timeout))
        return fn
    return register


def exercise(number, title, timeout=DEFAULT_TIMEOUT):
    """Register the optional check of the book's exercise `number` ("2.3"). It runs only when
    asked for by name (`make step 2 grade T=exercise-2.3`), is reported apart, and is never
    part of a score: the tree does not hold the exercises' solutions."""
    def register(fn):
        TESTS.append(Test(fn, 0, f"exercise {number}: {title}", timeout, exercise=number))
        return fn
    return register


class TestFailure(Exception):
    """The kernel did not do what the test expects; the message says what went wrong."""


def fail(message):
    raise TestFailure(message)


def check(condition, message):
    if not condition:
        fail(message)


# ---------------------------------------------------------------------------------------------
# Cleanup: no QEMU may outlive its test or the grader.

_live_machines = set()
_temp_dirs = []


def kill_all_machines():
    for machine in list(_live_machines):
        machine.kill()


def _remove_temp_dirs():
    for path in _temp_dirs:
        shutil.rmtree(path, ignore_errors=True)


def _on_signal(signum, frame):
    # Only send SIGKILL here: waiting could deadlock with a wait() this signal interrupted.
    # The test's finally block and atexit reap the processes on the way out.
    for machine in list(_live_machines):
        machine.send_kill()
    raise SystemExit(128 + signum)


def install_cleanup_handlers():
    """Kill every QEMU on exit, Ctrl-C and SIGTERM. Call once from the grader's main."""
    atexit.register(_remove_temp_dirs)
    atexit.register(kill_all_machines)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)


def _die_with_parent():
    # Runs in the child before exec: if the grader is killed with SIGKILL (no handler runs),
    # the kernel still sends QEMU SIGKILL. PR_SET_PDEATHSIG is 1.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# A grading run: what all tests share.

class Run:
    """The kernel under test, a private temp dir, the accelerator and the timeout scale."""

    def __init__(self, step, build_dir, accel=None, timeout_scale=None):
        self.step = step
        self.build_dir = Path(build_dir)
        self.elf = self.build_dir / "kernel.elf"
        self.iso = self.build_dir / "ringzero.iso"
        self.log_dir = self.build_dir / "grade-logs"
        self.accel = accel or qemu.choose_accel()
        self.timeout_scale = timeout_scale or default_timeout_scale(self.accel)
        self.tmp = Path(tempfile.mkdtemp(prefix="ringzero-grade-"))
        _temp_dirs.append(self.tmp)
        self._isos = {}
        self._modules = None
        self._symbols = None
        self._serial = 0

    def unique_path(self, stem):
        """A fresh path in the run's temp dir (sockets, ISOs, screen dumps)."""
        self._serial += 1
        return self.tmp / f"{self._serial}-{stem}"

    def iso_for(self, cmdline, modules=None):
        """An ISO of the kernel whose GRUB entry passes cmdline; built once per cmdline.

        The ISO carries the step's own ISO's Multiboot2 modules (step 08's model and
        tokenizer), or the given module files instead: each is loaded under its file name.
        """
        key = (cmdline, tuple(map(str, modules or ())))
        if key not in self._isos:
            modules = self.default_modules() if modules is None else modules
            out = self.unique_path("cmdline.iso")
            result = subprocess.run(["sh", str(REPO / "common/mkiso.sh"), str(self.elf),
                                     str(out), cmdline, *map(str, modules)],
                                    capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                fail(f"mkiso.sh could not build an ISO for cmdline {cmdline!r}: "
                     f"{result.stderr.strip()}")
            self._isos[key] = out
        return self._isos[key]

    def default_modules(self):
        """The module files of the step's ISO, copied out of it (none before step 08)."""
        if self._modules is None:
            self._modules = extract_modules(self.iso, self.tmp / "modules")
        return self._modules

    def symbolize(self, address):
        """(function, offset) of the kernel function containing address, or None."""
        if self._symbols is None:
            self._symbols = read_function_symbols(self.elf)
        starts = [start for start, _, _ in self._symbols]
        i = bisect.bisect_right(starts, address) - 1
        if i < 0:
            return None
        start, size, name = self._symbols[i]
        if size and address >= start + size:
            return None
        return name, address - start


def extract_modules(iso, folder):
    """Copy the Multiboot2 modules named in iso's grub.cfg into folder; return their paths.

    The grader reads them from the ISO rather than from the build's variables, so a test
    always sees the files the kernel was given.
    """
    def extract(name, out):
        result = subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso),
                                 "-extract", f"/boot/{name}", str(out)],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            fail(f"could not read /boot/{name} from {iso}: {result.stderr.strip()[-300:]}")
    folder.mkdir(parents=True, exist_ok=True)
    extract("grub/grub.cfg", folder / "grub.cfg")
    names = re.findall(r"^\s*module2\s+/boot/(\S+)", (folder / "grub.cfg").read_text(),
                       re.MULTILINE)
    for name in names:
        extract(name, folder / name)
    return [folder / name for name in names]


def default_timeout_scale(accel):
    from_env = os.environ.get("TIMEOUT_SCALE")
    if from_env:
        return float(from_env)
    return TCG_TIMEOUT_SCALE if accel == "tcg" else 1.0


def read_function_symbols(elf):
    """[(start, size or 0, name)] of the ELF's text symbols, sorted by address (nm -n -S)."""
    result = subprocess.run(["nm", "-n", "-S", str(elf)], capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"nm {elf} failed: {result.stderr.strip()}")
    symbols = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tT":
            symbols.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
        elif len(fields) == 3 and fields[1] in "tT":
            symbols.append((int(fields[0], 16), 0, fields[2]))
    return symbols


# ---------------------------------------------------------------------------------------------
# One virtual machine, as a test sees it.

class Machine:
    """A headless QEMU running the kernel; the argument every test function receives."""

    def __init__(self, run, deadline):
        self.run = run
        self.deadline = deadline
        self.process = None
        self.boots = []  # (argv, stderr path, serial text) of earlier boots, for the log
        self.events = []  # QMP events seen, e.g. {"event": "SHUTDOWN", ...}
        self.grader_error = ""  # the traceback when the test itself crashed

    # -- starting and stopping ----------------------------------------------------------------

    def boot(self, cmdline=None, memory=None, cpu=None, extra_args=(), serial_input=False,
             iso=None):
        """Start QEMU on the step's ISO (or, with a cmdline, a private ISO passing it; or on
        the given iso, from run.iso_for).

        memory is QEMU's -m ("128M", "2G"), cpu its -cpu model ("qemu32"). serial_input
        connects COM1's input, so the test can type with send(). Booting again in the same
        test stops the previous QEMU first.
        """
        self.kill()
        if self.process:
            self.boots.append((self.argv, self.stderr_path, self.output))
            self.process = None
        if iso is None:
            iso = self.run.iso_for(cmdline) if cmdline is not None else self.run.iso
        self.qmp_path = self.run.unique_path("qmp.sock")
        self.stderr_path = self.run.unique_path("qemu-stderr.txt")
        self.argv = qemu.build_argv(iso, memory=memory or DEFAULT_MEMORY, accel=self.run.accel,
                                    cpu=cpu, serial="stdio", qmp_socket=self.qmp_path,
                                    extra_args=extra_args)
        with open(self.stderr_path, "wb") as stderr:
            stdin = subprocess.PIPE if serial_input else subprocess.DEVNULL
            self.process = subprocess.Popen(self.argv, stdin=stdin,
                                            stdout=subprocess.PIPE, stderr=stderr,
                                            start_new_session=True,
                                            preexec_fn=_die_with_parent)
        _live_machines.add(self)
        self.output = ""
        self.consumed = 0
        self.exit_status = None
        self.exit_expected = False
        self._serial_fd = self.process.stdout.fileno()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._qmp = None
        self._qmp_input = b""

    def kill(self):
        """Stop QEMU now and reap it. Safe to call twice."""
        if not self.process:
            return
        self.send_kill()
        self.process.wait()
        self.process.stdout.close()
        if self.process.stdin:
            self.process.stdin.close()
        if self._qmp:
            self._qmp.close()
            self._qmp = None
        _live_machines.discard(self)

    def send_kill(self):
        """SIGKILL to QEMU's process group, if it is still running."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- serial output ------------------------------------------------------------------------

    def expect(self, regex, timeout=None):
        """Wait for a serial line matching regex (re.MULTILINE) and return the match.

        Only complete lines are searched, from where the previous expect stopped; the output
        is consumed through the end of the matching line. timeout defaults to the rest of the
        test's time.
        """
        pattern = re.compile(regex, re.MULTILINE)

        def find():
            end = self.output.rfind("\n", self.consumed)
            match = pattern.search(self.output, self.consumed, max(end, self.consumed))
            if end >= 0 and match:
                self.consumed = self.output.find("\n", match.end()) + 1
                return match
            return None
        return self._wait_for(find, f"serial output matching /{regex}/", timeout)

    def send(self, text):
        """Type text into COM1 (boot with serial_input=True)."""
        self._require_running(f"typing {text!r}")
        check(self.process.stdin, "grader error: send() needs boot(serial_input=True)")
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def lines(self):
        """Every complete serial line received so far, from the start of this boot."""
        self._poll(0)
        return self.output[:self.output.rfind("\n") + 1].splitlines()

    # -- the QEMU monitor ---------------------------------------------------------------------

    def qmp(self, command, **arguments):
        """Run a QMP command and return its "return" value."""
        self._require_running(f"QMP command {command}")
        if not self._qmp:
            self._connect_qmp()
        reply = self._qmp_call(command, arguments)
        if "error" in reply:
            fail(f"QMP command {command} failed: {reply['error'].get('desc')}")
        return reply["return"]

    def monitor(self, command):
        """Run a human monitor command ("info registers", "info mem", "xp /4gx 0x1000")."""
        return self.qmp("human-monitor-command", **{"command-line": command}).replace("\r", "")

    def registers(self):
        """CPU 0's registers from "info registers", as {"RIP": int, "CR0": int, ...}.

        Segment registers give their selector ("CS") and the descriptor flags QEMU shows
        ("CS.flags", where bit 21 is the L bit); "HLT" is 1 when the CPU is halted.
        """
        text = self.monitor("info registers")
        registers = {name: int(value, 16)
                     for name, value in re.findall(r"\b([A-Z][A-Z0-9]*) ?=([0-9a-f]+)\b", text)}
        for name, flags in re.findall(r"^([A-Z]S) ?=[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ ([0-9a-f]+)",
                                      text, re.MULTILINE):
            registers[f"{name}.flags"] = int(flags, 16)
        return registers

    def status(self):
        """The VM's run state: "running", "paused", "shutdown", "internal-error", ..."""
        return self.qmp("query-status")["status"]

    def read_vga(self):
        """The 25 lines of the VGA text screen (80 columns, trailing blanks stripped)."""
        dump = self.run.unique_path("vga.bin")
        error = self.monitor(f'pmemsave 0xb8000 4000 "{dump}"')
        check(dump.exists(), f"could not read VGA memory: {error.strip()}")
        # Blank cells hold NUL before anything was written there; show them as spaces.
        characters = dump.read_bytes()[0::2].replace(b"\0", b" ").decode("cp437")
        return [characters[row * 80:(row + 1) * 80].rstrip() for row in range(25)]

    def expect_screen(self, regex, timeout=None):
        """Wait until a line of the VGA text screen matches regex; return the match."""
        pattern = re.compile(regex)
        screen = []

        def find():
            screen[:] = self.read_vga()
            return next(filter(None, map(pattern.search, screen)), None)
        return self._wait_for(find, f"a screen line matching /{regex}/", timeout,
                              interval=0.1, context=lambda: screen_text(screen))

    # -- how it ends --------------------------------------------------------------------------

    def wait_exit(self, timeout=None):
        """Wait for QEMU to exit and return its status (an expected exit, not a failure)."""
        self.exit_expected = True
        self._wait_for(lambda: self.exit_status, "QEMU to exit", timeout)
        return self.exit_status

    def expect_exit(self, status, timeout=None):
        """Wait for QEMU to exit and require the given status (3: the kernel panicked)."""
        actual = self.wait_exit(timeout)
        if actual != status:
            fail(f"expected QEMU exit status {status}, but {self.describe_exit()}")

    def expect_running(self, seconds):
        """Require the machine to keep running for `seconds` (not scaled): no exit, no reset."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self._require_running(f"the {seconds:g}s the machine should have kept running")
            self._poll(min(0.1, until - time.monotonic()))
        state = self.status()
        check(state == "running", f"the VM is {state!r}, not running")

    def finish(self):
        """Called after the test function: an exit nobody waited for fails the test.

        A short grace period catches a kernel that dies right after its last expected line.
        """
        if not self.process:
            return
        until = time.monotonic() + FINISH_GRACE
        while self.exit_status is None and time.monotonic() < until:
            self._poll(until - time.monotonic())
        if self.exit_status is not None and not self.exit_expected:
            fail(f"QEMU exited unexpectedly: {self.describe_exit()}")
        resets = [e for e in self.events if e.get("event") == "RESET"]
        check(not resets, "the machine reset during the test")

    def describe_exit(self):
        """Why QEMU exited, in words, with the kernel's last words when it panicked."""
        reasons = [e["data"].get("reason") for e in self.events if e.get("event") == "SHUTDOWN"]
        words = qemu.describe_exit(self.exit_status, reasons[-1] if reasons else None)
        words = words or f"QEMU exited with status {self.exit_status}"
        if self.exit_status in (qemu.PANIC_STATUS, qemu.LAB_MISSING_STATUS):
            last_words = re.findall(r"^(?:PANIC|EXCEPTION|lab \d\d: ).*$", self.output,
                                    re.MULTILINE)
            if last_words:
                words += f": {last_words[0].strip()}"
        elif self.exit_status not in (0, None):
            stderr = self.stderr_path.read_text(errors="replace").strip().splitlines()
            if stderr:
                words += f": {stderr[-1]}"
        return words

    # -- plumbing -----------------------------------------------------------------------------

    def _wait_for(self, find, what, timeout, interval=0.25, context=None):
        """Call find() until it returns something other than None, QEMU exits or time is up."""
        if not self.process:
            fail(f"waiting for {what} before boot()")
        started = time.monotonic()
        deadline = self.deadline
        if timeout is not None:
            deadline = min(deadline, started + timeout * self.run.timeout_scale)
        while True:
            found = find()
            if found is not None:
                return found
            if self.exit_status is not None:
                fail(f"QEMU exited while waiting for {what}: {self.describe_exit()}")
            left = deadline - time.monotonic()
            if left <= 0:
                waited = time.monotonic() - started
                fail(f"timed out after {waited:.1f}s waiting for {what}"
                     f"{(context or self._last_output)()}")
            self._poll(min(left, interval))

    def _last_output(self):
        lines = self.output.strip().splitlines()
        return f"; last serial line: {lines[-1]!r}" if lines else "; no serial output at all"

    def _require_running(self, what):
        self._poll(0)
        if self.exit_status is not None:
            fail(f"QEMU exited before {what}: {self.describe_exit()}")

    def _poll(self, timeout):
        """Wait up to timeout for serial output or QMP input, and take in whatever came."""
        sources = [fd for fd in (self._serial_fd, self._qmp and self._qmp.fileno())
                   if fd is not None]
        if not sources:
            time.sleep(max(timeout, 0))
            return
        for fd in select.select(sources, [], [], max(timeout, 0))[0]:
            if fd == self._serial_fd:
                self._read_serial()
            else:
                self._read_qmp()

    def _read_serial(self):
        data = os.read(self._serial_fd, 65536)
        if data:
            self.output += self._decoder.decode(data).replace("\r", "")
            return
        # QEMU closed its stdout: it has exited and every byte of output is in.
        self._serial_fd = None
        try:
            self.exit_status = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("QEMU closed its serial output but did not exit")

    def _read_qmp(self):
        data = self._qmp.recv(65536)
        if not data:
            self._qmp.close()
            self._qmp = None
        self._qmp_input += data

    def _connect_qmp(self):
        self._qmp = qemu.connect_unix(str(self.qmp_path), self.process)
        self._require_running("the QMP connection")
        check(self._qmp is not None, "could not connect to QEMU's QMP socket")
        self._next_qmp_message("the QMP greeting")
        self._qmp_call("qmp_capabilities", {})

    def _qmp_call(self, command, arguments):
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self._qmp.sendall(json.dumps(request).encode() + b"\n")
        while True:
            reply = self._next_qmp_message(f"the reply to QMP command {command}")
            if "event" in reply:
                self.events.append(reply)
            else:
                return reply

    def _next_qmp_message(self, what):
        def find():
            line, newline, rest = self._qmp_input.partition(b"\n")
            if not newline:
                if self._qmp is None:
                    self._require_running(what)
                    fail(f"QEMU closed the QMP connection before {what}")
                return None
            self._qmp_input = rest
            return json.loads(line)
        return self._wait_for(find, what, None, interval=0.1)

    def write_log(self, path, test, reason):
        """Save everything a student needs to see why `test` failed."""
        boots = self.boots + ([(self.argv, self.stderr_path, self.output)] if self.process else [])
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as log:
            log.write(f"test: {test.label} ({test.name})\nresult: FAIL: {reason}\n")
            log.write(self.grader_error)
            for n, (argv, stderr_path, output) in enumerate(boots, 1):
                log.write(f"\n=== boot {n}: {' '.join(map(str, argv))}\n")
                log.write(f"--- serial output\n{output}")
                stderr = stderr_path.read_text(errors="replace")
                log.write(f"\n--- QEMU stderr\n{stderr}" if stderr else "\n--- QEMU stderr: none\n")
            if self.events:
                log.write("\n--- QMP events\n")
                log.writelines(json.dumps(event) + "\n" for event in self.events)


def screen_text(screen):
    shown = [line for line in screen if line.strip()]
    return "; the screen shows: " + " | ".join(shown) if shown else "; the screen is blank"


# ---------------------------------------------------------------------------------------------
# Loading and running tests.

@dataclass
class Result:
    test: Test
    passed: bool
    reason: str
    seconds: float
    log_path: Path = None

    @property
    def score(self):
        return self.test.points if self.passed else 0


def load_tests(up_to_step):
    """The tests of steps 01..up_to_step, in step order then definition order (with the
    exercises' optional checks, which grade.py keeps apart).

    Tests live in common/grader/tests/NN_name.py and belong to the step NN that introduces
    the subsystem they check; later steps run them again.
    """
    tests = []
    for path in sorted(TESTS_DIR.glob("[0-9][0-9]_*.py")):
        step = path.name[:2]
        if int(step) > up_to_step:
            continue
        spec = importlib.util.spec_from_file_location(f"ringzero_tests_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        first = len(TESTS)
        spec.loader.exec_module(module)
        for registered in TESTS[first:]:
            registered.step = step
            tests.append(registered)
    return tests


def is_exercise(test):
    return bool(test.exercise)


def run_test(run, test):
    """Run one test in a fresh machine; never raises for a failing kernel."""
    started = time.monotonic()
    machine = Machine(run, deadline=started + test.timeout * run.timeout_scale)
    reason = None
    try:
        test.fn(machine)
        machine.finish()
    except TestFailure as failure:
        reason = str(failure)
    except AssertionError as failure:
        reason = str(failure) or "assertion failed: " + traceback.format_exc().splitlines()[-3]
    except Exception as error:
        reason = f"grader error: {type(error).__name__}: {error}"
        machine.grader_error = traceback.format_exc()
    finally:
        machine.kill()
    seconds = time.monotonic() - started
    if reason is None:
        return Result(test, True, "", seconds)
    log_path = run.log_dir / f"{test.step}_{test.name}.log"
    machine.write_log(log_path, test, reason)
    return Result(test, False, reason, seconds, log_path)


def format_result(result, root=None):
    """The report lines of one test, e.g. '  PASS  02 serial banner (5/5)  0.8s'."""
    verdict = "PASS" if result.passed else "FAIL"
    line = (f"  {verdict}  {result.test.label} ({result.score}/{result.test.points})"
            f"  {result.seconds:.1f}s")
    if result.passed:
        return line
    log = result.log_path
    if root and log:
        log = os.path.relpath(log, root)
    return f"{line}  {result.reason}\n        log: {log}"
