"""http_clients: real HTTP clients pointed at the kernel's server, for the tests of step 07 on.

QEMU's user networking forwards a free port on 127.0.0.1 to the guest's port 80 (nic.py picks
the port and builds the NIC arguments). On top of that:

- Server: the kernel's server as the host sees it. call() is one request through Python's
  http.client; exchange() sends raw bytes on a fresh socket and reads the reply with Reader.
- Reader: reads HTTP/1.1 responses off a socket byte-exactly (Content-Length, chunked, or up
  to the close), because the tests must see the framing the kernel chose, which http.client
  hides; it also reads several pipelined responses from one connection.
- check_error(): OpenAI's error shape, {"error": {"message", "type", "code"}}.
- What the placeholder model of step 07 answers (its tokens are bytes and it replays the
  prompt), for assertions that only hold while it runs: placeholder_* functions.
- curl() and the official `openai` npm package (common/npm), installed with `npm ci` when
  node_modules is missing.
"""
import contextlib
import fcntl
import http.client
import json
import math
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

import nic
import shell
from gradelib import REPO, check, fail

GUEST_PORT = 80
NPM_DIR = REPO / "common" / "npm"
# The statuses the server documents for requests it refuses.
ERROR_STATUSES = (400, 404, 405, 408, 411, 413, 431, 501, 503, 505)


def boot_http(m, cmdline=None, **boot_arguments):
    """Boot with port forwarding to the guest's port 80 and wait until the server listens."""
    port = nic.free_port()
    m.boot(cmdline=cmdline, extra_args=nic.user_nic(forwards=[(port, GUEST_PORT)]),
           **boot_arguments)
    m.expect(rf"^http: listening on port {GUEST_PORT}$")
    m.expect(r"^ready$")
    return Server(m, port)


@dataclass
class Response:
    status: int
    reason: str
    headers: list            # [(name, value)] in the order received
    body: bytes
    framing: str = ""        # "length", "chunked" or "close"
    raw_head: bytes = b""

    def header(self, name):
        """The first value of a header (case-insensitive name), or None."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def header_values(self, name):
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self, what="the response"):
        """The body parsed as JSON; fails the test if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as error:
            fail(f"{what} (status {self.status}) is not JSON ({error}): {self.body[:300]!r}")

    def describe(self):
        return f"HTTP {self.status} {self.reason}, body {self.body[:200]!r}"


class ConnectionClosed(Exception):
    """The server closed the connection before a whole response arrived."""

    def __init__(self, received):
        super().__init__(f"the connection closed after {len(received)} bytes of a response: "
                         f"{bytes(received[:200])!r}")
        self.received = bytes(received)


class Reader:
    """Reads responses from one socket; bytes after a response stay for the next one."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.timeout = timeout
        self.buffer = bytearray()
        self.closed = False
        self.total = 0  # bytes received on this socket so far

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
        self.buffer += data
        self.total += len(data)
        return bool(data)

    def _take_line(self, deadline, what):
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > 65536:
                raise ProtocolError(f"{what} is longer than 64 KiB without a CRLF")
            if not self._fill(deadline):
                raise ConnectionClosed(self.buffer)
        line, _, rest = bytes(self.buffer).partition(b"\r\n")
        self.buffer[:] = rest
        return line

    def _take(self, count, deadline):
        while len(self.buffer) < count:
            if not self._fill(deadline):
                raise ConnectionClosed(self.buffer)
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def wait_close(self, timeout):
        """True if the server closes the connection within timeout with nothing more to say."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(ConnectionResetError):
            while not self.closed:
                try:
                    self._fill(deadline)
                except socket.timeout:
                    return False
        return not self.buffer

    def response(self, request_method="GET"):
        """The next whole response, or None if the connection closed before its first byte."""
        deadline = time.monotonic() + self.timeout
        if not self.buffer and not self.closed and not self._fill(deadline):
            return None
        if not self.buffer:
            return None
        status_line = self._take_line(deadline, "the status line")
        match = re.fullmatch(rb"HTTP/1\.([01]) (\d{3}) ([^\r\n]*)", status_line)
        if not match:
            raise ProtocolError(f"malformed status line {status_line[:100]!r}")
        status = int(match[2])
        head = [status_line]
        headers = []
        while True:
            line = self._take_line(deadline, "a header line")
            head.append(line)
            if not line:
                break
            name, colon, value = line.partition(b":")
            if not colon or not re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
                raise ProtocolError(f"malformed header line {line[:100]!r}")
            headers.append((name.decode(), value.strip().decode("latin-1")))
        response = Response(status, match[3].decode("latin-1"), headers, b"",
                            raw_head=b"\r\n".join(head) + b"\r\n")
        self._read_body(response, request_method, deadline)
        return response

    def _read_body(self, response, request_method, deadline):
        lengths = response.header_values("Content-Length")
        encoding = response.header("Transfer-Encoding")
        if len(set(lengths)) > 1 or (lengths and encoding):
            raise ProtocolError(f"ambiguous framing: Content-Length {lengths}, "
                                f"Transfer-Encoding {encoding!r}")
        if request_method == "HEAD" or response.status in (204, 304):
            response.framing = "none"
        elif encoding:
            if encoding.lower() != "chunked":
                raise ProtocolError(f"unexpected Transfer-Encoding {encoding!r}")
            response.framing = "chunked"
            response.body = self._read_chunks(deadline)
        elif lengths:
            if not lengths[0].isdigit():
                raise ProtocolError(f"Content-Length {lengths[0]!r} is not a number")
            response.framing = "length"
            response.body = self._take(int(lengths[0]), deadline)
        else:
            response.framing = "close"
            while self._fill(deadline):
                pass
            response.body = bytes(self.buffer)
            self.buffer.clear()

    def _read_chunks(self, deadline):
        body = bytearray()
        while True:
            size_line = self._take_line(deadline, "a chunk size line")
            if not re.fullmatch(rb"[0-9a-fA-F]{1,15}", size_line):
                raise ProtocolError(f"malformed chunk size line {size_line[:60]!r}")
            size = int(size_line, 16)
            if size == 0:
                if self._take_line(deadline, "the end of the chunked body") != b"":
                    raise ProtocolError("the server sent trailers after a chunked body")
                return bytes(body)
            body += self._take(size, deadline)
            if self._take(2, deadline) != b"\r\n":
                raise ProtocolError("a chunk's data is not followed by CRLF")


class ProtocolError(Exception):
    """The server sent something that is not an HTTP/1.1 response."""


class Server:
    """The kernel's HTTP server, reached through QEMU's port forward."""

    def __init__(self, m, port):
        self.m = m
        self.host = "127.0.0.1"
        self.port = port
        self.scale = m.run.timeout_scale
        self._model = None

    def url(self, path=""):
        return f"http://{self.host}:{self.port}{path}"

    def seconds(self, seconds):
        """A client timeout: seconds on KVM, scaled like the grader's timeouts under TCG."""
        return seconds * self.scale

    def require_running(self, what):
        shell.require_running(self.m, what)

    def connect(self, timeout=10):
        """A new TCP connection to the server (through QEMU's forward)."""
        self.require_running("connecting to the HTTP server")
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.seconds(timeout))
        except OSError as error:
            self.require_running("connecting to the HTTP server")
            fail(f"could not connect to the kernel's HTTP server: {error}")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def exchange(self, data, what, timeout=10, method="GET"):
        """Send data on a fresh connection and return the response (fails if none comes)."""
        with self.connect(timeout) as sock:
            reader = Reader(sock, self.seconds(timeout))
            response = self.read(reader, what, send=lambda: sock.sendall(data), method=method)
        return response

    def read(self, reader, what, send=None, method="GET"):
        """One response from reader, failing the test clearly when there is none."""
        try:
            if send:
                send()
            response = reader.response(method)
        except socket.timeout:
            self.require_running(what)
            fail(f"{what}: no complete response within {reader.timeout:.0f}s "
                 f"(received {bytes(reader.buffer[:200])!r})")
        except (ConnectionClosed, ProtocolError, OSError) as error:
            self.require_running(what)
            fail(f"{what}: {error}")
        if response is None:
            self.require_running(what)
            fail(f"{what}: the server closed the connection without answering "
                 f"(after {reader.total} bytes)")
        return response

    def call(self, method, path, body=None, headers=None, timeout=30):
        """One request through http.client on a new connection. body: bytes, str or a dict
        (sent as JSON). Returns a Response."""
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection(self.host, self.port,
                                                timeout=self.seconds(timeout))
        try:
            connection.request(method, path, body=body, headers=headers)
            return from_http_client(connection.getresponse())
        except (OSError, http.client.HTTPException) as error:
            self.require_running(f"{method} {path}")
            fail(f"{method} {path} through http.client failed: {type(error).__name__}: {error}")
        finally:
            connection.close()

    def call_json(self, method, path, body=None, status=200, timeout=30):
        """call() that requires the status and a JSON body; returns the parsed body."""
        response = self.call(method, path, body, timeout=timeout)
        check(response.status == status,
              f"{method} {path}: expected status {status}, got {response.describe()}")
        check((response.header("Content-Type") or "").startswith("application/json"),
              f"{method} {path}: Content-Type is {response.header('Content-Type')!r}, "
              "not application/json")
        return response.json(f"{method} {path}")

    def health(self, what="after that"):
        """GET /health on a new connection must answer 200 {"status": "ok"}."""
        response = self.call("GET", "/health", timeout=10)
        check(response.status == 200 and response.json().get("status") == "ok",
              f"GET /health {what}: {response.describe()}")

    def model(self):
        """The first model of GET /v1/models (fetched once per boot)."""
        if self._model is None:
            models = self.call_json("GET", "/v1/models")
            check(isinstance(models.get("data"), list) and models["data"],
                  f"GET /v1/models lists no model: {models}")
            self._model = models["data"][0]
        return self._model

    def is_placeholder(self):
        """Step 07's placeholder model says so in its description."""
        meta = self.model().get("meta") or {}
        return str(meta.get("description", "")).startswith("placeholder")

    def context_length(self):
        return int((self.model().get("meta") or {}).get("n_ctx_train", 0)) or None

    def embedding_length(self):
        return int((self.model().get("meta") or {}).get("n_embd", 0)) or None


def from_http_client(response):
    body = response.read()
    return Response(response.status, response.reason, list(response.getheaders()), body,
                    "chunked" if response.chunked else "length")


# ---------------------------------------------------------------------------------------------
# What answers look like.

def check_error(response, status, what, mentions=()):
    """The response has `status` and OpenAI's error shape; its message mentions each word of
    `mentions` (case-insensitive, as a whole word). Returns the message."""
    check(response.status == status, f"{what}: expected status {status}, got {response.describe()}")
    check((response.header("Content-Type") or "").startswith("application/json"),
          f"{what}: the error's Content-Type is {response.header('Content-Type')!r}")
    body = response.json(what)
    error = body.get("error") if isinstance(body, dict) else None
    check(isinstance(error, dict) and {"message", "type", "code"} <= set(error),
          f"{what}: the body is not {{\"error\": {{\"message\", \"type\", \"code\"}}}}: {body}")
    message = error["message"]
    check(isinstance(message, str) and message.strip(), f"{what}: empty error message: {body}")
    check(isinstance(error["type"], str) and error["type"], f"{what}: no error type: {body}")
    for word in mentions:
        check(re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", message, re.IGNORECASE),
              f"{what}: the error message {message!r} does not mention {word!r}")
    return message


def check_completion(body, what, chat=False):
    """The shape of a (chat) completion, not streamed. Returns the text."""
    check(body.get("object") == ("chat.completion" if chat else "text_completion"),
          f"{what}: object is {body.get('object')!r}")
    check(isinstance(body.get("id"), str) and body["id"], f"{what}: no id: {body}")
    check(isinstance(body.get("created"), int), f"{what}: created is not an integer: {body}")
    check(isinstance(body.get("model"), str), f"{what}: no model: {body}")
    choices = body.get("choices")
    check(isinstance(choices, list) and len(choices) == 1, f"{what}: choices: {choices}")
    choice = choices[0]
    check(choice.get("index") == 0, f"{what}: choice index: {choice}")
    check(choice.get("finish_reason") in ("stop", "length"), f"{what}: finish_reason: {choice}")
    if chat:
        message = choice.get("message") or {}
        check(message.get("role") == "assistant" and isinstance(message.get("content"), str),
              f"{what}: message: {choice}")
        text = message["content"]
    else:
        check(isinstance(choice.get("text"), str), f"{what}: text: {choice}")
        text = choice["text"]
    check_usage(body.get("usage"), what)
    return text


def check_usage(usage, what):
    check(isinstance(usage, dict) and all(isinstance(usage.get(key), int) for key in
                                          ("prompt_tokens", "completion_tokens", "total_tokens")),
          f"{what}: usage: {usage}")
    check(usage["prompt_tokens"] + usage["completion_tokens"] == usage["total_tokens"],
          f"{what}: usage does not add up: {usage}")


def parse_sse(body, what):
    """The JSON events of a Server-Sent Events body that ends with `data: [DONE]`."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    check(text.endswith("\n\n"), f"{what}: the stream does not end with a blank line: "
                                 f"{text[-200:]!r}")
    blocks = text[:-2].split("\n\n")
    check(blocks and blocks[-1] == "data: [DONE]",
          f"{what}: the stream does not end with `data: [DONE]`: {text[-200:]!r}")
    events = []
    for block in blocks[:-1]:
        check(block.startswith("data: ") and "\n" not in block,
              f"{what}: not a one-line `data:` event: {block[:200]!r}")
        try:
            events.append(json.loads(block[len("data: "):]))
        except ValueError as error:
            fail(f"{what}: an event is not JSON ({error}): {block[:200]!r}")
    check(events, f"{what}: the stream has no events before [DONE]")
    return events


def stream_text(events, what, chat=False):
    """The text of a stream's events, checking each event's shape. The last event, and only
    it, has a finish_reason; it carries the usage."""
    pieces = []
    for n, event in enumerate(events):
        check(event.get("object") == ("chat.completion.chunk" if chat else "text_completion"),
              f"{what}: event {n} object is {event.get('object')!r}")
        choice = (event.get("choices") or [{}])[0]
        last = n == len(events) - 1
        check((choice.get("finish_reason") in ("stop", "length")) if last
              else choice.get("finish_reason") is None,
              f"{what}: event {n} of {len(events)} has finish_reason "
              f"{choice.get('finish_reason')!r}")
        if chat:
            delta = choice.get("delta") or {}
            check((delta.get("role") == "assistant") == (n == 0),
                  f"{what}: the role must come in the first event only (event {n}: {delta})")
            content = delta.get("content", "")
        else:
            content = choice.get("text")
        check(isinstance(content, str), f"{what}: event {n} has no text: {event}")
        pieces.append(content)
    check_usage(events[-1].get("usage"), f"{what} (last event)")
    return "".join(pieces)


def check_embedding(vector, length, what):
    check(isinstance(vector, list) and all(isinstance(x, (int, float)) and math.isfinite(x)
                                           for x in vector),
          f"{what}: the embedding is not a list of numbers: {str(vector)[:200]}")
    if length:
        check(len(vector) == length, f"{what}: {len(vector)} numbers, the model's n_embd is "
                                     f"{length}")


# ---------------------------------------------------------------------------------------------
# The placeholder model of step 07: tokens are the prompt's bytes and it replays them. These
# give what it must answer, computed from its documented rules.

def placeholder_tokens(text):
    return list(text.encode() if isinstance(text, str) else text)


def placeholder_chat_prompt(messages):
    """The chat template (documented in generate.c) the placeholder replays."""
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages) + "<|assistant|>\n"


def placeholder_embedding(text, length=16):
    """A histogram of the bytes modulo `length`, L2-normalised."""
    buckets = [0] * length
    for byte in placeholder_tokens(text):
        buckets[byte % length] += 1
    norm = math.sqrt(sum(b * b for b in buckets))
    return [b / norm if norm else 0.0 for b in buckets]


def close_enough(a, b, tolerance=1e-5):
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------------
# Raw requests.

def request_bytes(method, path, body=b"", headers=(), version="HTTP/1.1", host=True):
    """A request with Content-Length for a body (none for an empty body on GET)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    lines = [f"{method} {path} {version}"]
    if host:
        lines.append("Host: ringzero")
    lines += list(headers)
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked_head(path, coding="chunked"):
    """The head of a POST whose body follows in the given transfer coding."""
    return f"POST {path} HTTP/1.1\r\nHost: ringzero\r\nTransfer-Encoding: {coding}\r\n\r\n".encode()


def chunked(body, sizes):
    """body in chunked coding, cut into the given chunk sizes (cycling), then the last chunk."""
    out, at, i = bytearray(), 0, 0
    while at < len(body):
        size = sizes[i % len(sizes)]
        piece = body[at:at + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        at, i = at + len(piece), i + 1
    return bytes(out + b"0\r\n\r\n")


# ---------------------------------------------------------------------------------------------
# curl and the openai npm package.

def curl(server, arguments, timeout=30, stdin=None):
    """Run Debian's curl; returns its stdout (bytes). Fails if curl fails."""
    if not shutil.which("curl"):
        fail("curl is not installed (Debian package curl; `make deps` installs it)")
    argv = ["curl", "--silent", "--show-error", "--max-time", str(int(server.seconds(timeout))),
            *arguments]
    server.require_running("running curl")
    result = subprocess.run(argv, input=stdin, capture_output=True,
                            timeout=server.seconds(timeout) + 10)
    if result.returncode != 0:
        server.require_running("curl")
        fail(f"`{' '.join(argv)}` failed with status {result.returncode}: "
             f"{result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def split_curl_include(output, what):
    """curl --include output: (status, headers dict lower-cased, body)."""
    head, separator, body = output.partition(b"\r\n\r\n")
    check(separator, f"{what}: curl printed no response head: {output[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    check(match, f"{what}: status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(match[1]), headers, body


def ensure_npm_packages():
    """node_modules of common/npm, installed from package-lock.json when missing."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            fail(f"{tool} is not installed (Debian packages nodejs and npm; `make deps`)")
    marker = NPM_DIR / "node_modules" / ".package-lock.json"
    # One grader at a time installs; the lock file itself is what we lock.
    with open(NPM_DIR / "package-lock.json") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.stat().st_mtime >= (NPM_DIR / "package-lock.json").stat().st_mtime:
            return
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NPM_DIR,
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            output = (result.stderr + result.stdout).splitlines()
            errors = [line for line in output if line.startswith(("npm error", "npm ERR!"))]
            fail("`npm ci` in common/npm failed, so the openai package cannot be tested "
                 f"(status {result.returncode}): {' | '.join((errors or output)[:4])[:600]}")


def run_node(server, script, arguments, timeout=120):
    """Run a node script of common/npm; returns its last stdout line parsed as JSON."""
    ensure_npm_packages()
    argv = ["node", str(NPM_DIR / script), *arguments]
    try:
        result = subprocess.run(argv, cwd=NPM_DIR, capture_output=True, text=True,
                                timeout=server.seconds(timeout))
    except subprocess.TimeoutExpired:
        server.require_running(f"node {script}")
        fail(f"node {script} did not finish within {server.seconds(timeout):.0f}s")
    lines = result.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        server.require_running(f"node {script}")
        fail(f"node {script} exited with status {result.returncode} without a report: "
             f"{(result.stderr or result.stdout).strip()[-800:]}")
    report["exit_status"] = result.returncode
    return report
