"""wire: a scripted Ethernet wire, the test as the kernel's only neighbour.

QEMU's e1000 is one end (nic.DgramCable), the test the other: it sends crafted frames and reads
every frame the kernel sends. WireSession boots the kernel on such a wire in a random /24 and
speaks as its peer: ARP, IPv4 and ICMP echo; tcp_peer.TcpPeer adds a TCP connection.
"""
import random
import select
import socket
import struct
import time
from dataclasses import dataclass

from frames import (ARP_REPLY, ARP_REQUEST, BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4,
                    ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, PROTOCOL_ICMP, arp, describe_frame,
                    ethernet, icmp_echo, ip_bytes, ip_text, ipv4, mac_bytes, mac_text,
                    parse_arp, parse_ethernet, parse_ipv4)
from gradelib import fail
from nic import DgramCable, random_mac
from shell import boot_with_console, require_running


class Wire(DgramCable):
    """The other end of the kernel's Ethernet cable, driven by the test.

    Every frame the kernel sends (each a datagram on the cable's socket) is kept in order, so
    a test can tell a reply from an unexpected frame. nic_args(mac) gives QEMU its end.
    """

    def __init__(self, m):
        super().__init__(m, "wire")
        self.m = m
        self.scale = m.run.timeout_scale
        self.received = []  # every frame from the kernel not yet taken by receive()

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

