"""lossy: Linux's own TCP/IP stack as the kernel's peer, through a wire that loses frames.

Namespace is a network namespace of the test's own with a TAP device; LossyRelay carries
frames between it and the e1000 (a nic.DgramCable), dropping, duplicating and reordering them
with seeded choices, so a run can be repeated.
"""
import collections
import contextlib
import ctypes
import fcntl
import json
import os
import random
import re
import select
import struct
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from frames import describe_frame, parse_ethernet
from gradelib import fail
from nic import DgramCable


CLONE_NEWNET = 0x40000000
ECHO_CLIENT = Path(__file__).resolve().parent / "echo_client.py"
HTTP_CROWD = Path(__file__).resolve().parent / "http_crowd.py"
# For Linux as the peer: the kernel offers neither SACK nor timestamps, so Linux cannot time
# a retransmitted segment and, under heavy loss, backs off exponentially on every lost one (to
# 2 minutes). Linux 6.15 and later can cap that at 1 s (older ones lack the knob: slower).
PEER_SYSCTLS = {"net.ipv4.tcp_rto_max_ms": "1000", "net.ipv4.tcp_retries2": "50"}
TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000


class Namespace:
    """A network namespace of this test's own: `ip netns add`, a TAP device with address/24.

    Use as a context manager: leaving it, even by an exception, kills whatever still runs in
    the namespace and deletes it. The name is unique, so graders can run side by side.
    """

    def __init__(self, address="10.0.2.2/24", tap="rz0"):
        self.name = f"ringzero-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.address, self.tap = address, tap
        self.created = False

    def __enter__(self):
        if os.geteuid() != 0:
            fail("this test needs root to create a network namespace (ip netns add); "
                 "run the grader as root")
        remove_orphaned_namespaces()
        self._ip("netns", "add", self.name)
        self.created = True
        # No IPv6 chatter (router solicitations, MLD) on the wire: the kernel speaks IPv4.
        self.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
        self.run_ip("link", "set", "lo", "up")
        self.run_ip("tuntap", "add", "dev", self.tap, "mode", "tap")
        self.run_ip("addr", "add", self.address, "dev", self.tap)
        self.run_ip("link", "set", self.tap, "up")
        return self

    def __exit__(self, *exception):
        self.delete()

    def delete(self):
        if not self.created:
            return
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
        self.created = False

    def _ip(self, *arguments):
        result = subprocess.run(["ip", *arguments], capture_output=True, text=True)
        if result.returncode != 0:
            fail(f"`ip {' '.join(arguments)}` failed: {result.stderr.strip()} "
                 "(the test needs network namespaces: root and the `ip` tool)")

    def run_ip(self, *arguments):
        self._ip("netns", "exec", self.name, "ip", *arguments)

    def command(self, argv):
        """argv run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def sysctl(self, key, value):
        """Set a sysctl inside the namespace, if this Linux has it."""
        if Path("/proc/sys", key.replace(".", "/")).exists():
            subprocess.run(self.command(["sysctl", "-q", "-w", f"{key}={value}"]),
                           capture_output=True)

    def tune_tcp_peer(self):
        for key, value in PEER_SYSCTLS.items():
            self.sysctl(key, value)

    def run_echo_client(self, host, port, size, seed, timeout, clients=1, stall=None):
        """echo_client.py inside the namespace; its result, as echo_client.run_clients."""
        arguments = [host, str(port), "--size", str(size), "--clients", str(clients),
                     "--seed", str(seed), "--timeout", f"{max(1.0, timeout - 2):.0f}"]
        return self._run_client(ECHO_CLIENT, arguments + (["--stall", str(stall)] if stall
                                                          else []), timeout, "echo client")

    def run_http_crowd(self, host, port, clients, requests, deadline, path="/health"):
        """http_crowd.py inside the namespace; its report, as http_crowd.run_crowd. deadline
        is the crowd's own; the program gets a little longer to report."""
        return self._run_client(HTTP_CROWD, [host, str(port), "--clients", str(clients),
                                             "--requests", str(requests), "--timeout",
                                             f"{deadline:g}", "--path", path],
                                deadline + 30, "HTTP crowd")

    def _run_client(self, program, arguments, timeout, name):
        """A client program run inside the namespace: the JSON object it prints."""
        argv = self.command([sys.executable, str(program), *arguments])
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"the {name} in the namespace did not finish in {timeout:.0f}s")
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError:
            fail(f"grader error: the {name} printed {done.stdout!r}, stderr "
                 f"{done.stderr.strip()[-300:]!r}")

    def open_tap(self):
        """A file descriptor for the namespace's TAP device, opened from inside it."""
        libc = ctypes.CDLL(None, use_errno=True)
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                fail(f"setns into {self.name} failed: {os.strerror(ctypes.get_errno())}")
            try:
                tap = os.open("/dev/net/tun", os.O_RDWR)
                request = struct.pack("16sH", self.tap.encode(), IFF_TAP | IFF_NO_PI)
                fcntl.ioctl(tap, TUNSETIFF, request)
            finally:
                libc.setns(home, CLONE_NEWNET)
        finally:
            os.close(home)
            os.close(target)
        return tap


def remove_orphaned_namespaces():
    """Delete the namespaces of graders that died without cleaning up (SIGKILL)."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name, pid in re.findall(r"^(ringzero-(\d+)-[0-9a-f]{8})\b", listing, re.MULTILINE):
        if not Path(f"/proc/{pid}").exists():
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


class LossyRelay(DgramCable):
    """Carries frames between QEMU's dgram socket and a TAP device, badly on purpose.

    In each direction it drops a fraction of frames, sends some twice and holds some back to
    send after the next one (reordering). The choices come from random.Random(seed) per
    direction, so a run can be repeated. A held frame goes out after at most hold_ms even if
    no frame follows. It starts as a plain cable; set_faults() makes it bad (for instance
    once the kernel has booted). nic_args() gives QEMU its end of the cable.
    """

    def __init__(self, m, tap_fd, seed, hold_ms=20, trace_length=4000):
        super().__init__(m, "relay")
        self.m, self.tap_fd = m, tap_fd
        self.hold = hold_ms / 1000
        self.faults = Faults()
        self.directions = {"to_kernel": Direction(random.Random(f"{seed}:to_kernel")),
                           "to_linux": Direction(random.Random(f"{seed}:to_linux"))}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error = None
        self.started = time.monotonic()
        # The latest frames, for the failure log: (time, direction, fate, first bytes).
        self.trace = collections.deque(maxlen=trace_length)

    def set_faults(self, loss=0.0, duplicate=0.0, reorder=0.0):
        self.faults = Faults(loss, duplicate, reorder)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exception):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.socket.close()
        os.close(self.tap_fd)

    def statistics(self):
        """{direction: {frames, dropped, duplicated, reordered}}"""
        return {name: vars(direction.counts) for name, direction in self.directions.items()}

    def write_trace(self, path):
        """The latest frames the relay carried, one line each, to path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as out:
            for when, name, fate, head in list(self.trace):
                frame = parse_ethernet(head)
                text = describe_frame(frame) if frame else head.hex()
                out.write(f"{when - self.started:9.3f} {name:9} {fate:10} {text}\n")

    def _send_to_kernel(self, frame):
        # QEMU's socket is gone once QEMU has exited; the test notices that itself.
        with contextlib.suppress(FileNotFoundError, ConnectionRefusedError, BlockingIOError):
            self.socket.sendto(frame, self.qemu_path)

    def _send_to_linux(self, frame):
        with contextlib.suppress(OSError):
            os.write(self.tap_fd, frame)

    def _run(self):
        try:
            self._loop()
        except Exception as error:  # the test reports it through self.error
            self.error = f"{type(error).__name__}: {error}"

    def _loop(self):
        sources = {self.socket.fileno(): ("to_linux", self._send_to_linux,
                                          lambda: self.socket.recv(65536)),
                   self.tap_fd: ("to_kernel", self._send_to_kernel,
                                 lambda: os.read(self.tap_fd, 65536))}
        while not self.stopping.is_set():
            ready = select.select(list(sources), [], [], 0.005)[0]
            now = time.monotonic()
            for fd in ready:
                name, send, read = sources[fd]
                frame = read()
                fate = self.directions[name].carry(frame, now, send, self.faults)
                self.trace.append((now, name, fate, frame[:80]))
            for name, send, _ in sources.values():
                self.directions[name].release_stale(now, self.hold, send)


@dataclass
class Faults:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0


@dataclass
class DirectionCounts:
    frames: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0


class Direction:
    """One direction of the relay: its random choices and at most one held-back frame."""

    def __init__(self, rng):
        self.rng = rng
        self.held = None  # (frame, copies, since)
        self.counts = DirectionCounts()

    def carry(self, frame, now, send, faults):
        """Drop, hold, or send the frame (twice if duplicated); returns what it did."""
        self.counts.frames += 1
        # Three draws per frame whatever the faults, so one seed gives one sequence of choices.
        lost, doubled, held = (self.rng.random() < p
                               for p in (faults.loss, faults.duplicate, faults.reorder))
        if lost:
            self.counts.dropped += 1
            return "dropped"
        copies = 2 if doubled else 1
        self.counts.duplicated += copies - 1
        if held and self.held is None:
            self.held = (frame, copies, now)
            self.counts.reordered += 1
            return "held" + "+dup" * (copies - 1)
        for _ in range(copies):
            send(frame)
        self.release(send)
        return "sent" + "+dup" * (copies - 1)

    def release(self, send):
        if self.held:
            frame, copies, _ = self.held
            self.held = None
            for _ in range(copies):
                send(frame)

    def release_stale(self, now, hold, send):
        if self.held and now - self.held[2] >= hold:
            self.release(send)
