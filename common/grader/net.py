"""net: what the network tests (steps 05 and later) need besides gradelib.

- Typing into the kernel's serial shell (gradelib's send()), reading its `net`/`tcp` counters.
- QEMU NIC arguments: user networking with host port forwarding, or a scripted wire.
- Frames built and parsed with struct: Ethernet, ARP, IPv4, ICMP echo, TCP.
- Wire: a scripted Ethernet wire. QEMU's e1000 is one end (QEMU 7.2's `-netdev dgram` on unix
  sockets), the test is the other: it sends crafted frames and reads every frame the kernel
  sends.
- Namespace and LossyRelay: Linux's own TCP/IP stack in a network namespace of the test's
  own, joined to the e1000 through a relay that drops, duplicates and reorders frames.
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
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from gradelib import check, fail

# ---------------------------------------------------------------------------------------------
# The serial console's input and the shell's counters.


def boot_with_console(m, **boot_arguments):
    """m.boot(**boot_arguments) with COM1's input connected, so type_line() can type."""
    m.boot(serial_input=True, **boot_arguments)


def type_line(m, text):
    """Type one line into the kernel's serial console."""
    m.send(text + "\r")


COUNTER_LINE = r"((?:[a-z0-9_]+=\d+ ?)+)"


def parse_counters(text):
    return {key: int(value) for key, value in re.findall(r"([a-z0-9_]+)=(\d+)", text)}


def net_counters(m):
    """Type `net`; return its counters: the `net:` keys as printed, the e1000's as e1000.KEY."""
    type_line(m, "net")
    counters = parse_counters(m.expect(rf"^net: {COUNTER_LINE}$", timeout=10)[1])
    nic = parse_counters(m.expect(rf"^e1000: {COUNTER_LINE}$", timeout=10)[1])
    counters.update({f"e1000.{key}": value for key, value in nic.items()})
    return counters


def tcp_status(m):
    """Type `tcp`; return (counters, capacity). connections=N/M gives the count and capacity."""
    type_line(m, "tcp")
    line = m.expect(r"^tcp: connections=(\d+)/(\d+) " + COUNTER_LINE + "$", timeout=10)
    counters = parse_counters(line[3])
    counters["connections"] = int(line[1])
    return counters, int(line[2])


def counter_changes(before, after):
    """{key: after - before} for every counter that changed (a new key counts from 0)."""
    changes = {key: value - before.get(key, 0) for key, value in after.items()}
    return {key: delta for key, delta in changes.items() if delta}


def require_running(m, what):
    """Fail with QEMU's exit reason if it has exited (the kernel panicked, reset, crashed)."""
    m.lines()  # takes in pending serial output and notices an exit
    if m.exit_status is not None:
        fail(f"QEMU exited before {what}: {m.describe_exit()}")


# ---------------------------------------------------------------------------------------------
# NICs for QEMU's command line.


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def user_nic(forwards=(), netdev_options="", device_options=""):
    """An e1000 on QEMU user networking; forwards is [(host_port, guest_port)] on 127.0.0.1.
    The options strings are appended to -netdev and -device (",addr=0x5", ",net=...")."""
    netdev = "user,id=net0" + "".join(f",hostfwd=tcp:127.0.0.1:{host}-:{guest}"
                                      for host, guest in forwards)
    return ["-netdev", netdev + netdev_options, "-device", "e1000,netdev=net0" + device_options]


def random_mac(rng=random):
    """A random locally administered unicast MAC (52:54:00 is QEMU's default prefix)."""
    return "52:54:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(4))


# ---------------------------------------------------------------------------------------------
# Addresses and checksums.

def mac_bytes(text):
    return bytes(int(part, 16) for part in text.split(":"))


def mac_text(data):
    return ":".join(f"{byte:02x}" for byte in data)


def ip_bytes(text):
    return socket.inet_aton(text)


def ip_text(data):
    return socket.inet_ntoa(data)


def internet_checksum(data):
    """RFC 1071: the one's complement of the one's-complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


BROADCAST = b"\xff" * 6
ETHERTYPE_IPV4, ETHERTYPE_ARP = 0x0800, 0x0806
PROTOCOL_ICMP, PROTOCOL_TCP = 1, 6
ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST = 0, 8
ARP_REQUEST, ARP_REPLY = 1, 2
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MIN_FRAME = 60  # Ethernet's minimum frame without the CRC; shorter frames get padded

# ---------------------------------------------------------------------------------------------
# Building frames. Addresses are bytes (mac_bytes, ip_bytes).


def ethernet(destination, source, ethertype, payload):
    return destination + source + struct.pack("!H", ethertype) + payload


def arp(operation, sender_mac, sender_ip, target_mac, target_ip):
    return (struct.pack("!HHBBH", 1, ETHERTYPE_IPV4, 6, 4, operation) +
            sender_mac + sender_ip + target_mac + target_ip)


def ipv4(source, destination, protocol, payload, *, ttl=64, identification=0, flags_offset=0,
         ihl=5, options=b"", total_length=None, checksum=None):
    """An IPv4 packet. ihl, total_length and checksum can be set to lie."""
    header_length = 20 + len(options)
    if total_length is None:
        total_length = header_length + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 4 << 4 | ihl, 0, total_length, identification,
                         flags_offset, ttl, protocol, 0, source, destination) + options
    if checksum is None:
        checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def icmp_echo(kind, identifier, sequence, data, *, code=0, checksum=None):
    message = struct.pack("!BBHHH", kind, code, 0, identifier, sequence) + data
    if checksum is None:
        checksum = internet_checksum(message)
    return message[:2] + struct.pack("!H", checksum) + message[4:]


def tcp(source_ip, destination_ip, source_port, destination_port, sequence, acknowledgment,
        flags, window=65535, payload=b"", options=b"", checksum=None):
    """A TCP segment; the checksum covers the IPv4 pseudo-header."""
    offset = (20 + len(options)) // 4
    segment = (struct.pack("!HHIIBBHHH", source_port, destination_port, sequence & 0xFFFFFFFF,
                           acknowledgment & 0xFFFFFFFF, offset << 4, flags, window, 0, 0) +
               options + payload)
    if checksum is None:
        checksum = tcp_checksum(source_ip, destination_ip, segment)
    return segment[:16] + struct.pack("!H", checksum) + segment[18:]


def tcp_checksum(source_ip, destination_ip, segment):
    pseudo_header = source_ip + destination_ip + struct.pack("!BBH", 0, PROTOCOL_TCP, len(segment))
    return internet_checksum(pseudo_header + segment)


# ---------------------------------------------------------------------------------------------
# Parsing frames. Each parser returns None for something too short to be what it parses.

@dataclass
class Frame:
    destination: bytes
    source: bytes
    ethertype: int
    payload: bytes
    raw: bytes


def parse_ethernet(data):
    if len(data) < 14:
        return None
    return Frame(data[0:6], data[6:12], struct.unpack("!H", data[12:14])[0], data[14:], data)


@dataclass
class Arp:
    hardware: int
    protocol: int
    hardware_size: int
    protocol_size: int
    operation: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes
    trailer: bytes  # what follows the 28 bytes (Ethernet padding)


def parse_arp(data):
    if len(data) < 28:
        return None
    fields = struct.unpack("!HHBBH6s4s6s4s", data[:28])
    return Arp(*fields, data[28:])


@dataclass
class Ipv4:
    version: int
    ihl: int
    total_length: int
    identification: int
    flags_offset: int
    ttl: int
    protocol: int
    checksum: int
    source: bytes
    destination: bytes
    header: bytes
    payload: bytes   # total_length - header length bytes
    trailer: bytes   # what follows total_length in the frame (Ethernet padding)


def parse_ipv4(data):
    if len(data) < 20:
        return None
    version_ihl, _, total_length, identification, flags_offset, ttl, protocol, checksum, \
        source, destination = struct.unpack("!BBHHHBBH4s4s", data[:20])
    header_length = (version_ihl & 15) * 4
    return Ipv4(version_ihl >> 4, version_ihl & 15, total_length, identification, flags_offset,
                ttl, protocol, checksum, source, destination, data[:header_length],
                data[header_length:total_length], data[total_length:])


@dataclass
class Tcp:
    source_port: int
    destination_port: int
    sequence: int
    acknowledgment: int
    data_offset: int
    flags: int
    window: int
    checksum: int
    options: bytes
    payload: bytes

    def describe(self):
        names = "".join(name for bit, name in ((SYN, "S"), (ACK, "A"), (FIN, "F"), (RST, "R"),
                                                (PSH, "P")) if self.flags & bit)
        return (f"[{names or '-'}] {self.source_port}->{self.destination_port} "
                f"seq={self.sequence} ack={self.acknowledgment} win={self.window} "
                f"len={len(self.payload)}")


def parse_tcp(data):
    if len(data) < 20:
        return None
    fields = struct.unpack("!HHIIBBHHH", data[:20])
    offset = (fields[4] >> 4) * 4
    return Tcp(fields[0], fields[1], fields[2], fields[3], offset, fields[5], fields[6],
               fields[7], data[20:offset], data[offset:])


# ---------------------------------------------------------------------------------------------
# The scripted wire.

class Wire:
    """The other end of the kernel's Ethernet cable, driven by the test.

    QEMU binds one unix datagram socket and sends each frame the e1000 transmits to the
    test's socket as one datagram; what the test sends there, the e1000 receives. Every frame
    the kernel sends is kept in order, so a test can tell a reply from an unexpected frame.
    """

    def __init__(self, m):
        self.m = m
        self.scale = m.run.timeout_scale
        self.peer_path = str(m.run.unique_path("wire-test.sock"))
        self.qemu_path = str(m.run.unique_path("wire-qemu.sock"))
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.peer_path)
        self.received = []  # every frame from the kernel not yet taken by receive()

    def nic_args(self, mac):
        netdev = (f"dgram,id=net0,local.type=unix,local.path={self.qemu_path},"
                  f"remote.type=unix,remote.path={self.peer_path}")
        return ["-netdev", netdev, "-device", f"e1000,netdev=net0,mac={mac}"]

    def close(self):
        self.socket.close()

    def send(self, frame):
        require_running(self.m, "sending a frame")
        self.socket.sendto(frame, self.qemu_path)

    def receive(self, accept, timeout, what):
        """The first frame (oldest first) for which accept(frame) is true, or fail after
        timeout seconds (scaled). Frames that do not match stay in self.received."""
        frame = self.poll_for(accept, timeout)
        if frame is None:
            fail(f"no {what} from the kernel within {timeout * self.scale:.1f}s"
                 f"{self.describe_received()}")
        return frame

    def poll_for(self, accept, timeout):
        """Like receive, but returns None on timeout."""
        deadline = time.monotonic() + timeout * self.scale
        while True:
            for i, frame in enumerate(self.received):
                if accept(frame):
                    return self.received.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._take_in(min(left, 0.2))

    def _take_in(self, timeout):
        require_running(self.m, "a frame from the kernel")
        if select.select([self.socket], [], [], timeout)[0]:
            while True:
                try:
                    data = self.socket.recv(65536, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                frame = parse_ethernet(data)
                if frame:
                    self.received.append(frame)

    def quiet_for(self, seconds, accept=lambda frame: True):
        """Collect frames for `seconds` (scaled); return those accept() takes, removing them."""
        until = time.monotonic() + seconds * self.scale
        while time.monotonic() < until:
            self._take_in(max(0, min(0.2, until - time.monotonic())))
        taken = [frame for frame in self.received if accept(frame)]
        self.received = [frame for frame in self.received if not accept(frame)]
        return taken

    def describe_received(self):
        if not self.received:
            return "; the kernel sent nothing else"
        return f"; the kernel sent {len(self.received)} other frames: " + \
            ", ".join(describe_frame(frame) for frame in self.received[:4])


def describe_frame(frame):
    """A short human description of a frame, for failure messages."""
    text = f"{mac_text(frame.source)}->{mac_text(frame.destination)} type {frame.ethertype:#06x}"
    if frame.ethertype == ETHERTYPE_ARP:
        packet = parse_arp(frame.payload)
        if packet:
            text += (f" ARP op {packet.operation} {ip_text(packet.sender_ip)} asks/tells "
                     f"{ip_text(packet.target_ip)}")
    elif frame.ethertype == ETHERTYPE_IPV4:
        packet = parse_ipv4(frame.payload)
        if packet:
            text += f" IPv4 {ip_text(packet.source)}->{ip_text(packet.destination)} proto " \
                    f"{packet.protocol} len {packet.total_length}"
            if packet.protocol == PROTOCOL_TCP and parse_tcp(packet.payload):
                text += " TCP " + parse_tcp(packet.payload).describe()
    return text


@dataclass
class Host:
    """One end of a conversation on the wire: a MAC and an IPv4 address (as bytes)."""
    mac: bytes
    ip: bytes


def random_subnet_hosts(rng, count):
    """count distinct hosts in one random 10.x.y.0/24, the first being the kernel."""
    prefix = f"10.{rng.randrange(1, 255)}.{rng.randrange(256)}."
    numbers = rng.sample(range(2, 254), count)
    macs = set()
    while len(macs) < count:
        macs.add(random_mac(rng))
    return [Host(mac_bytes(mac), ip_bytes(prefix + str(n)))
            for mac, n in zip(sorted(macs), numbers)]


def kernel_cmdline(kernel, gateway, extra="noping"):
    """The cmdline that gives the kernel kernel.ip/24 and gateway.ip."""
    return f"ip={ip_text(kernel.ip)}/24 gw={ip_text(gateway.ip)} {extra}".strip()


class WireSession:
    """A kernel booted on a scripted wire in a random /24: self.kernel, self.gateway and
    self.peer are Hosts (random MACs and addresses); the test speaks as the peer."""

    def __init__(self, m, rng=None):
        self.m = m
        self.rng = rng or random.Random()
        self.wire = Wire(m)
        self.kernel, self.gateway, self.peer = random_subnet_hosts(self.rng, 3)

    def boot(self, extra="noping", wait_ready=True):
        boot_with_console(self.m, cmdline=kernel_cmdline(self.kernel, self.gateway, extra),
                          extra_args=self.wire.nic_args(mac_text(self.kernel.mac)))
        if wait_ready:
            self.m.expect(r"^ready$")

    def send_ip(self, payload, protocol, source=None, **ipv4_options):
        """An IPv4 packet from the peer (or `source`, a Host) to the kernel."""
        source = source or self.peer
        self.wire.send(ethernet(self.kernel.mac, source.mac, ETHERTYPE_IPV4,
                                ipv4(source.ip, self.kernel.ip, protocol, payload,
                                     **ipv4_options)))

    def arp_request(self, target_ip=None, destination=BROADCAST):
        """The peer asks who has target_ip (the kernel's address by default)."""
        self.wire.send(ethernet(destination, self.peer.mac, ETHERTYPE_ARP,
                                arp(ARP_REQUEST, self.peer.mac, self.peer.ip, b"\0" * 6,
                                    target_ip or self.kernel.ip)))

    def introduce(self):
        """ARP: the peer asks for the kernel, so the kernel learns the peer's MAC too.
        Returns the kernel's reply frame."""
        self.arp_request()
        return self.wire.receive(self.is_arp_reply, 5, "ARP reply")

    def is_arp_reply(self, frame):
        packet = parse_arp(frame.payload) if frame.ethertype == ETHERTYPE_ARP else None
        return packet is not None and packet.operation == ARP_REPLY

    def ping(self, identifier, sequence, data=b"", **ipv4_options):
        self.send_ip(icmp_echo(ICMP_ECHO_REQUEST, identifier, sequence, data), PROTOCOL_ICMP,
                     **ipv4_options)

    def echo_reply_to(self, identifier, sequence):
        """A predicate for the kernel's echo reply with this identifier and sequence."""
        def accept(frame):
            packet = parse_ipv4(frame.payload) if frame.ethertype == ETHERTYPE_IPV4 else None
            return (packet is not None and packet.protocol == PROTOCOL_ICMP and
                    packet.payload[:1] == bytes([ICMP_ECHO_REPLY]) and
                    packet.payload[4:8] == struct.pack("!HH", identifier, sequence))
        return accept


class TcpPeer:
    """One TCP connection of the test's own on a scripted wire, from the peer to the kernel.

    Just enough TCP to script a conversation: a handshake, data and FIN in order, reading
    the kernel's bytes back in sequence (duplicates ignored) and acknowledging them.
    """
    MSS_OPTION = struct.pack("!BBH", 2, 4, 1460)

    def __init__(self, session, port, source_port=None, rng=None):
        self.s = session
        rng = rng or random.Random()
        self.port = port
        self.source_port = source_port or rng.randrange(20000, 60000)
        self.iss = rng.randrange(1 << 32)
        self.snd_nxt = self.iss
        self.rcv_nxt = None
        self.received = b""

    def send(self, flags, payload=b"", sequence=None, options=b"", bad_checksum=False):
        """Send a segment (sequence defaults to snd_nxt, which then moves past it);
        bad_checksum sends it with a checksum that is wrong."""
        if sequence is None:
            sequence = self.snd_nxt
            self.snd_nxt = (self.snd_nxt + len(payload) + bool(flags & (SYN | FIN))) % (1 << 32)
        segment = tcp(self.s.peer.ip, self.s.kernel.ip, self.source_port, self.port, sequence,
                      self.rcv_nxt or 0, flags, payload=payload, options=options)
        if bad_checksum:
            # 0x5555 flips bits without making the sum one's-complement equal (unlike 0xFFFF).
            wrong = struct.unpack("!H", segment[16:18])[0] ^ 0x5555
            segment = segment[:16] + struct.pack("!H", wrong) + segment[18:]
        self.s.send_ip(segment, PROTOCOL_TCP)

    def is_mine(self, frame):
        if frame.ethertype != ETHERTYPE_IPV4:
            return False
        packet = parse_ipv4(frame.payload)
        if not packet or packet.protocol != PROTOCOL_TCP or packet.source != self.s.kernel.ip:
            return False
        segment = parse_tcp(packet.payload)
        return segment is not None and (segment.source_port, segment.destination_port) == \
            (self.port, self.source_port)

    def receive(self, what, timeout=5):
        """The kernel's next segment on this connection, its checksum checked."""
        frame = self.s.wire.receive(self.is_mine, timeout, f"{what} (port {self.port})")
        packet = parse_ipv4(frame.payload)
        check(tcp_checksum(packet.source, packet.destination, packet.payload) == 0,
              f"the kernel's TCP checksum is wrong in {describe_frame(frame)}")
        return parse_tcp(packet.payload)

    def poll(self, timeout):
        """The kernel's next segment on this connection, or None within timeout."""
        frame = self.s.wire.poll_for(self.is_mine, timeout)
        return parse_tcp(parse_ipv4(frame.payload).payload) if frame else None

    def connect(self):
        """SYN, SYN-ACK, ACK. Returns the SYN-ACK."""
        self.send(SYN, options=self.MSS_OPTION)
        reply = self.receive("SYN-ACK")
        check(reply.flags & (SYN | ACK | RST) == SYN | ACK,
              f"a SYN to port {self.port} got {reply.describe()}, not a SYN-ACK")
        check(reply.acknowledgment == self.snd_nxt, f"the SYN-ACK acknowledges "
              f"{reply.acknowledgment}, not the SYN's sequence number + 1 = {self.snd_nxt}")
        self.rcv_nxt = (reply.sequence + 1) % (1 << 32)
        self.send(ACK)
        return reply

    def read(self, count, what, timeout=5):
        """Take in the kernel's next count bytes in order, acknowledging what arrives."""
        wanted = len(self.received) + count
        while len(self.received) < wanted:
            segment = self.receive(what, timeout)
            check(not segment.flags & RST, f"the kernel reset the connection: "
                  f"{segment.describe()}")
            if segment.sequence == self.rcv_nxt and segment.payload:
                self.received += segment.payload
                self.rcv_nxt = (self.rcv_nxt + len(segment.payload)) % (1 << 32)
                self.send(ACK)
            elif segment.payload:  # a retransmission of what we had, or out of order
                self.send(ACK)
        data, self.received = self.received[:wanted], self.received[wanted:]
        return data[-count:] if count else b""

    def close(self):
        """Send FIN, expect the kernel's FIN (after any data) and acknowledge it. Bytes the
        kernel sends that nobody read are a failure."""
        self.send(FIN | ACK)
        while True:
            segment = self.receive("FIN")
            check(not segment.flags & RST, f"the kernel reset the connection instead of "
                  f"closing it: {segment.describe()}")
            if segment.payload and segment.sequence == self.rcv_nxt:
                self.received += segment.payload
                self.rcv_nxt = (self.rcv_nxt + len(segment.payload)) % (1 << 32)
            if segment.flags & FIN:
                end = (segment.sequence + len(segment.payload)) % (1 << 32)
                check(end == self.rcv_nxt, f"the kernel's FIN is at {end}, but the test has "
                      f"its bytes up to {self.rcv_nxt}")
                self.rcv_nxt = (end + 1) % (1 << 32)
                self.send(ACK)
                break
        check(not self.received, f"the kernel sent {len(self.received)} bytes more than "
              "expected before its FIN")


# ---------------------------------------------------------------------------------------------
# A network namespace with Linux's TCP/IP stack on a TAP device, joined to QEMU by a relay.

CLONE_NEWNET = 0x40000000
ECHO_CLIENT = Path(__file__).resolve().parent / "echo_client.py"
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
        argv = self.command([sys.executable, str(ECHO_CLIENT), host, str(port), "--size",
                             str(size), "--clients", str(clients), "--seed", str(seed),
                             "--timeout", f"{max(1.0, timeout - 2):.0f}"] +
                            (["--stall", str(stall)] if stall else []))
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"the echo client in the namespace did not finish in {timeout:.0f}s")
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError:
            fail(f"grader error: the echo client printed {done.stdout!r}, stderr "
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


class LossyRelay:
    """Carries frames between QEMU's dgram socket and a TAP device, badly on purpose.

    In each direction it drops a fraction of frames, sends some twice and holds some back to
    send after the next one (reordering). The choices come from random.Random(seed) per
    direction, so a run can be repeated. A held frame goes out after at most hold_ms even if
    no frame follows. It starts as a plain cable; set_faults() makes it bad (for instance
    once the kernel has booted).
    """

    def __init__(self, m, tap_fd, seed, hold_ms=20):
        self.m, self.tap_fd = m, tap_fd
        self.peer_path = str(m.run.unique_path("relay.sock"))
        self.qemu_path = str(m.run.unique_path("relay-qemu.sock"))
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.peer_path)
        self.hold = hold_ms / 1000
        self.faults = Faults()
        self.directions = {"to_kernel": Direction(random.Random(f"{seed}:to_kernel")),
                           "to_linux": Direction(random.Random(f"{seed}:to_linux"))}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error = None
        self.started = time.monotonic()
        # The latest frames, for the failure log: (time, direction, fate, first bytes).
        self.trace = collections.deque(maxlen=4000)

    def nic_args(self, mac="52:54:00:12:34:56"):
        netdev = (f"dgram,id=net0,local.type=unix,local.path={self.qemu_path},"
                  f"remote.type=unix,remote.path={self.peer_path}")
        return ["-netdev", netdev, "-device", f"e1000,netdev=net0,mac={mac}"]

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
