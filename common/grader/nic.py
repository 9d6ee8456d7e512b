"""nic: the kernel's e1000 on QEMU's command line.

- user_nic(): QEMU user networking (slirp), with ports forwarded from 127.0.0.1 (free_port()).
- DgramCable: QEMU 7.2's `-netdev dgram` between two unix datagram sockets, the test holding
  one end of the cable: the scripted wire (wire.py) and the lossy relay (lossy.py) start here.
"""
import random
import socket


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


class DgramCable:
    """The test's end of the e1000's cable: a unix datagram socket in the run's temp dir.

    QEMU binds the other socket (qemu_path) and sends each frame the e1000 transmits to
    self.socket as one datagram; what the test sends to qemu_path, the e1000 receives.
    """

    def __init__(self, m, name):
        self.peer_path = str(m.run.unique_path(f"{name}.sock"))
        self.qemu_path = str(m.run.unique_path(f"{name}-qemu.sock"))
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.peer_path)

    def nic_args(self, mac="52:54:00:12:34:56"):
        netdev = (f"dgram,id=net0,local.type=unix,local.path={self.qemu_path},"
                  f"remote.type=unix,remote.path={self.peer_path}")
        return ["-netdev", netdev, "-device", f"e1000,netdev=net0,mac={mac}"]
