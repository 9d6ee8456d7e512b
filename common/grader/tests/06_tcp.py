"""Step 06: TCP, with the echo (port 7) and discard (port 9) services.

Three kinds of network:
- QEMU user networking with host port forwarding (127.0.0.1, ports picked free at run time):
  many clients at once, and a long transfer, byte-exact.
- A lossy wire: Linux's own TCP stack in a network namespace of the test's own (a TAP device
  at 10.0.2.2/24), joined to the e1000 by lossy.LossyRelay, which drops 20% of the frames in
  each direction and duplicates and reorders others (seeded, so a run can be repeated). The
  kernel keeps its default address 10.0.2.15. Needs root; without it the test fails.
- The scripted wire of step 05 (wire.Wire, tcp_peer.TcpPeer) for what must be exact: resets for
  closed ports, segments with bad checksums ignored, a full connection table refusing one more.
"""
import os
import random
import re
import signal
import socket
import struct
import time

import echo_client
import lossy
import nic
import shell
from frames import (ACK, ETHERTYPE_IPV4, ICMP_ECHO_REQUEST, PROTOCOL_ICMP, PSH, RST, SYN,
                    describe_frame, ethernet, icmp_echo, ipv4)
from gradelib import TestFailure, check, fail, test
from tcp_peer import TcpPeer
from wire import WireSession

ECHO_PORT, DISCARD_PORT = 7, 9
KiB, MiB = 1 << 10, 1 << 20
KERNEL_ADDRESS = "10.0.2.15"  # the kernel's default; the namespace is the gateway 10.0.2.2
LOSS, DUPLICATE, REORDER = 0.20, 0.05, 0.10
LOSSY_SEED = "ringzero-06"
# Linux retransmits at least every second (lossy.PEER_SYSCTLS) and the kernel's backoff should
# stop at a minute (Linux without the cap: two), so 150 s without a byte moving means stuck.
LOSSY_STALL = 150
# The kernel's first retransmission timeout is at most 1 s (RFC 6298's initial RTO; less once
# the handshake gave a round trip); 5 s (15 s under TCG) is far more than a kernel that still
# runs its timers needs, and far less than a flood lasts.
FLOOD_RETRANSMIT_BOUND = 5
# How many flood frames must have reached the kernel for the test to mean anything.
FLOOD_MINIMUM = 500


# ---------------------------------------------------------------------------------------------
# User networking

@test(15, "64 clients at once each echo 64 KiB", timeout=90)
def echo_many_clients(m):
    """64 connections open together through user networking, each streams 64 KiB of its own
    random bytes, and each gets exactly those bytes back before the kernel closes it."""
    port = boot_forwarded(m, ECHO_PORT)
    run_echo(m, port, clients=64, size=64 * KiB)


@test(10, "one client echoes 1 MiB", timeout=60)
def echo_one_mebibyte(m):
    port = boot_forwarded(m, ECHO_PORT)
    run_echo(m, port, clients=1, size=MiB)


@test(5, "discard takes bytes and sends none", timeout=60)
def discard_service(m):
    """256 KiB to port 9: all accepted, nothing comes back, and the kernel closes after us."""
    port = boot_forwarded(m, DISCARD_PORT)
    with socket.create_connection(("127.0.0.1", port), timeout=20 * m.run.timeout_scale) as s:
        s.sendall(random.randbytes(256 * KiB))
        s.shutdown(socket.SHUT_WR)
        try:
            back = s.recv(65536)
        except TimeoutError:
            fail("discard did not close the connection after the client did")
    shell.require_running(m, "the end of the discard transfer")
    check(back == b"", f"discard sent {len(back)} bytes back; it must send none, and close")


def boot_forwarded(m, guest_port, attempts=3):
    """Boot on user networking with 127.0.0.1:<free port> forwarded to guest_port. Another
    program may take the port between the check and QEMU's bind; then try another.

    The kernel pings the gateway at boot: slirp learns the kernel's MAC from its ARP request.
    Without that, slirp's first forwarded SYN waits on an ARP exchange it does not resume:
    the connection starts only when slirp sends the SYN again, 6 s later."""
    for attempt in range(attempts):
        port = nic.free_port()
        shell.boot_with_console(m, extra_args=nic.user_nic([(port, guest_port)]))
        try:
            m.expect(r"^ready$")
            return port
        except TestFailure:
            stderr = m.stderr_path.read_text(errors="replace")
            if "forwarding" not in stderr or attempt == attempts - 1:
                raise


def run_echo(m, port, clients, size):
    seed = random.randrange(1 << 32)
    left = m.deadline - time.monotonic() - 5
    result = echo_client.run_clients("127.0.0.1", port, clients, size, seed, left, ramp=True)
    shell.require_running(m, "the end of the echo transfer")
    failures = result["failures"]
    check(result["ok"], f"{len(failures)} of {clients} echo clients failed: " +
          "; ".join(failures[:3]))


# ---------------------------------------------------------------------------------------------
# The lossy wire

@test(25, "1 MiB echo over a lossy wire", timeout=200)
def echo_lossy_wire(m):
    """Linux in a network namespace echoes 1 MiB through the kernel while the relay drops
    20% of frames each way, duplicates 5% and delays 10% behind the next; every byte must
    come back exactly. The relay's own counts show it really was that bad."""
    trace = m.run.log_dir / "06_echo_lossy_wire.frames.txt"
    trace.unlink(missing_ok=True)
    with lossy.Namespace() as namespace, \
            lossy.LossyRelay(m, namespace.open_tap(), seed=LOSSY_SEED) as relay:
        namespace.tune_tcp_peer()
        m.boot(cmdline="noping", extra_args=relay.nic_args())
        m.expect(r"^ready$")
        relay.set_faults(LOSS, DUPLICATE, REORDER)
        started = time.monotonic()
        result = namespace.run_echo_client(KERNEL_ADDRESS, ECHO_PORT, MiB,
                                           seed=random.randrange(1 << 32),
                                           timeout=max(10.0, m.deadline - time.monotonic() - 5),
                                           stall=LOSSY_STALL)
        seconds = time.monotonic() - started
        relay.set_faults()
        shell.require_running(m, "the end of the lossy transfer")
        check(relay.error is None, f"grader error: the relay failed: {relay.error}")
        wire = relay_summary(relay.statistics())
        if not result["ok"]:
            relay.write_trace(trace)
            fail(f"the 1 MiB echo over the lossy wire failed after {seconds:.0f}s: "
                 f"{'; '.join(result['failures'][:2])} (wire: {wire}; the last frames are in "
                 f"{trace})")
        for name, counts in relay.statistics().items():
            check(counts["frames"] > 500 and 0.1 < counts["dropped"] / counts["frames"] < 0.3
                  and counts["duplicated"] and counts["reordered"],
                  f"grader error: the relay did not damage the {name} traffic as meant: {wire}")


def relay_summary(statistics):
    return "; ".join(f"{name}: {c['frames']} frames, {c['dropped']} dropped, "
                     f"{c['duplicated']} duplicated, {c['reordered']} reordered"
                     for name, c in statistics.items())


# ---------------------------------------------------------------------------------------------
# The scripted wire

@test(10, "a closed port answers with a reset", timeout=30)
def closed_port_reset(m):
    """RFC 793's resets for a closed port: a SYN gets RST+ACK with sequence 0 acknowledging
    the SYN; a stray ACK gets a RST whose sequence number is that ACK's acknowledgment
    number; a RST gets nothing."""
    s = WireSession(m)
    s.boot()
    s.introduce()
    port = random.choice([p for p in range(1000, 60000) if p not in (ECHO_PORT, DISCARD_PORT)])
    syn = TcpPeer(s, port)
    syn.send(SYN, options=TcpPeer.MSS_OPTION)
    reply = syn.receive("reset for a SYN to a closed port")
    check(reply.flags & (RST | ACK | SYN) == RST | ACK,
          f"a SYN to closed port {port} got {reply.describe()}; expected RST+ACK")
    check(reply.sequence == 0 and reply.acknowledgment == syn.iss + 1,
          f"the reset for a SYN with sequence {syn.iss} is {reply.describe()}; expected "
          f"seq=0 ack={syn.iss + 1}")
    check(not reply.payload, "the reset carries data")

    stray = TcpPeer(s, port)
    stray.rcv_nxt = random.randrange(1 << 32)
    stray.send(ACK, payload=b"stray")
    reply = stray.receive("reset for a stray ACK")
    check(reply.flags & (RST | SYN) == RST and reply.sequence == stray.rcv_nxt,
          f"an ACK acknowledging {stray.rcv_nxt} to closed port {port} got "
          f"{reply.describe()}; expected RST seq={stray.rcv_nxt}")

    TcpPeer(s, port).send(RST)
    fence_tcp(s, "a RST to a closed port")


@test(10, "a segment with a bad checksum is ignored", timeout=30)
def bad_checksum_ignored(m):
    """On an echo connection a data segment with a wrong checksum gets no ACK and no echo,
    and `tcp` counts it under bad_checksum; the same bytes sent correctly then come back.
    A SYN with a wrong checksum gets no SYN-ACK."""
    s = WireSession(m)
    s.boot()
    s.introduce()
    bad_syn = TcpPeer(s, ECHO_PORT)
    bad_syn.send(SYN, options=TcpPeer.MSS_OPTION, bad_checksum=True)
    fence_tcp(s, "a SYN with a bad checksum")

    peer = TcpPeer(s, ECHO_PORT)
    peer.connect()
    before, _ = shell.tcp_status(m)
    data = random.randbytes(100)
    peer.send(ACK | PSH, payload=data, sequence=peer.snd_nxt, bad_checksum=True)
    fence_tcp(s, "a data segment with a bad checksum")
    after, _ = shell.tcp_status(m)
    check(after.get("bad_checksum", 0) - before.get("bad_checksum", 0) == 1,
          f"`tcp` bad_checksum went from {before.get('bad_checksum')} to "
          f"{after.get('bad_checksum')} for one bad segment")

    peer.send(ACK | PSH, payload=data)
    echoed = peer.read(len(data), "the echo of the good segment")
    check(echoed == data, "the echo differs from the bytes sent")
    peer.close()


@test(10, "the connection table is sized from memory", timeout=60)
def table_sized_from_memory(m):
    """The kernel boots four times and says each time how many connections its table holds
    (`tcp: room for N connections`): with 64 MiB of memory fewer than with 256 MiB, with 256
    MiB (the grader's default, and less than `make run` gives step 09) at least 256, with
    `connections=40` on the command line exactly 40, and with `connections=5000`, beyond the
    table's limit, a console line that says the option is ignored, and the size memory gives."""
    rooms = {}
    for memory, cmdline in (("64M", None), ("256M", None), ("256M", "connections=40"),
                            ("256M", "connections=5000")):
        m.boot(memory=memory, cmdline=cmdline)
        rooms[memory, cmdline] = int(m.expect(r"^tcp: room for (\d+) connections$")[1])
        m.expect(r"^ready$")
    small, large, asked, refused = rooms.values()
    check(large >= 256, f"with 256 MiB the table holds {large} connections, fewer than 256")
    check(small < large, f"the table holds {small} connections with 64 MiB and {large} with "
          f"256 MiB: it does not follow the memory")
    check(asked == 40, f"with connections=40 the table holds {asked} connections")
    check(re.search(r"^cmdline: connections=5000 is not a number from 1 to 1024; ignored$",
                    m.output, re.M), "connections=5000 was not reported as ignored")
    check(abs(refused - large) <= 8, f"with connections=5000 ignored the table holds {refused} "
          f"connections; memory alone gave {large}")


@test(15, "a full connection table refuses cleanly", timeout=90)
def connection_table_full(m):
    """Booted with `connections=40`, `tcp` says connections=0/40. 40 connections to echo are
    opened and kept; one more SYN gets
    no answer at all, neither SYN-ACK nor reset (dropped, so that its client sends it again
    later, as Linux does with a full queue), and `tcp` counts it refused; then every one of the
    N echoes its own bytes and closes; afterwards the table is empty again, and that same SYN,
    sent again as a client's retry would be, is accepted."""
    s = WireSession(m)
    s.boot(extra="noping connections=40")
    s.introduce()
    counters, capacity = shell.tcp_status(m)
    check(counters["connections"] == 0 and capacity == 40,
          f"`tcp` shows connections={counters['connections']}/{capacity} at boot")
    rng = random.Random()
    ports = rng.sample(range(20000, 60000), capacity + 1)
    peers = [TcpPeer(s, ECHO_PORT, port, rng) for port in ports[:capacity]]
    for peer in peers:
        peer.connect()
    before, _ = shell.tcp_status(m)
    check(before["connections"] == capacity, f"{capacity} connections are open, `tcp` "
          f"counts {before['connections']}")

    extra = TcpPeer(s, ECHO_PORT, ports[capacity], rng)
    extra.send(SYN, options=TcpPeer.MSS_OPTION)
    answers = s.wire.quiet_for(2, extra.is_mine)
    check(not answers, f"with {capacity} of {capacity} connections in use a new SYN must be "
          f"dropped, unanswered; the kernel sent {describe_frame(answers[0]) if answers else ''}")
    after, _ = shell.tcp_status(m)
    check(after["refused"] == before["refused"] + 1, f"`tcp` counted refused="
          f"{after['refused']} after one dropped SYN (it was {before['refused']})")

    for number, peer in enumerate(peers):
        data = f"connection {number} on port {peer.source_port}: ".encode() + rng.randbytes(20)
        peer.send(ACK | PSH, payload=data)
        check(peer.read(len(data), f"connection {number}'s echo") == data,
              f"connection {number} got back other bytes than it sent")
    for peer in peers:
        peer.close()
    wait_for_connections(m, 0)
    extra.snd_nxt = extra.iss
    extra.connect()


@test(15, "a flood of frames does not starve the timer", timeout=90)
def flood_keeps_timers(m):
    """From a process of its own the test floods the kernel, as fast as the wire takes them,
    with frames it must drop (full-size echo requests with a wrong ICMP checksum). On an echo
    connection it sends 100 bytes and takes the echo without acknowledging it: the kernel must
    send the echo again (same sequence number, same bytes) within 5 s while the flood goes on,
    because its main loop takes only so many frames per pass before it runs its timers. `net`
    then shows that the flood did reach the kernel, and after the flood the connection
    closes cleanly."""
    s = WireSession(m)
    s.boot()
    s.introduce()
    before = shell.net_counters(m)
    peer = TcpPeer(s, ECHO_PORT)
    peer.connect()
    with Flood(s) as flood:
        m.expect_running(1)  # the flood is under way before the data goes out
        data = random.randbytes(100)
        peer.send(ACK | PSH, payload=data)
        first = first_data_segment(peer, "echo of 100 bytes sent during the flood")
        check(first.payload == data, "the echo differs from the bytes sent")
        again = None
        until = time.monotonic() + FLOOD_RETRANSMIT_BOUND * m.run.timeout_scale
        while again is None and time.monotonic() < until:
            segment = peer.poll(max(0.0, until - time.monotonic()) / m.run.timeout_scale)
            if segment is not None and segment.payload:
                again = segment
        sent = flood.stop()
    check(again is not None, f"the test did not acknowledge the echo (seq={first.sequence}),"
          f" and the kernel did not send it again within "
          f"{FLOOD_RETRANSMIT_BOUND * m.run.timeout_scale:.0f}s while {sent} frames flooded "
          f"it: a flood starves its retransmission timer")
    check(again.sequence == first.sequence and again.payload == data,
          f"the unacknowledged echo (seq={first.sequence}, {len(data)} bytes) came again as "
          f"{again.describe()}")
    counted = shell.counter_changes(before, shell.net_counters(m)).get("rx_frames", 0)
    check(counted >= FLOOD_MINIMUM, f"grader error: only {counted} frames reached the kernel "
          f"({sent} sent) while it was flooded; the test needs {FLOOD_MINIMUM}")
    peer.rcv_nxt = (first.sequence + len(data)) % (1 << 32)
    peer.send(ACK)
    peer.close()


def first_data_segment(peer, what):
    """The kernel's next segment on peer's connection that carries data (pure ACKs skipped),
    not acknowledged."""
    while True:
        segment = peer.receive(what, timeout=FLOOD_RETRANSMIT_BOUND)
        check(not segment.flags & RST, f"the kernel reset the connection: {segment.describe()}")
        if segment.payload:
            return segment


class Flood:
    """A process of its own that sends frames the kernel must drop to the e1000, as fast as
    QEMU takes them, from a socket of its own (a full queue blocks it, not the test). A
    process, not a thread: it does not wait for the test's Python, nor the test for it.
    self.frames is how many it sent, once it has stopped."""

    def __init__(self, s):
        # Full-size echo requests with a wrong ICMP checksum: the kernel reads all 1480 bytes
        # to check the sum, and then drops them.
        self.batch = []
        for _ in range(16):
            data = random.randbytes(1472)
            message = icmp_echo(ICMP_ECHO_REQUEST, random.randrange(1 << 16), 0, data)
            wrong = struct.unpack("!H", message[2:4])[0] ^ 0x5555
            message = message[:2] + struct.pack("!H", wrong) + message[4:]
            self.batch.append(ethernet(s.kernel.mac, s.peer.mac, ETHERTYPE_IPV4,
                                       ipv4(s.peer.ip, s.kernel.ip, PROTOCOL_ICMP, message)))
        self.destination = s.wire.qemu_path
        self.frames = 0
        self.pid = None

    def _send_until_stopped(self, report):
        """In the child: send until SIGTERM, then write the count to report and exit."""
        stopping = []
        for signum in (signal.SIGINT, signal.SIGHUP):  # the grader's handlers are not ours
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.settimeout(0.1)
        sent = 0
        try:
            while not stopping:
                for frame in self.batch:
                    if stopping:
                        break
                    try:
                        sender.sendto(frame, self.destination)
                        sent += 1
                    except (TimeoutError, BlockingIOError, InterruptedError):
                        break
        except OSError:
            pass
        os.write(report, str(sent).encode())
        os._exit(0)

    def __enter__(self):
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(read_end)
            try:
                self._send_until_stopped(write_end)
            finally:
                os._exit(1)
        os.close(write_end)
        self.report = read_end
        return self

    def stop(self):
        """Stop the sender; the number of frames it sent."""
        if self.pid:
            os.kill(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)
            self.frames = int(os.read(self.report, 64) or 0)
            os.close(self.report)
            self.pid = None
        return self.frames

    def __exit__(self, *exception):
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            os.close(self.report)
            self.pid = None


def fence_tcp(s, after):
    """After a segment that must be ignored: a good ping gets its reply, and the kernel sends
    nothing else, then or for a moment after."""
    identifier, sequence = random.randrange(1 << 16), random.randrange(1 << 16)
    s.ping(identifier, sequence, b"fence")
    s.wire.receive(s.echo_reply_to(identifier, sequence), 5, f"echo reply after {after}")
    late = s.wire.quiet_for(0.5)
    sent = s.wire.received + late
    check(not sent, f"the kernel answered {after}: " + ", ".join(map(describe_frame, sent)))


def wait_for_connections(m, count, seconds=5):
    """Type `tcp` until it shows `count` connections (closing takes a round trip)."""
    until = time.monotonic() + seconds * m.run.timeout_scale
    while True:
        counters, _ = shell.tcp_status(m)
        if counters["connections"] == count or time.monotonic() > until:
            break
        time.sleep(0.2)
    check(counters["connections"] == count, f"`tcp` still shows {counters['connections']} "
          f"connections; expected {count}")
    return counters
