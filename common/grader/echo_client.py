#!/usr/bin/python3
"""Echo clients: send seeded random bytes to a TCP echo server and check every byte returns.

    echo_client.py HOST PORT [--clients N] [--size BYTES] [--seed S] [--timeout SECONDS]

All clients run at once in one thread (non-blocking sockets), each sending while it reads,
so neither side's buffers can deadlock. A client sends its bytes, then shuts down its
sending side; it is done when the server has closed and exactly the bytes sent came back.
Prints one JSON object: {"ok", "seconds", "bytes", "failures": [...]}; exits 0 if every
client was ok. The grader runs it inside a network namespace; the tests and the benchmark
also import run_clients().
"""
import argparse
import json
import random
import selectors
import socket
import sys
import time

CHUNK = 65536


class Client:
    def __init__(self, number, host, port, size, seed):
        self.number = number
        self.data = random.Random(f"{seed}:{number}").randbytes(size)
        self.sent = 0
        self.received = 0
        self.failure = None
        self.done = False
        self.ramp = False
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setblocking(False)
        self.socket.connect_ex((host, port))

    @classmethod
    def never_started(cls, number, size):
        client = cls.__new__(cls)
        client.number, client.data, client.sent, client.received = number, bytes(size), 0, 0
        client.fail("never started: the clients before it did not get their first byte back")
        return client

    def fail(self, reason):
        self.failure = f"client {self.number}: {reason} (sent {self.sent}, " \
                       f"received {self.received} of {len(self.data)} bytes)"
        self.done = True

    def on_writable(self):
        limit = len(self.data) if self.received or not self.ramp else 1
        try:
            count = self.socket.send(self.data[self.sent:min(limit, self.sent + CHUNK)])
        except BlockingIOError:
            return
        except OSError as error:
            return self.fail(f"send failed: {error.strerror or error}")
        self.sent += count
        if self.sent == len(self.data):
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError as error:
                self.fail(f"shutdown failed: {error.strerror or error}")

    def on_readable(self):
        try:
            chunk = self.socket.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError as error:
            return self.fail(f"receive failed: {error.strerror or error}")
        if not chunk:
            if self.received != len(self.data):
                return self.fail("the server closed the connection early")
            self.done = True
            return
        expected = self.data[self.received:self.received + len(chunk)]
        if chunk != expected:
            wrong = next((i for i, (a, b) in enumerate(zip(chunk, expected)) if a != b),
                         len(expected))
            return self.fail(f"byte {self.received + wrong} came back wrong")
        self.received += len(chunk)

    def wants_to_write(self):
        # Until its first byte has come back, a client in a ramp sends only that byte.
        limit = len(self.data) if self.received or not self.ramp else 1
        return self.sent < limit


def run_clients(host, port, clients=1, size=1 << 20, seed=0, timeout=60.0, ramp=False,
                stall=None):
    """Run the clients; return {"ok", "seconds", "bytes", "failures"}.

    stall: give up when no client has sent or received a byte for that many seconds.

    ramp: connect one client at a time, the next once the previous one's first byte has
    come back; then all of them stream at once. QEMU's user networking accepts forwarded
    connections from a listen backlog of 1, so a burst of connects would be lost there
    before the kernel ever sees it.
    """
    started = time.monotonic()
    selector = selectors.DefaultSelector()
    waiting = list(range(clients))
    everyone, active = [], []

    def start_next():
        client = Client(waiting.pop(0), host, port, size, seed)
        client.ramp = ramp
        selector.register(client.socket, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
        everyone.append(client)
        active.append(client)

    while waiting and (not ramp or not everyone):
        start_next()
    deadline = started + timeout
    progress, last_progress = -1, time.monotonic()
    while active and time.monotonic() < deadline:
        moved = sum(client.sent + client.received for client in everyone)
        if moved != progress:
            progress, last_progress = moved, time.monotonic()
        elif stall and time.monotonic() - last_progress > stall:
            break
        for key, events in selector.select(timeout=min(0.5, deadline - time.monotonic())):
            client = key.data
            if events & selectors.EVENT_WRITE and client.wants_to_write():
                client.on_writable()
            if events & selectors.EVENT_READ and not client.done:
                client.on_readable()
            if client.done:
                selector.unregister(client.socket)
                client.socket.close()
                active.remove(client)
            elif not client.wants_to_write():
                selector.modify(client.socket, selectors.EVENT_READ, client)
            else:
                selector.modify(client.socket, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                client)
        if waiting and ramp and (everyone[-1].received or everyone[-1].done):
            start_next()
    for client in active:
        stalled = stall and time.monotonic() - last_progress > stall
        client.fail(f"no byte moved for {stall:g}s" if stalled else f"not done after {timeout:g}s")
        client.socket.close()
    for number in waiting:
        everyone.append(Client.never_started(number, size))
    selector.close()
    failures = [client.failure for client in everyone if client.failure]
    return {"ok": not failures, "seconds": time.monotonic() - started,
            "bytes": sum(client.received for client in everyone), "failures": failures}


def main(argv):
    parser = argparse.ArgumentParser(prog="echo_client.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--stall", type=float, metavar="SECONDS",
                        help="give up when no byte moves for this long")
    parser.add_argument("--ramp", action="store_true",
                        help="connect one client at a time (see run_clients)")
    args = parser.parse_args(argv)
    result = run_clients(args.host, args.port, args.clients, args.size, args.seed, args.timeout,
                         args.ramp, args.stall)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
