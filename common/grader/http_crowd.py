#!/usr/bin/python3
"""A crowd of HTTP clients: many keep-alive connections at once, each asking M times.

    http_crowd.py HOST PORT [--clients N] [--requests M] [--timeout SECONDS] [--path /health]

All N clients connect at the same moment (one thread, non-blocking sockets), so the server
sees them as one burst. Each opens one connection and sends M `GET PATH` requests on it, one
after another, reading each response whole (its Content-Length) before the next. A client:
- completed: M responses of 200;
- refused: a 503 with OpenAI's error JSON ({"error": {"message", "type", "code"}}) and a
  Retry-After header; it stops there, as a client told to come back later does;
- or failed, of one kind: connect_failed (the connection was never established), reset
  (the server reset it), closed (the server closed before a whole response), bad_status
  (neither 200 nor 503), bad_503 (a 503 without the error JSON or Retry-After), malformed
  (not an HTTP/1.1 response with a Content-Length), timeout (not done when the deadline,
  SECONDS after the start, passed).
Prints one JSON object: {"clients", "completed", "refused", "responses" (whole responses
received, of any status), "seconds", "failures": {kind: count}, "examples": [...]}; exits 0
if no client failed. The grader runs it inside a network namespace (lossy.Namespace); tests
may also import run_crowd().
"""
import argparse
import errno
import json
import resource
import selectors
import socket
import sys
import time

CHUNK = 65536
MAX_HEAD = 16384
EXAMPLES = 5


class Failure(Exception):
    """Ends a client: kind is one of the failure kinds of the module's docstring."""

    def __init__(self, kind, detail):
        super().__init__(detail)
        self.kind = kind


class Client:
    """One connection: send a request, read its response, repeat; outcome says how it ended."""

    def __init__(self, number, address, request, requests):
        self.number = number
        self.request = request
        self.requests = requests
        self.responses = 0
        self.outcome = None  # "completed", "refused" or a Failure kind
        self.detail = ""
        self.connected = False
        self.unsent = b""
        self.received = bytearray()
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setblocking(False)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.connect_ex(address)

    def events(self):
        if not self.connected or self.unsent:
            return selectors.EVENT_WRITE
        return selectors.EVENT_READ

    def on_ready(self, events):
        """Make what progress the socket allows; a Failure ends the client."""
        try:
            if not self.connected:
                self._finish_connect()
            if self.unsent and events & selectors.EVENT_WRITE:
                self.unsent = self.unsent[self.socket.send(self.unsent):]
            if events & selectors.EVENT_READ:
                self._receive()
        except BlockingIOError:
            pass
        except ConnectionResetError:
            raise Failure("reset", "connection reset by peer")
        except BrokenPipeError:
            raise Failure("closed", "the server closed while the request was being sent")

    def _finish_connect(self):
        error = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise Failure("connect_failed", f"connect failed: {errno.errorcode.get(error, error)}")
        self.connected = True
        self.unsent = self.request

    def _receive(self):
        data = self.socket.recv(CHUNK)
        if not data:
            raise Failure("closed", "the server closed the connection" +
                          (f" {len(self.received)} bytes into a response" if self.received
                           else ""))
        self.received += data
        while self.outcome is None and (response := take_response(self.received)):
            self._on_response(*response)

    def _on_response(self, status, headers, body):
        self.responses += 1
        if status == 503:
            check_refusal(headers, body)
            self.outcome = "refused"
        elif status != 200:
            raise Failure("bad_status", f"status {status}: {body[:100]!r}")
        elif self.responses == self.requests:
            self.outcome = "completed"
        elif self.received:
            raise Failure("malformed", f"{len(self.received)} bytes after response "
                                       f"{self.responses}, before its next request")
        else:
            self.unsent = self.request

    def describe(self):
        return f"client {self.number}: {self.outcome} after {self.responses} of " \
               f"{self.requests} responses" + \
               (f" ({self.detail})" if self.detail else "")


def take_response(buffer):
    """(status, {lowercased name: value}, body) of the whole response at buffer's start,
    removed from it; None if it has not all arrived."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise Failure("malformed", f"no end of head in {len(buffer)} bytes")
        return None
    status, headers = parse_head(bytes(buffer[:end]))
    length = headers.get("content-length", "")
    if not length.isdigit():
        raise Failure("malformed", f"status {status} with Content-Length {length or 'missing'}")
    total = end + 4 + int(length)
    if len(buffer) < total:
        return None
    body = bytes(buffer[end + 4:total])
    del buffer[:total]
    return status, headers, body


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version != "HTTP/1.1" or not code.isdigit():
        raise Failure("malformed", f"status line {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise Failure("malformed", f"header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(code), headers


def check_refusal(headers, body):
    """A clean refusal is a 503 with Retry-After and OpenAI's error JSON."""
    if "retry-after" not in headers:
        raise Failure("bad_503", "503 without Retry-After")
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict) or not {"message", "type", "code"} <= set(error):
        raise Failure("bad_503", f"503 whose body is not OpenAI's error JSON: {body[:100]!r}")


def request_bytes(path):
    return f"GET {path} HTTP/1.1\r\nHost: ringzero\r\n\r\n".encode()


def allow_open_files(count):
    """Raise the soft limit on open files to count, if the hard limit lets us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def run_crowd(host, port, clients, requests, timeout=60.0, path="/health"):
    """Run the crowd; return the report the module's docstring describes."""
    allow_open_files(clients + 64)
    started = time.monotonic()
    deadline = started + timeout
    selector = selectors.DefaultSelector()
    request = request_bytes(path)
    crowd = [Client(number, (host, port), request, requests) for number in range(clients)]
    for client in crowd:
        selector.register(client.socket, client.events(), client)
    active = len(crowd)
    while active and time.monotonic() < deadline:
        for key, events in selector.select(timeout=max(0.0, deadline - time.monotonic())):
            active -= serve(selector, key.data, events)
    for client in crowd:
        if client.outcome is None:
            end(selector, client, "timeout", "still connecting" if not client.connected
                else f"waiting for response {client.responses + 1}")
    selector.close()
    return report(crowd, time.monotonic() - started)


def serve(selector, client, events):
    """Let a ready client move on; returns 1 if it is done, else 0."""
    try:
        client.on_ready(events)
    except Failure as failure:
        end(selector, client, failure.kind, str(failure))
        return 1
    except OSError as error:
        end(selector, client, "closed", error.strerror or str(error))
        return 1
    if client.outcome:
        end(selector, client, client.outcome)
        return 1
    selector.modify(client.socket, client.events(), client)
    return 0


def end(selector, client, outcome, detail=""):
    client.outcome, client.detail = outcome, detail
    selector.unregister(client.socket)
    client.socket.close()


def report(crowd, seconds):
    failed = [client for client in crowd if client.outcome not in ("completed", "refused")]
    failures = {}
    for client in failed:
        failures[client.outcome] = failures.get(client.outcome, 0) + 1
    # One example of each kind first, so a rare kind is not hidden behind a common one.
    firsts = {client.outcome: client for client in reversed(failed)}
    examples = list(firsts.values()) + [c for c in failed if c not in firsts.values()]
    return {"clients": len(crowd),
            "completed": sum(client.outcome == "completed" for client in crowd),
            "refused": sum(client.outcome == "refused" for client in crowd),
            "responses": sum(client.responses for client in crowd),
            "seconds": round(seconds, 3),
            "failures": failures,
            "examples": [client.describe() for client in examples[:EXAMPLES]]}


def main(argv):
    parser = argparse.ArgumentParser(prog="http_crowd.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds from the start after which unfinished clients fail")
    parser.add_argument("--path", default="/health")
    args = parser.parse_args(argv)
    result = run_crowd(args.host, args.port, args.clients, args.requests, args.timeout,
                       args.path)
    print(json.dumps(result), flush=True)
    return 0 if not result["failures"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
