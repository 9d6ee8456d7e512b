"""tcp_peer: one TCP connection of the test's own, scripted on a wire.WireSession."""
import random
import struct

from frames import (ACK, ETHERTYPE_IPV4, FIN, PROTOCOL_TCP, RST, SYN, describe_frame,
                    parse_ipv4, parse_tcp, tcp, tcp_checksum)
from gradelib import check


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

