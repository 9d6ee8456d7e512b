"""Step 05: the e1000, Ethernet, ARP, IPv4 and ICMP echo, and the serial shell.

Two kinds of network. QEMU's user networking (slirp) checks the boot-time gateway ping against
a real peer. A scripted wire (wire.Wire: QEMU's `-netdev dgram` on unix sockets) lets the test
be the kernel's only neighbour: it sends crafted frames and sees every frame the kernel sends,
so replies are checked byte for byte and "no reply" can be proven. Each wire test puts the
kernel at a random address in a random 10.x.y.0/24 with a random MAC (cmdline ip=, gw=;
-device e1000,mac=), so nothing can be hard-coded.

Proving "no reply": after a frame the kernel must ignore, the test sends a good echo request
(a fence). The NIC delivers frames in order, so any reply to the ignored frame would arrive
before the fence's reply. Then the shell's `net` command shows the counters, and each must have
moved by exactly what the two frames explain.

QEMU 7.2's e1000 pads received frames shorter than 60 bytes with zeros (as a real NIC's
sender would), so the kernel sees a runt as a padded frame; the tests allow for that.
"""
import random
import re
import struct

import nic
import shell
from frames import (ARP_REPLY, ARP_REQUEST, BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4,
                    ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, MIN_FRAME, PROTOCOL_ICMP, arp,
                    describe_frame, ethernet, icmp_echo, internet_checksum, ip_bytes, ip_text,
                    ipv4, mac_bytes, mac_text, parse_arp, parse_ipv4)
from gradelib import check, fail, test
from wire import Host, WireSession

ECHO_SIZES = (0, 1, 56, 1000, 1472)
E1000_IDS = (0x8086, 0x100E)
IPV4_LINE = r"(\d+\.\d+\.\d+\.\d+)"
FLAG_MORE_FRAGMENTS, FRAGMENT_OFFSET = 0x2000, 0x1FFF
SHELL_COMMANDS = ("help", "net", "arp", "irq", "ping")  # in the order `help` lists them
# The PIT interrupts this often (clock.c); the idle test allows half as many ticks.
TICK_HZ = 50
QUIET_SECONDS = 3


# ---------------------------------------------------------------------------------------------
# QEMU user networking

@test(10, "boot pings the gateway (user networking)", timeout=30)
def gateway_ping_user(m):
    """Slirp in a random 10.x.y.0/24 with the gateway at a random address, the kernel told
    ip= and gw=: `e1000: <mac> link up` with the MAC QEMU was given, `net:` shows the address,
    `arp: <gw> is at 52:55:<gw>` (slirp answers for its addresses with 52:55 followed by the
    address) and `ping <gw>: reply`."""
    rng = random.Random()
    prefix = f"10.{rng.randrange(1, 255)}.{rng.randrange(256)}"
    gateway, kernel = (f"{prefix}.{n}" for n in rng.sample(range(4, 254), 2))
    mac = nic.random_mac(rng)
    card = nic.user_nic(netdev_options=f",net={prefix}.0/24,host={gateway}",
                        device_options=f",mac={mac}")
    m.boot(cmdline=f"ip={kernel}/24 gw={gateway}", extra_args=card)
    link = m.expect(r"^e1000: ([0-9a-f:]{17}) link (\w+)")
    check(link[1] == mac and link[2] == "up",
          f"QEMU gave the e1000 MAC {mac}; the kernel printed {link[0]!r}")
    require_config_line(m, kernel, 24, gateway)
    slirp_mac = "52:55:" + mac_text(ip_bytes(gateway))
    arp_line = m.expect(rf"^arp: {re.escape(gateway)} is at ([0-9a-f:]{{17}})$")
    check(arp_line[1] == slirp_mac,
          f"slirp answers for {gateway} with {slirp_mac}; the kernel printed {arp_line[0]!r}")
    m.expect(rf"^ping {re.escape(gateway)}: reply\b")
    m.expect(r"^ready$")


@test(10, "the e1000 is found behind bridges", timeout=30)
def e1000_behind_bridges(m):
    """The only e1000 sits behind one or two PCI-to-PCI bridges, in random slots: the kernel
    must say `pci BB:DD.F driver e1000` for exactly the slot where QEMU put it, and the card
    must work there (the boot ping to the gateway gets its reply)."""
    rng = random.Random()
    depth = rng.choice((1, 2))
    slots = rng.sample(range(1, 32), 3)
    args = ["-netdev", "user,id=net0",
            "-device", f"pci-bridge,id=br1,chassis_nr=1,addr={rng.randrange(4, 32):#x}"]
    if depth == 2:
        args += ["-device", f"pci-bridge,id=br2,chassis_nr=2,bus=br1,addr={slots[0]:#x}"]
    args += ["-device", f"virtio-rng-pci,bus=br{depth},addr={slots[1]:#x}",
             "-device", f"e1000,netdev=net0,bus=br{depth},addr={slots[2]:#x}"]
    m.boot(extra_args=args)
    driver = m.expect(r"^pci ([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) driver e1000$")
    where = tuple(int(part, 16) for part in driver.groups())
    qemu = [f for f, ids in qemu_function_ids(m.qmp("query-pci")).items() if ids == E1000_IDS]
    check(len(qemu) == 1, f"grader error: QEMU lists {len(qemu)} e1000s")
    check(where == qemu[0], f"QEMU put the e1000 at {bdf(qemu[0])}; the kernel bound the "
          f"driver at {bdf(where)}")
    bound = [line for line in m.lines() if re.match(r"^pci \S+ driver e1000$", line)]
    check(len(bound) == 1, f"the e1000 driver was bound {len(bound)} times: {bound}")
    m.expect(r"^ping 10\.0\.2\.2: reply\b")
    m.expect(r"^ready$")


# ---------------------------------------------------------------------------------------------
# The scripted wire

@test(10, "boot pings the gateway (scripted wire)", timeout=30)
def gateway_ping_wire(m):
    """The kernel asks for its gateway with a well-formed ARP request, learns the MAC the test
    answers with (`arp: <gw> is at <mac>`), sends it a well-formed echo request and reports
    the test's reply (`ping <gw>: reply`)."""
    s = WireSession(m)
    s.boot(extra="", wait_ready=False)
    request = s.wire.receive(lambda f: f.ethertype == ETHERTYPE_ARP, 10, "ARP request")
    check(request.destination == BROADCAST and request.source == s.kernel.mac,
          f"the ARP request goes {mac_text(request.source)} -> "
          f"{mac_text(request.destination)}; expected {mac_text(s.kernel.mac)} -> broadcast")
    packet = parse_arp(request.payload)
    check(packet and (packet.hardware, packet.protocol, packet.hardware_size,
                      packet.protocol_size, packet.operation) == (1, ETHERTYPE_IPV4, 6, 4,
                                                                  ARP_REQUEST),
          f"not an Ethernet/IPv4 ARP request: {request.payload[:8].hex()}")
    check(packet.sender_mac == s.kernel.mac and packet.sender_ip == s.kernel.ip,
          f"the request's sender is {mac_text(packet.sender_mac)} {ip_text(packet.sender_ip)}, "
          f"not the kernel's {mac_text(s.kernel.mac)} {ip_text(s.kernel.ip)}")
    check(packet.target_ip == s.gateway.ip, f"the kernel asks for {ip_text(packet.target_ip)}"
          f", not its gateway {ip_text(s.gateway.ip)}")
    s.wire.send(ethernet(s.kernel.mac, s.gateway.mac, ETHERTYPE_ARP,
                         arp(ARP_REPLY, s.gateway.mac, s.gateway.ip, s.kernel.mac, s.kernel.ip)))

    frame = s.wire.receive(lambda f: f.ethertype == ETHERTYPE_IPV4, 10, "echo request")
    check(frame.destination == s.gateway.mac, f"the echo request goes to "
          f"{mac_text(frame.destination)}, not the gateway's {mac_text(s.gateway.mac)}")
    packet = require_ipv4(frame, s.kernel.ip, s.gateway.ip, PROTOCOL_ICMP)
    check(internet_checksum(packet.payload) == 0, "the echo request's ICMP checksum is wrong")
    check(packet.payload[:2] == bytes([ICMP_ECHO_REQUEST, 0]),
          f"ICMP type/code {packet.payload[0]}/{packet.payload[1]}, not an echo request")
    reply = bytes([ICMP_ECHO_REPLY]) + packet.payload[1:]
    reply = reply[:2] + b"\0\0" + reply[4:]
    reply = reply[:2] + struct.pack("!H", internet_checksum(reply)) + reply[4:]
    s.wire.send(ethernet(s.kernel.mac, s.gateway.mac, ETHERTYPE_IPV4,
                         ipv4(s.gateway.ip, s.kernel.ip, PROTOCOL_ICMP, reply)))
    gateway = re.escape(ip_text(s.gateway.ip))
    learned = m.expect(rf"^arp: {gateway} is at ([0-9a-f:]{{17}})$")
    check(learned[1] == mac_text(s.gateway.mac), f"the gateway answered with "
          f"{mac_text(s.gateway.mac)}; the kernel printed {learned[0]!r}")
    m.expect(rf"^ping {gateway}: reply\b")
    m.expect(r"^ready$")


@test(5, "ARP refreshes old answers quietly and reports a change", timeout=45)
def arp_quiet_refresh(m):
    """The peer introduces itself twice: one console line `arp: <peer> is at <mac>`. Once the
    answer is a minute old the kernel asks for the peer again, by itself (an answer is
    refreshed while in use, not dropped and learned anew); the test answers with the same
    MAC, and the kernel, still replying to pings, prints nothing. Then the peer shows up with a
    new MAC: a second line, with the new MAC, and the next echo reply goes there."""
    s = WireSession(m)
    s.boot()
    s.introduce()
    s.introduce()
    peer = re.escape(ip_text(s.peer.ip))
    m.expect(rf"^arp: {peer} is at {re.escape(mac_text(s.peer.mac))}$")
    request = s.wire.receive(lambda f: f.ethertype == ETHERTYPE_ARP and is_request_for(
        f, s.peer.ip), 25, "ARP request refreshing the peer's entry after a minute")
    s.wire.send(ethernet(s.kernel.mac, s.peer.mac, ETHERTYPE_ARP,
                         arp(ARP_REPLY, s.peer.mac, s.peer.ip, s.kernel.mac, s.kernel.ip)))
    fence(s, "the refreshed answer")
    lines = re.findall(rf"^arp: {peer} is at .*$", m.output, re.M)
    check(len(lines) == 1, f"the console reported the peer {len(lines)} times, though its MAC "
          f"never changed: {lines}")
    check(request.destination in (BROADCAST, s.peer.mac), "the refresh request goes to "
          f"{mac_text(request.destination)}")
    s.peer.mac = bytes([0x02]) + random.randbytes(5)
    s.introduce()
    m.expect(rf"^arp: {peer} is at {re.escape(mac_text(s.peer.mac))}$")
    fence(s, "the peer's new MAC")


def is_request_for(frame, ip):
    packet = parse_arp(frame.payload)
    return packet is not None and packet.operation == ARP_REQUEST and packet.target_ip == ip


@test(10, "ARP request gets an exact reply", timeout=30)
def arp_reply(m):
    """A broadcast ARP request for the kernel's address gets a reply, every field exact; so
    does a unicast one; a request for another address on the subnet gets none."""
    s = WireSession(m)
    s.boot()
    before = shell.net_counters(m)
    for destination in (BROADCAST, s.kernel.mac):
        s.arp_request(destination=destination)
        require_arp_reply(s, s.wire.receive(s.is_arp_reply, 5, "ARP reply"))
    s.arp_request(target_ip=s.gateway.ip)
    fence(s)
    changes = shell.counter_changes(before, shell.net_counters(m))
    check(changes.get("arp_requests_answered") == 2,
          f"2 requests for the kernel's address were answered; the counters changed by "
          f"{changes}")


@test(15, "ICMP echo replies are exact", timeout=30)
def echo_sizes(m):
    """Echo requests with 0, 1, 56, 1000 and 1472 bytes of random data each get one reply:
    same identifier, sequence and data, type 0, correct ICMP and IPv4 checksums, addressed
    back to the sender; `net` counts them."""
    s = WireSession(m)
    s.boot()
    s.introduce()
    before = shell.net_counters(m)
    rng = random.Random()
    for size in ECHO_SIZES:
        identifier, sequence = rng.randrange(1 << 16), rng.randrange(1 << 16)
        data = rng.randbytes(size)
        s.ping(identifier, sequence, data, identification=rng.randrange(1 << 16))
        frame = s.wire.receive(s.echo_reply_to(identifier, sequence), 5,
                               f"echo reply to a {size}-byte ping")
        require_echo_reply(s, frame, identifier, sequence, data)
    extra = s.wire.quiet_for(0.3)
    check(not extra, "besides the replies the kernel sent " +
          ", ".join(map(describe_frame, extra)))
    changes = shell.counter_changes(before, shell.net_counters(m))
    count = len(ECHO_SIZES)
    expected = {"rx_frames": count, "tx_frames": count, "echo_requests_answered": count,
                "e1000.good_received": count, "e1000.good_transmitted": count}
    require_changes(changes, expected, "after the pings")


@test(10, "frames for others are ignored", timeout=30)
def others_ignored(m):
    """An echo request to another MAC (unicast or multicast) or to another IPv4 address, and
    an ARP request for another host, get no reply; the NIC may filter the frames for other
    MACs itself (then the kernel never counts them), else the kernel counts them."""
    s = WireSession(m)
    s.boot()
    s.introduce()
    other = Host(mac_bytes(nic.random_mac()), ip_bytes(ip_text(s.gateway.ip)))
    request = icmp_echo(ICMP_ECHO_REQUEST, 1, 1, b"not for you")
    cases = [
        ("an echo request to another MAC",
         ethernet(other.mac, s.peer.mac, ETHERTYPE_IPV4,
                  ipv4(s.peer.ip, s.kernel.ip, PROTOCOL_ICMP, request)), MAC_FILTERED),
        ("an echo request to a multicast MAC",
         ethernet(mac_bytes("01:00:5e:01:02:03"), s.peer.mac, ETHERTYPE_IPV4,
                  ipv4(s.peer.ip, s.kernel.ip, PROTOCOL_ICMP, request)), MAC_FILTERED),
        ("an echo request to another IPv4 address",
         ethernet(s.kernel.mac, s.peer.mac, ETHERTYPE_IPV4,
                  ipv4(s.peer.ip, other.ip, PROTOCOL_ICMP, request)), {"not_our_address"}),
        ("an ARP request for another host",
         ethernet(BROADCAST, s.peer.mac, ETHERTYPE_ARP,
                  arp(ARP_REQUEST, s.peer.mac, s.peer.ip, b"\0" * 6, other.ip)), set()),
    ]
    for what, frame, reasons in cases:
        require_dropped(s, what, frame, reasons)


@test(20, "broken frames are dropped and counted", timeout=60)
def broken_frames(m):
    """Each broken frame gets no reply, the kernel answers a good ping right after it, and
    `net` shows rx up by the frames received, exactly one drop counter of the right kind up
    by one, and nothing else moved."""
    s = WireSession(m)
    s.boot()
    s.introduce()
    for what, frame, reasons in broken_frame_cases(s):
        require_dropped(s, what, frame, reasons)


def broken_frame_cases(s):
    """[(description, frame, the counters that may count it)]"""
    data = b"broken frame test"

    def echo_packet(**ipv4_options):
        return ipv4(s.peer.ip, s.kernel.ip, PROTOCOL_ICMP,
                    icmp_echo(ICMP_ECHO_REQUEST, 0x4242, 7, data), **ipv4_options)

    def to_kernel(payload, ethertype=ETHERTYPE_IPV4):
        return ethernet(s.kernel.mac, s.peer.mac, ethertype, payload)

    good = echo_packet()
    total = len(good)
    bad_icmp = icmp_echo(ICMP_ECHO_REQUEST, 0x4242, 7, data)
    bad_icmp = bad_icmp[:2] + bytes([bad_icmp[2] ^ 0x5A, bad_icmp[3]]) + bad_icmp[4:]
    short_icmp = ipv4(s.peer.ip, s.kernel.ip, PROTOCOL_ICMP, bad_icmp[:4])
    bad_hardware_size = arp(ARP_REQUEST, s.peer.mac, s.peer.ip, b"\0" * 6, s.kernel.ip)
    bad_hardware_size = bad_hardware_size[:4] + b"\x08" + bad_hardware_size[5:]
    return [
        # 12 bytes: no EtherType at all. The NIC pads it to 60 with zeros (EtherType 0).
        ("a 12-byte runt", to_kernel(b"")[:12], {"short_frames", "unknown_ethertype"}),
        ("a frame with an unknown EtherType", to_kernel(good, ethertype=0x88B5),
         {"unknown_ethertype"}),
        ("an IPv4 header with a bad checksum",
         to_kernel(echo_packet(checksum=internet_checksum(good[:20]) ^ 0x0101)),
         {"bad_ip_checksum"}),
        ("an IPv4 header of version 6", to_kernel(bytes([0x65]) + good[1:]),
         {"bad_ip_header"}),
        ("an IPv4 header with IHL 4", to_kernel(echo_packet(ihl=4)), {"bad_ip_header"}),
        ("an IPv4 header with IHL 0", to_kernel(echo_packet(ihl=0)), {"bad_ip_header"}),
        ("IPv4 total length 100 bytes past the frame",
         to_kernel(echo_packet(total_length=total + 100)), {"bad_ip_length"}),
        ("IPv4 total length shorter than its header",
         to_kernel(echo_packet(total_length=16)), {"bad_ip_length", "bad_ip_header"}),
        ("a first fragment (more fragments set)",
         to_kernel(echo_packet(flags_offset=FLAG_MORE_FRAGMENTS)), {"ip_fragments"}),
        ("a last fragment (offset 185)", to_kernel(echo_packet(flags_offset=185)),
         {"ip_fragments"}),
        ("an echo request with a bad ICMP checksum",
         to_kernel(ipv4(s.peer.ip, s.kernel.ip, PROTOCOL_ICMP, bad_icmp)), {"bad_icmp"}),
        ("a 4-byte ICMP message", to_kernel(short_icmp), {"bad_icmp"}),
        ("an ARP request with hardware size 8", to_kernel(bad_hardware_size, ETHERTYPE_ARP),
         {"bad_arp"}),
    ]


# ---------------------------------------------------------------------------------------------
# The shell

@test(10, "shell: help, arp and ping", timeout=45)
def shell_commands(m):
    """`help` lists help, net, arp, irq and ping. `ping <peer>` sends a well-formed echo request
    (after asking for the peer's MAC) and prints the reply; `arp` then lists the peer's MAC.
    `ping` of an address off the subnet goes through the gateway's MAC. `ping` of a host
    that never answers prints that no reply came, and the kernel keeps running."""
    s = WireSession(m)
    s.boot()
    shell.type_line(m, "help")
    for command in SHELL_COMMANDS:
        m.expect(rf"^\s*{command}\b")

    answer_ping(s, s.peer, s.peer.ip)
    shell.type_line(m, "arp")
    entry = m.expect(rf"^arp: {re.escape(ip_text(s.peer.ip))}\b(.*)$")
    check(mac_text(s.peer.mac) in entry[1],
          f"`arp` shows {entry[0]!r}, without the peer's MAC {mac_text(s.peer.mac)}")

    far = ip_bytes(f"192.0.2.{random.randrange(1, 255)}")  # TEST-NET-1, off the subnet
    answer_ping(s, s.gateway, far)

    silent = ip_bytes(ip_text(s.kernel.ip).rsplit(".", 1)[0] + ".1")
    if silent in (s.peer.ip, s.gateway.ip):
        silent = ip_bytes(ip_text(s.kernel.ip).rsplit(".", 1)[0] + ".254")
    shell.type_line(m, f"ping {ip_text(silent)}")
    m.expect(rf"^ping {re.escape(ip_text(silent))}: no reply\b", timeout=10)
    answer_ping(s, s.peer, s.peer.ip)


@test(10, "interrupts wake the kernel; idle, it halts", timeout=60)
def idle_halts(m):
    """On the scripted wire, where nothing arrives unasked, `irq` is read twice, a few
    seconds apart. Meanwhile the e1000 line did not interrupt, the timer did (at least half
    the TICK_HZ per second that the kernel's own clock, halted + awake ms, predicts), typing the
    command raised the serial line, and the CPU was halted more than half of the time. Then
    echo requests, one at a time, each raise the e1000 line. Last, the same kernel booted with
    `idle=poll` never halts: its halted ms stay 0 (that is how this test would fail)."""
    s = WireSession(m)
    s.boot()
    first = shell.irq_status(m)
    m.expect_running(QUIET_SECONDS)
    second = shell.irq_status(m)
    for name in ("timer", "serial", "e1000"):
        check(name in second["lines"], f"`irq` lists no {name} line: {second['lines']}")
    grew = {name: second["lines"][name] - first["lines"].get(name, 0) for name in
            ("timer", "serial", "e1000")}
    halted = second["cpus"][0][0] - first["cpus"][0][0]
    elapsed = sum(second["cpus"][0]) - sum(first["cpus"][0])
    check(elapsed > 0, f"`irq` says cpu 0 spent {elapsed} ms between two readings "
          f"{QUIET_SECONDS} s apart")
    check(grew["e1000"] == 0, f"nothing arrived on the wire, yet the e1000 interrupted "
          f"{grew['e1000']} times in {elapsed} ms")
    ticks = TICK_HZ * elapsed / 1000
    check(grew["timer"] >= ticks / 2, f"the timer interrupted {grew['timer']} times in "
          f"{elapsed} ms of the kernel's own clock; at {TICK_HZ} Hz that is {ticks:.0f}, and "
          f"at least half of them must wake the idle CPU")
    check(grew["serial"] > 0, "typing `irq` did not raise the serial line (its count stayed "
          f"at {second['lines']['serial']})")
    check(halted * 2 > elapsed, f"idle, the CPU was halted {halted} ms of {elapsed} ms; "
          f"it must sleep more than half of the time")

    s.introduce()
    before = second["lines"]["e1000"]
    pings = 3
    for sequence in range(pings):
        m.expect_running(0.2)  # let the kernel go back to sleep first
        identifier, data = random.randrange(1 << 16), random.randbytes(32)
        s.ping(identifier, sequence, data)
        reply = s.wire.receive(s.echo_reply_to(identifier, sequence), 5, "echo reply")
        require_echo_reply(s, reply, identifier, sequence, data)
    third = shell.irq_status(m)
    check(third["lines"]["e1000"] - before >= pings, f"{pings} echo requests (and an ARP "
          f"request) came to an idle kernel one at a time; the e1000 count went from "
          f"{before} to {third['lines']['e1000']}")

    s = WireSession(m)
    s.boot(extra="noping idle=poll")
    polling = [shell.irq_status(m)]
    m.expect_running(1)
    polling.append(shell.irq_status(m))
    halted = [reading["cpus"][0][0] for reading in polling]
    check(halted == [0, 0], f"booted with idle=poll the kernel must never halt, but `irq` "
          f"says it was halted {halted[-1]} ms")


def answer_ping(s, next_hop, destination):
    """Type `ping <destination>`; answer as next_hop (its ARP request too, if it asks);
    check the request and expect the shell to print the reply."""
    shell.type_line(s.m, f"ping {ip_text(destination)}")

    def arp_or_echo(frame):
        # Requests for other hosts may still be going out (the silent host's retries).
        packet = parse_arp(frame.payload) if frame.ethertype == ETHERTYPE_ARP else None
        return frame.ethertype == ETHERTYPE_IPV4 or (packet and packet.target_ip == next_hop.ip)
    frame = s.wire.receive(arp_or_echo, 5, f"echo request to {ip_text(destination)}")
    if frame.ethertype == ETHERTYPE_ARP:
        check(parse_arp(frame.payload).operation == ARP_REQUEST,
              f"the kernel sent {describe_frame(frame)}; expected an ARP request")
        s.wire.send(ethernet(s.kernel.mac, next_hop.mac, ETHERTYPE_ARP,
                             arp(ARP_REPLY, next_hop.mac, next_hop.ip, s.kernel.mac,
                                 s.kernel.ip)))
        frame = s.wire.receive(lambda f: f.ethertype == ETHERTYPE_IPV4, 5,
                               f"echo request to {ip_text(destination)}")
    check(frame.destination == next_hop.mac, f"the echo request to {ip_text(destination)} "
          f"goes to {mac_text(frame.destination)}, not {mac_text(next_hop.mac)}")
    packet = require_ipv4(frame, s.kernel.ip, destination, PROTOCOL_ICMP)
    check(packet.payload[:2] == bytes([ICMP_ECHO_REQUEST, 0]) and
          internet_checksum(packet.payload) == 0,
          f"not a valid echo request: {packet.payload[:8].hex()}")
    reply = bytes([ICMP_ECHO_REPLY, 0, 0, 0]) + packet.payload[4:]
    reply = reply[:2] + struct.pack("!H", internet_checksum(reply)) + reply[4:]
    s.wire.send(ethernet(s.kernel.mac, next_hop.mac, ETHERTYPE_IPV4,
                         ipv4(destination, s.kernel.ip, PROTOCOL_ICMP, reply)))
    s.m.expect(rf"^ping {re.escape(ip_text(destination))}: reply\b", timeout=5)


# ---------------------------------------------------------------------------------------------
# Checks shared by the tests

MAC_FILTERED = "the NIC or the kernel drops it (not_for_us)"


def require_dropped(s, what, frame, reasons):
    """Send frame and a fence ping: no reply to the frame, the fence answered, and the
    counters moved by exactly one received frame counted under one of `reasons` (a set of
    counter names, or MAC_FILTERED) plus the fence."""
    before = shell.net_counters(s.m)
    s.wire.send(frame)
    fence(s, after=what)
    changes = shell.counter_changes(before, shell.net_counters(s.m))
    fence_changes = {"rx_frames": 1, "tx_frames": 1, "echo_requests_answered": 1,
                     "e1000.good_received": 1, "e1000.good_transmitted": 1}
    if reasons == MAC_FILTERED and changes.get("rx_frames") == 1:
        require_changes(changes, fence_changes, f"after {what} (filtered by the NIC)")
        return
    reasons = {"not_for_us"} if reasons == MAC_FILTERED else reasons
    expected = dict(fence_changes, rx_frames=2, **{"e1000.good_received": 2})
    counted = {key: delta for key, delta in changes.items() if key not in expected}
    if reasons:
        check(len(counted) == 1 and set(counted) <= reasons and set(counted.values()) == {1},
              f"after {what} and a good ping, the counters changed by {changes}; expected "
              f"exactly one of {sorted(reasons)} up by 1")
        expected.update(counted)
    require_changes(changes, expected, f"after {what} and a good ping")


def fence(s, after="the frame"):
    """Ping the kernel; fail if anything but the echo reply comes back first."""
    identifier, sequence = random.randrange(1 << 16), random.randrange(1 << 16)
    data = random.randbytes(24)
    s.ping(identifier, sequence, data)
    reply = s.wire.receive(s.echo_reply_to(identifier, sequence), 5,
                           f"echo reply to a good ping sent after {after}")
    check(not s.wire.received, f"the kernel answered {after}: " +
          ", ".join(map(describe_frame, s.wire.received)))
    require_echo_reply(s, reply, identifier, sequence, data)


def require_changes(changes, expected, when):
    check(changes == expected, f"{when} the counters changed by {changes}; expected {expected}")


def require_config_line(m, address, length, gateway):
    """`net: A.B.C.D/len via G` or `net: A.B.C.D netmask M via G`."""
    line = m.expect(rf"^net: {IPV4_LINE}(?:/(\d+)| netmask {IPV4_LINE}) via {IPV4_LINE}$")
    netmask = ip_text(struct.pack("!I", (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF))
    shown_mask = line[3] or ip_text(struct.pack("!I", (0xFFFFFFFF << (32 - int(line[2]))) &
                                                0xFFFFFFFF))
    check((line[1], shown_mask, line[4]) == (address, netmask, gateway),
          f"the cmdline said ip={address}/{length} gw={gateway}; the kernel printed "
          f"{line[0]!r}")


def require_ipv4(frame, source, destination, protocol):
    """Check the IPv4 header of a frame from the kernel; return the parsed packet."""
    check(frame.ethertype == ETHERTYPE_IPV4, f"EtherType {frame.ethertype:#06x}, not IPv4")
    packet = parse_ipv4(frame.payload)
    check(packet is not None, f"a {len(frame.payload)}-byte IPv4 packet")
    check(packet.version == 4 and packet.ihl >= 5,
          f"IPv4 version {packet.version}, header length {packet.ihl * 4}")
    check(internet_checksum(packet.header) == 0,
          f"the IPv4 header checksum {packet.checksum:#06x} is wrong")
    check(packet.total_length <= len(frame.payload),
          f"IPv4 total length {packet.total_length} is more than the packet's "
          f"{len(frame.payload)} bytes")
    check(not packet.flags_offset & (FLAG_MORE_FRAGMENTS | FRAGMENT_OFFSET),
          f"the kernel sent a fragment (flags/offset {packet.flags_offset:#06x})")
    check(packet.ttl > 0, "IPv4 TTL 0")
    check((packet.source, packet.destination, packet.protocol) == (source, destination,
                                                                    protocol),
          f"IPv4 {ip_text(packet.source)} -> {ip_text(packet.destination)} protocol "
          f"{packet.protocol}; expected {ip_text(source)} -> {ip_text(destination)} "
          f"protocol {protocol}")
    require_padding(frame, packet.trailer)
    return packet


def require_padding(frame, trailer):
    """Bytes after the packet are allowed only as zero padding up to Ethernet's 60 bytes."""
    if trailer:
        check(len(frame.raw) <= MIN_FRAME and not any(trailer),
              f"{len(trailer)} bytes follow the packet in a {len(frame.raw)}-byte frame: "
              f"{trailer[:16].hex()}")


def require_echo_reply(s, frame, identifier, sequence, data):
    check(frame.destination == s.peer.mac and frame.source == s.kernel.mac,
          f"the echo reply goes {mac_text(frame.source)} -> {mac_text(frame.destination)}; "
          f"expected {mac_text(s.kernel.mac)} -> {mac_text(s.peer.mac)}")
    packet = require_ipv4(frame, s.kernel.ip, s.peer.ip, PROTOCOL_ICMP)
    expected = icmp_echo(ICMP_ECHO_REPLY, identifier, sequence, data)
    if packet.payload == expected:
        return
    if len(packet.payload) != len(expected):
        fail(f"the reply to a {len(data)}-byte ping carries {len(packet.payload) - 8} bytes")
    if packet.payload[:2] != expected[:2]:
        fail(f"ICMP type/code {packet.payload[0]}/{packet.payload[1]}, not 0/0 (echo reply)")
    if packet.payload[4:8] != expected[4:8]:
        fail(f"the reply's identifier/sequence {packet.payload[4:8].hex()} differ from the "
             f"request's {expected[4:8].hex()}")
    if packet.payload[8:] != expected[8:]:
        first = next(i for i, (a, b) in enumerate(zip(packet.payload[8:], data)) if a != b)
        fail(f"the reply's data differs from the request's at byte {first} of {len(data)}")
    fail(f"the ICMP checksum is {packet.payload[2:4].hex()}, expected {expected[2:4].hex()}")


def require_arp_reply(s, frame):
    check(frame.destination == s.peer.mac and frame.source == s.kernel.mac,
          f"the ARP reply goes {mac_text(frame.source)} -> {mac_text(frame.destination)}; "
          f"expected {mac_text(s.kernel.mac)} -> {mac_text(s.peer.mac)}")
    packet = parse_arp(frame.payload)
    fields = (packet.hardware, packet.protocol, packet.hardware_size, packet.protocol_size,
              packet.operation, packet.sender_mac, packet.sender_ip, packet.target_mac,
              packet.target_ip)
    expected = (1, ETHERTYPE_IPV4, 6, 4, ARP_REPLY, s.kernel.mac, s.kernel.ip, s.peer.mac,
                s.peer.ip)
    names = ("hardware type", "protocol type", "hardware size", "protocol size", "operation",
             "sender MAC", "sender IP", "target MAC", "target IP")
    wrong = [f"{name} {show(got)} (expected {show(want)})"
             for name, got, want in zip(names, fields, expected) if got != want]
    check(not wrong, "the ARP reply has " + ", ".join(wrong))
    require_padding(frame, packet.trailer)


def show(value):
    if isinstance(value, bytes):
        return mac_text(value) if len(value) == 6 else ip_text(value)
    return f"{value:#x}"


def qemu_function_ids(buses):
    """{(bus, slot, function): (vendor, device)} from QMP query-pci, bridges followed."""
    ids = {}

    def walk(bus_number, devices):
        for device in devices:
            ids[(bus_number, device["slot"], device["function"])] = (
                device["id"]["vendor"], device["id"]["device"])
            bridge = device.get("pci_bridge")
            if bridge:
                walk(bridge["bus"]["secondary"], bridge.get("devices", []))
    for bus in buses:
        walk(bus["bus"], bus["devices"])
    return ids


def bdf(function):
    return "{:02x}:{:02x}.{:x}".format(*function)
