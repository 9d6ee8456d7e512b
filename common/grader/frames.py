"""frames: Ethernet, ARP, IPv4, ICMP echo and TCP, built and parsed with struct.

Addresses are bytes (mac_bytes, ip_bytes) and text for people (mac_text, ip_text). The builders
can be told to lie (a wrong length or checksum) for the tests of what the kernel must ignore;
the parsers return None for something too short to be what they parse; describe_frame() says
what a frame is in failure messages.
"""
import socket
import struct
from dataclasses import dataclass

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
