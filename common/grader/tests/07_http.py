"""Step 07: the HTTP/1.1 server and its API, through real clients.

Every test boots the kernel with QEMU's user networking forwarding a free port on 127.0.0.1
to the guest's port 80, then talks to it the way users will: curl, Python's http.client, the
official `openai` npm package, and raw sockets where the test must control every byte (errors,
pipelining, slow and hostile clients). The crowd tests at the end are the exception: hundreds
of clients at once come from Linux in a network namespace wired to the e1000 (see there).

These tests also run against steps 08 and 09, where a real model replaces the placeholder. So
they assert shapes and behaviour that hold for any model, and check the placeholder's exact
answers (it replays the prompt; its tokens are bytes) only when /v1/models describes the
running model as a placeholder.
"""
import contextlib
import http.client
import json
import random
import re
import socket
import threading
import time

import http_clients as hc
import lossy
import shell
from gradelib import TestFailure, check, fail, test

PROMPT = "ringzero serves its first HTTP request"


# ---------------------------------------------------------------------------------------------
# curl

@test(10, "curl: every endpoint, and a stream read with curl -N", timeout=60)
def curl_endpoints(m):
    """curl against each endpoint: status 200, JSON of the documented shape, HTTP/1.1
    keep-alive framing with a Content-Length; a tokenize/detokenize round trip gives the text
    back; `curl -N` reads a streamed completion as `data:` events ending in `data: [DONE]`."""
    server = hc.boot_http(m)

    def get(path):
        status, headers, body = hc.split_curl_include(
            hc.curl(server, ["--include", server.url(path)]), f"curl {path}")
        check(status == 200, f"curl {path}: status {status}, body {body[:200]!r}")
        check(headers.get("content-length") == str(len(body)),
              f"curl {path}: Content-Length {headers.get('content-length')!r}, "
              f"{len(body)} bytes of body")
        return json.loads(body)

    def post(path, payload):
        status, headers, body = hc.split_curl_include(hc.curl(server, [
            "--include", "--header", "Content-Type: application/json",
            "--data-binary", "@-", server.url(path)], stdin=json.dumps(payload).encode()),
            f"curl {path}")
        check(status == 200, f"curl -d {payload} {path}: status {status}, {body[:300]!r}")
        check(headers.get("content-type", "").startswith("application/json"),
              f"curl {path}: Content-Type {headers.get('content-type')!r}")
        return json.loads(body)

    health = get("/health")
    check(health.get("status") == "ok", f"/health: {health}")
    models = get("/v1/models")
    check(models.get("object") == "list" and models.get("data"), f"/v1/models: {models}")
    entry = models["data"][0]
    check(entry.get("object") == "model" and isinstance(entry.get("id"), str) and entry["id"],
          f"/v1/models entry: {entry}")
    placeholder = server.is_placeholder()

    completion = post("/v1/completions", {"prompt": PROMPT, "max_tokens": 9})
    text = hc.check_completion(completion, "curl /v1/completions")
    messages = [{"role": "user", "content": "Hello from curl"}]
    chat = post("/v1/chat/completions", {"messages": messages, "max_tokens": 30})
    reply = hc.check_completion(chat, "curl /v1/chat/completions", chat=True)
    if placeholder:
        check(text == PROMPT[:9], f"the placeholder replays the prompt; got {text!r}")
        check(reply == hc.placeholder_chat_prompt(messages)[:30],
              f"the placeholder replays the chat template; got {reply!r}")
        check(completion["usage"]["prompt_tokens"] == len(PROMPT.encode()),
              f"prompt_tokens {completion['usage']}, the prompt has {len(PROMPT)} bytes")

    inputs = ["ringzero", "embeddings through curl", "é✓"]
    embeddings = post("/v1/embeddings", {"input": inputs})
    check(embeddings.get("object") == "list" and len(embeddings.get("data", [])) == 3,
          f"/v1/embeddings: {str(embeddings)[:300]}")
    for index, (item, text_in) in enumerate(zip(embeddings["data"], inputs)):
        check(item.get("object") == "embedding" and item.get("index") == index,
              f"/v1/embeddings item {index}: {str(item)[:200]}")
        hc.check_embedding(item.get("embedding"), server.embedding_length(), "curl embedding")
        if placeholder:
            expected = hc.placeholder_embedding(text_in, len(item["embedding"]))
            check(hc.close_enough(item["embedding"], expected),
                  f"embedding of {text_in!r}: {item['embedding']}, expected the normalised "
                  f"byte histogram {[round(x, 6) for x in expected]}")

    text_in = "Tokens, and back: ünïcödé ✓ \"quoted\"\n\ttabbed"
    tokens = post("/tokenize", {"content": text_in}).get("tokens")
    check(isinstance(tokens, list) and tokens and all(isinstance(t, int) for t in tokens),
          f"/tokenize gave {tokens!r}")
    if placeholder:
        check(tokens == hc.placeholder_tokens(text_in), f"placeholder tokens are bytes: {tokens}")
    back = post("/detokenize", {"tokens": tokens}).get("content")
    check(back == text_in, f"/detokenize of /tokenize gave {back!r}, not {text_in!r}")

    streamed = hc.curl(server, ["-N", "--header", "Content-Type: application/json",
                                "--data-binary", json.dumps({"prompt": PROMPT, "max_tokens": 12,
                                                             "stream": True}),
                                server.url("/v1/completions")])
    events = hc.parse_sse(streamed, "curl -N /v1/completions stream")
    streamed_text = hc.stream_text(events, "curl -N stream")
    if placeholder:
        check(streamed_text == PROMPT[:12], f"the streamed text is {streamed_text!r}")


# ---------------------------------------------------------------------------------------------
# Python's http.client

class CountingConnection(http.client.HTTPConnection):
    """An http.client connection that counts the TCP connections it opens."""

    connects = 0

    def connect(self):
        self.connects += 1
        super().connect()


@test(10, "http.client: 100 requests on one keep-alive connection", timeout=60)
def keep_alive_hundred(m):
    """One http.client connection, 100 requests of several kinds in turn: every response is
    right, says `Connection: keep-alive`, and they all came over one TCP connection (the
    client opened one socket, and its local port never changed)."""
    server = hc.boot_http(m)
    placeholder = server.is_placeholder()
    connection = CountingConnection(server.host, server.port, timeout=server.seconds(20))
    local = None
    try:
        for n in range(100):
            kind = n % 4
            if kind == 0:
                connection.request("GET", "/health")
            elif kind == 1:
                connection.request("POST", "/tokenize", body=json.dumps({"content": f"n={n}"}),
                                   headers={"Content-Type": "application/json"})
            elif kind == 2:
                connection.request("GET", "/v1/models")
            else:
                connection.request("POST", "/v1/completions",
                                   body=json.dumps({"prompt": f"request {n}", "max_tokens": 4}),
                                   headers={"Content-Type": "application/json"})
            response = hc.from_http_client(connection.getresponse())
            check(response.status == 200, f"request {n}: {response.describe()}")
            check(response.header("Connection") == "keep-alive",
                  f"request {n}: Connection: {response.header('Connection')!r}")
            body = response.json(f"request {n}")
            if kind == 0:
                check(body.get("status") == "ok", f"request {n}: {body}")
            elif kind == 1 and placeholder:
                check(body.get("tokens") == hc.placeholder_tokens(f"n={n}"),
                      f"request {n}: tokens {body.get('tokens')}")
            elif kind == 1:
                check(isinstance(body.get("tokens"), list) and body["tokens"], f"{n}: {body}")
            elif kind == 2:
                check(body.get("data"), f"request {n}: {body}")
            else:
                text = hc.check_completion(body, f"request {n}")
                if placeholder:
                    check(text == f"request {n}"[:4], f"request {n}: text {text!r}")
            check(connection.sock is not None, f"the server closed the connection after "
                                               f"request {n}")
            port = connection.sock.getsockname()[1]
            check(local in (None, port), f"request {n} went over a new connection")
            local = port
    except (OSError, http.client.HTTPException) as error:
        server.require_running("the keep-alive requests")
        fail(f"keep-alive request failed after {connection.connects} connection(s): "
             f"{type(error).__name__}: {error}")
    finally:
        connection.close()
    check(connection.connects == 1, f"100 requests needed {connection.connects} connections")


@test(10, "32 clients at once, every answer correct", timeout=90)
def thirty_two_clients(m):
    """32 threads, each with its own http.client connection. They connect one after another
    (QEMU's port forward accepts connections through a listen backlog of one, so a burst of
    connects loses some on the host side, before the kernel sees them) and each gets /health;
    then all start together (a barrier) and make requests at once that only each can check:
    its own text tokenized and detokenized back, its own prompt completed, /health. Every
    answer must be right; none may fail."""
    server = hc.boot_http(m)
    placeholder = server.is_placeholder()
    clients = 32
    connecting = threading.Lock()
    barrier = threading.Barrier(clients)
    failures = []

    def client(number):
        text = f"client {number} says {'x' * number}"
        # A real model (step 08 on) answers the 32 completions in turns, a forward pass each,
        # so the last answer comes after all 32 prompts have been read: give it that long.
        connection = http.client.HTTPConnection(server.host, server.port,
                                                timeout=server.seconds(10 if placeholder else 45))
        doing = "connecting"

        def call(method, path, payload=None):
            nonlocal doing
            doing = f"{method} {path}"
            body = json.dumps(payload) if payload is not None else None
            connection.request(method, path, body=body,
                               headers={"Content-Type": "application/json"} if body else {})
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                raise AssertionError(f"{method} {path}: status {response.status}: {data[:200]!r}")
            if response.getheader("Connection") != "keep-alive":
                raise AssertionError(f"{method} {path}: Connection: "
                                     f"{response.getheader('Connection')}")
            return json.loads(data)

        def together():
            tokens = call("POST", "/tokenize", {"content": text})["tokens"]
            back = call("POST", "/detokenize", {"tokens": tokens})["content"]
            if back != text:
                raise AssertionError(f"round trip gave {back!r}")
            completion = call("POST", "/v1/completions", {"prompt": text, "max_tokens": 6})
            got = completion["choices"][0]["text"]
            if not isinstance(got, str) or (placeholder and got != text[:6]):
                raise AssertionError(f"completion {got!r}, expected {text[:6]!r}")
            if call("GET", "/health").get("status") != "ok":
                raise AssertionError("/health is not ok")
            if connection.sock.getsockname()[1] != local_port:
                raise AssertionError("the requests needed a new connection")

        local_port = None
        try:
            with connecting:
                if call("GET", "/health").get("status") != "ok":
                    raise AssertionError("/health is not ok")
                local_port = connection.sock.getsockname()[1]
        except Exception as error:  # every thread's failure is reported, not just the first
            failures.append(f"client {number} ({doing}): {type(error).__name__}: {error}")
        try:
            barrier.wait(timeout=server.seconds(30))
            if local_port is not None:
                together()
        except Exception as error:
            failures.append(f"client {number} ({doing}): {type(error).__name__}: {error}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=server.seconds(60))
    check(not any(thread.is_alive() for thread in threads), "some clients never finished")
    server.require_running("the 32 clients")
    check(not failures, f"{len(failures)} of {clients} clients failed: " + "; ".join(failures[:4]))


@test(10, "responses of many TCP segments, pipelined and chunked requests", timeout=90)
def big_pipelined_chunked(m):
    """- A /detokenize answer over 64 KiB (many TCP segments) arrives whole, its Content-Length
      the exact size, through http.client and a raw socket alike.
    - A chunked request body (http.client's encode_chunked, and a raw one with chunk extensions
      and a trailer sent a few bytes at a time) gets the same answer as the same body sent with
      a Content-Length; so does a 300 KiB chunked body.
    - Four requests in one send() get four responses in order, and the server closes after the
      one that said `Connection: close`.
    - An HTTP/1.0 streamed completion ends with the connection (no chunked coding in 1.0)."""
    server = hc.boot_http(m)
    placeholder = server.is_placeholder()

    text = "ringzero \"big\" \x01\\ answer\n"
    tokens = server.call_json("POST", "/tokenize", {"content": text})["tokens"]
    # Enough repeats for an answer over 64 KiB and, below, a request body over 300 KiB, with
    # any tokenizer: a real model's spends fewer tokens on the text than the placeholder's bytes.
    repeats = max(70000 // len(text), 310000 // len(json.dumps(tokens))) + 1
    big = {"tokens": tokens * repeats}
    response = server.call("POST", "/detokenize", big, timeout=60)
    check(response.status == 200, f"/detokenize of {len(big['tokens'])} tokens: "
                                  f"{response.describe()}")
    check(response.header("Content-Length") == str(len(response.body)),
          f"Content-Length {response.header('Content-Length')} for {len(response.body)} bytes")
    check(len(response.body) > 65536, f"the answer is only {len(response.body)} bytes")
    content = response.json("the big /detokenize")["content"]
    check(content == text * repeats if placeholder else len(content) >= len(text) * repeats - 1,
          f"/detokenize of the tokens repeated {repeats} times gave {len(content)} characters "
          f"(expected {len(text) * repeats}) starting {content[:80]!r}")
    raw = server.exchange(hc.request_bytes("POST", "/detokenize", big), "raw big /detokenize",
                          timeout=60)
    check(raw.framing == "length" and raw.body == response.body,
          f"the raw socket read a different answer ({len(raw.body)} bytes, {raw.framing})")

    # Chunked request bodies.
    body = json.dumps({"content": "chunked " * 40}).encode()
    expected = server.call_json("POST", "/tokenize", body)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=server.seconds(20))
    pieces = [body[i:i + 37] for i in range(0, len(body), 37)]
    connection.request("POST", "/tokenize", body=iter(pieces), encode_chunked=True,
                       headers={"Content-Type": "application/json"})
    got = hc.from_http_client(connection.getresponse())
    connection.close()
    check(got.status == 200 and got.json() == expected,
          f"http.client's chunked body got {got.describe()}, with Content-Length {expected}")

    coded = (f"{len(body[:10]):X};note=first\r\n".encode() + body[:10] + b"\r\n" +
             hc.chunked(body[10:], [1, 7, 100])[:-2] + b"X-Trailer: yes\r\n\r\n")
    head = hc.chunked_head("/tokenize")
    sock = server.connect()
    reader = hc.Reader(sock, server.seconds(20))

    def send_slowly():
        data = head + coded
        for at in range(0, len(data), 50):
            sock.sendall(data[at:at + 50])
            time.sleep(0.01)
    got = server.read(reader, "a chunked body sent in pieces", send=send_slowly)
    sock.close()
    check(got.status == 200 and got.json() == expected,
          f"a chunked body with extensions and a trailer got {got.describe()}")

    big_body = json.dumps(big).encode()
    check(len(big_body) > 300000, "grader error: the big body is too small")
    got = server.exchange(hc.chunked_head("/detokenize") + hc.chunked(big_body, [1000, 4096, 333]),
                          "300 KiB chunked",
                          timeout=60)
    check(got.status == 200 and got.body == response.body,
          f"a 300 KiB chunked body got {len(got.body)} bytes, status {got.status}, not the "
          "answer the same body with a Content-Length got")

    # Pipelining.
    requests = [hc.request_bytes("GET", "/health"),
                hc.request_bytes("POST", "/tokenize", {"content": "first"}),
                hc.chunked_head("/detokenize") +
                hc.chunked(json.dumps({"tokens": expected["tokens"]}).encode(), [5]),
                hc.request_bytes("GET", "/v1/models", headers=["Connection: close"])]
    sock = server.connect()
    reader = hc.Reader(sock, server.seconds(20))
    sock.sendall(b"".join(requests))
    answers = [server.read(reader, f"pipelined response {n + 1} of 4") for n in range(4)]
    check(all(a.status == 200 for a in answers),
          "pipelined statuses: " + ", ".join(a.describe() for a in answers))
    check(answers[0].json().get("status") == "ok", f"pipelined 1: {answers[0].describe()}")
    first = answers[1].json().get("tokens")
    check(first == server.call_json("POST", "/tokenize", {"content": "first"})["tokens"],
          f"pipelined 2 answered {first}, not the tokens of 'first'")
    check(answers[2].json().get("content") == "chunked " * 40,
          f"pipelined 3: {answers[2].describe()}")
    check(answers[3].json().get("object") == "list", f"pipelined 4: {answers[3].describe()}")
    check(answers[3].header("Connection") == "close",
          f"the answer to `Connection: close` says Connection: {answers[3].header('Connection')}")
    check(reader.wait_close(server.seconds(5)),
          "the server did not close the connection after `Connection: close`")
    sock.close()

    # HTTP/1.0: a stream is delimited by the close.
    got = server.exchange(hc.request_bytes("POST", "/v1/completions",
                                           {"prompt": PROMPT, "max_tokens": 7, "stream": True},
                                           version="HTTP/1.0", host=False),
                          "an HTTP/1.0 stream", method="POST")
    check(got.status == 200 and got.framing == "close",
          f"an HTTP/1.0 stream must end with the connection; got {got.framing}: {got.describe()}")
    streamed = hc.stream_text(hc.parse_sse(got.body, "HTTP/1.0 stream"), "HTTP/1.0 stream")
    if placeholder:
        check(streamed == PROMPT[:7], f"HTTP/1.0 stream text {streamed!r}")


# ---------------------------------------------------------------------------------------------
# The openai npm package

@test(10, "the openai npm client: models, completions, chat, streams, embeddings", timeout=90)
def openai_npm(m):
    """common/npm/openai_check.mjs drives the official `openai` package (installed with
    `npm ci` from the committed lock file if node_modules is missing): models.list,
    completions and chat completions with and without stream (iterated), embeddings with the
    client's default base64 encoding and with float, and a 400 surfacing as BadRequestError.
    Every check must pass."""
    server = hc.boot_http(m)
    report = hc.run_node(server, "openai_check.mjs", [server.url("/v1")])
    server.require_running("the openai client")
    failed = [c for c in report["checks"] if not c["ok"]]
    check(not failed, f"{len(failed)} of {len(report['checks'])} openai client checks failed: " +
          "; ".join(f"{c['name']}: {c['error'].splitlines()[0]}" for c in failed))
    check(report["exit_status"] == 0 and len(report["checks"]) == 8,
          f"the openai check script ran {len(report['checks'])} checks, not 8, and exited "
          f"with status {report['exit_status']}")


# ---------------------------------------------------------------------------------------------
# Refused requests

def json_post(path, payload):
    return hc.request_bytes("POST", path, payload, headers=["Content-Type: application/json"])


def field_cases(context_length):
    """(what, request, field the message must name) for bodies a handler must refuse."""
    # Each "ringzero " is at least one token, whatever the tokenizer.
    over_context = "ringzero " * (context_length + 1) if context_length else None
    cases = [
        ("completions: bad JSON", hc.request_bytes("POST", "/v1/completions",
                                                   b'{"prompt": "x",}'), "JSON"),
        ("completions: body not an object", json_post("/v1/completions", [1, 2]), "object"),
        ("completions: no prompt", json_post("/v1/completions", {}), "prompt"),
        ("completions: prompt a number", json_post("/v1/completions", {"prompt": 5}), "prompt"),
        ("completions: max_tokens -1", json_post("/v1/completions",
                                                 {"prompt": "x", "max_tokens": -1}), "max_tokens"),
        ("completions: max_tokens a string", json_post("/v1/completions",
                                                       {"prompt": "x", "max_tokens": "8"}),
         "max_tokens"),
        ("completions: temperature 5", json_post("/v1/completions",
                                                 {"prompt": "x", "temperature": 5}), "temperature"),
        ("completions: top_p 0", json_post("/v1/completions", {"prompt": "x", "top_p": 0}),
         "top_p"),
        ("completions: n 2", json_post("/v1/completions", {"prompt": "x", "n": 2}), "n"),
        ("completions: seed -1", json_post("/v1/completions", {"prompt": "x", "seed": -1}),
         "seed"),
        ("completions: stream \"yes\"", json_post("/v1/completions",
                                                  {"prompt": "x", "stream": "yes"}), "stream"),
        ("completions: five stops", json_post("/v1/completions",
                                              {"prompt": "x", "stop": list("abcde")}), "stop"),
        ("chat: no messages", json_post("/v1/chat/completions", {}), "messages"),
        ("chat: empty messages", json_post("/v1/chat/completions", {"messages": []}), "messages"),
        ("chat: unknown role", json_post("/v1/chat/completions",
                                         {"messages": [{"role": "robot", "content": "x"}]}),
         "messages"),
        ("embeddings: no input", json_post("/v1/embeddings", {}), "input"),
        ("embeddings: 17 inputs", json_post("/v1/embeddings", {"input": ["x"] * 17}), "input"),
        ("embeddings: a number input", json_post("/v1/embeddings", {"input": [1]}), "input"),
        ("tokenize: no content", json_post("/tokenize", {"text": "x"}), "content"),
        ("tokenize: content a number", json_post("/tokenize", {"content": 5}), "content"),
        ("detokenize: token -1", json_post("/detokenize", {"tokens": [-1]}), "tokens"),
        ("detokenize: token 1.5", json_post("/detokenize", {"tokens": [1.5]}), "tokens"),
        ("detokenize: tokens a string", json_post("/detokenize", {"tokens": "abc"}), "tokens"),
    ]
    if over_context:
        cases.append(("completions: prompt longer than the context",
                      json_post("/v1/completions", {"prompt": over_context}), "prompt"))
    return cases


BIG_HEADER = "X-Filler: " + "f" * 9000


def protocol_cases():
    """(what, request, status, words the message must mention, Allow header or None)."""
    r = hc.request_bytes
    no_length = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n"
    return [
        ("unknown path", r("GET", "/v1/nothing"), 404, (), None),
        ("unknown path, POST", json_post("/v2/completions", {"prompt": "x"}), 404, (), None),
        ("GET on a POST path", r("GET", "/v1/completions"), 405, (), "POST"),
        ("DELETE /health", r("DELETE", "/health"), 405, (), "GET"),
        ("PUT /tokenize", r("PUT", "/tokenize", b"{}"), 405, (), "POST"),
        ("POST without a length", no_length, 411, ("Content-Length",), None),
        ("Content-Length over 1 MiB, no body sent",
         b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n", 413,
         ("MiB",), None),
        ("33 header fields", r("GET", "/health", headers=[f"X-{n}: {n}" for n in range(33)]),
         431, (), None),
        ("head over 8 KiB", r("GET", "/health", headers=[BIG_HEADER]), 431, ("KiB",), None),
        ("Transfer-Encoding: gzip", hc.chunked_head("/tokenize", "gzip"), 501, ("chunked",),
         None),
        ("Transfer-Encoding: gzip, chunked", hc.chunked_head("/tokenize", "gzip, chunked"), 501,
         (), None),
        ("HTTP/2.0", r("GET", "/health", version="HTTP/2.0"), 505, ("HTTP",), None),
        ("HTTP/3.1", r("GET", "/health", version="HTTP/3.1"), 505, (), None),
        ("no Host in HTTP/1.1", r("GET", "/health", host=False), 400, ("Host",), None),
        ("two Host fields", r("GET", "/health", headers=["Host: other"]), 400, ("Host",), None),
        ("two Transfer-Encoding fields",
         b"POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, ("Transfer-Encoding",), None),
        ("Content-Length and Transfer-Encoding",
         r("POST", "/tokenize", b"0\r\n\r\n", headers=["Transfer-Encoding: chunked"]), 400,
         ("Content-Length", "Transfer-Encoding"), None),
        ("conflicting Content-Lengths",
         r("POST", "/tokenize", b"{}", headers=["Content-Length: 3"]), 400, ("Content-Length",),
         None),
        ("Content-Length not a number",
         b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400,
         ("Content-Length",), None),
        ("malformed chunk size",
         b"POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
         ("chunk",), None),
        ("chunk longer than its size",
         b"POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"2\r\n{}}\r\n0\r\n\r\n", 400, ("chunk",), None),
        ("header without a colon", b"GET /health HTTP/1.1\r\nHost: x\r\nBroken\r\n\r\n", 400,
         ("header",), None),
        ("space before a header's colon", b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400, (),
         None),
        ("obsolete line folding", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
         400, (), None),
        ("control character in a header",
         b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400, (), None),
        ("NUL in the request line", b"GET /hea\x00lth HTTP/1.1\r\nHost: x\r\n\r\n", 400, (),
         None),
        ("target not a path", b"GET health HTTP/1.1\r\nHost: x\r\n\r\n", 400, ("target",),
         None),
        ("malformed version", b"GET /health HTTP/1.10\r\nHost: x\r\n\r\n", 400, ("version",),
         None),
        ("no version", b"GET /health\r\nHost: x\r\n\r\n", 400, (), None),
        ("method with a bad character", b"G(T /health HTTP/1.1\r\nHost: x\r\n\r\n", 400, (),
         None),
    ]


@test(15, "every refused request gets its status and an error naming the problem", timeout=90)
def refused_requests(m):
    """Each bad request goes on a fresh connection and must get its documented status with
    OpenAI's error body; a 400 for a bad field names the field, a 405 has an Allow header
    listing the path's method. After each one, a keep-alive connection opened before them all
    and a fresh connection are both still served."""
    server = hc.boot_http(m)
    bystander = http.client.HTTPConnection(server.host, server.port, timeout=server.seconds(10))

    def still_serving(what):
        try:
            bystander.request("GET", "/health")
            response = bystander.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            server.require_running(what)
            fail(f"{what}: the keep-alive connection of another client broke: {error}")
        check(response.status == 200, f"{what}: another client's /health got {response.status}")
        server.health(f"after {what}")

    def refused(what, data, status, words, allow=None):
        response = server.exchange(data, what, method="POST")
        hc.check_error(response, status, what, mentions=words)
        if allow:
            check(response.header("Allow") == allow,
                  f"{what}: 405 must carry `Allow: {allow}`; it has {response.header('Allow')!r}")

    # Every case runs, and every wrong answer is reported; a broken server fails at once.
    wrong = []
    still_serving("before any bad request")
    cases = [(what, data, 400, (field,)) for what, data, field in
             field_cases(server.context_length())] + protocol_cases()
    for what, data, status, words, *allow in cases:
        try:
            refused(what, data, status, words, *allow)
        except TestFailure as failure:
            wrong.append(str(failure))
        still_serving(what)
    bystander.close()
    check(not wrong, f"{len(wrong)} of {len(cases)} bad requests got a wrong answer: " +
          "; ".join(wrong))


@test(10, "a refusal reaches clients that already sent their whole request", timeout=60)
def refusal_with_request_sent(m):
    """Real clients send the whole request before they read. A 413 for a 1.1 MiB body that
    was sent in full, and a 413 for a chunked body that grows past 1 MiB, must still reach the
    client as an HTTP response: the server may not reset the connection over the unread bytes
    before its answer is out (lingering close)."""
    server = hc.boot_http(m)
    body = b'{"prompt": "' + b"x" * (1024 * 1024 + 100) + b'"}'
    response = sent_whole(server, hc.request_bytes("POST", "/v1/completions", body),
                          "a 1.1 MiB body sent with its Content-Length")
    hc.check_error(response, 413, "a 1.1 MiB body sent whole", mentions=("MiB",))
    server.health("after the 413")
    response = sent_whole(server, hc.chunked_head("/tokenize") + hc.chunked(body, [65536]),
                          "a 1.1 MiB chunked body sent whole")
    hc.check_error(response, 413, "a 1.1 MiB chunked body sent whole", mentions=("MiB",))
    server.health("after the chunked 413")


def sent_whole(server, data, what):
    """Send all of data from a thread while reading (the server may answer before the end,
    and may stop reading: then sending fails, which is fine), and return the answer."""
    sock = server.connect(30)
    reader = hc.Reader(sock, server.seconds(30))

    def send():
        with contextlib.suppress(OSError):
            sock.sendall(data)
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        return server.read(reader, what)
    finally:
        sock.close()
        sender.join(timeout=server.seconds(30))


@test(10, "more than 48 connections: 503, and the server recovers", timeout=60)
def connection_limit(m):
    """Booted with `connections=64`, the server says it serves 48 connections at once and
    answers 8 more with 503. 48 keep-alive clients each finish a request and stay connected. A
    49th that only waits gets 503 with the error body and `Retry-After`, and so must one that
    sends its request at once (as every real client does). When one of the 48 leaves, a new
    client is served again."""
    server = hc.boot_http(m, cmdline="connections=64")
    check(re.search(r"^http: 48 connections at once, 8 more answered 503$", m.output, re.M),
          "with connections=64 the server does not say `http: 48 connections at once, 8 more "
          "answered 503`")
    held = []
    try:
        for n in range(48):
            sock = server.connect()
            reader = hc.Reader(sock, server.seconds(10))
            response = server.read(reader, f"keep-alive client {n + 1} of 48",
                                   send=lambda: sock.sendall(hc.request_bytes("GET", "/health")))
            check(response.status == 200, f"client {n + 1} of 48: {response.describe()}")
            held.append(sock)
        sock = server.connect()
        response = server.read(hc.Reader(sock, server.seconds(10)),
                               "a 49th client that waits")
        sock.close()
        hc.check_error(response, 503, "a 49th client that waits")
        check(response.header("Retry-After") == "1",
              f"the 503 says Retry-After: {response.header('Retry-After')!r}, not 1")
        for attempt in range(3):
            response = server.exchange(hc.request_bytes("GET", "/health"),
                                       f"a 49th client that sends at once (try {attempt + 1})")
            hc.check_error(response, 503, "a 49th client that sends at once")
        held.pop().close()
        deadline = time.monotonic() + server.seconds(3)
        while True:
            response = server.exchange(hc.request_bytes("GET", "/health"),
                                       "a client after one of the 48 left")
            if response.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(response.status == 200, f"after one of the 48 left: {response.describe()}")
    finally:
        for sock in held:
            sock.close()


# ---------------------------------------------------------------------------------------------
# Slow and hostile clients

@test(10, "slow clients are cut off within ~12 s while others are served", timeout=60)
def slowloris(m):
    """Three slow clients: one sends part of a head and stalls, one trickles a head a byte
    every 0.4 s, one sends a head and part of its body. Each must be cut off (408 with the
    error body, or a close or reset) between 9 and 13 s after it connected (the server allows
    a request 10 s), while /health, asked on a new connection every half second meanwhile,
    always answers within 1 s (3 s under TCG)."""
    server = hc.boot_http(m)
    slow_clients = [
        ("a stalled head", b"GET /health HTTP/1.1\r\nHost: x\r\n", b""),
        ("a trickled head", b"", b"GET /health HTTP/1.1\r\nHost: " + b"x" * 80),
        ("a stalled body", b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                           b"\r\n{\"cont", b""),
    ]
    outcomes = {}

    def slow(name, sock, started, first, trickle):
        """Record (seconds, how it ended): a Response, "close", an OSError, or "never"."""
        reader = hc.Reader(sock, 20)
        ending = "never"
        try:
            sock.sendall(first)
            for byte in trickle or bytes(60):
                if trickle:
                    sock.send(bytes([byte]))
                sock.settimeout(0.4)
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                reader.buffer += data
                ending = reader.response() if data else "close"
                break
        except (OSError, hc.ConnectionClosed, hc.ProtocolError) as error:
            ending = error
        outcomes[name] = (time.monotonic() - started, ending)
        sock.close()

    threads = []
    for name, first, trickle in slow_clients:
        started = time.monotonic()
        sock = server.connect(20)
        threads.append(threading.Thread(target=slow, args=(name, sock, started, first, trickle)))
    for thread in threads:
        thread.start()
    latencies = []
    while any(thread.is_alive() for thread in threads):
        started = time.monotonic()
        server.health("while slow clients hold connections")
        latencies.append(time.monotonic() - started)
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    check(max(latencies) < server.seconds(1),
          f"/health took up to {max(latencies):.2f}s while slow clients were connected")
    for name, (seconds, ending) in outcomes.items():
        check(ending != "never", f"{name}: still connected after {seconds:.0f}s")
        check(9 <= seconds <= 13, f"{name}: cut off after {seconds:.1f}s, not 9-13 s "
                                  f"(the server allows a request 10 s); it ended with {ending!r}")
        if isinstance(ending, hc.Response):
            hc.check_error(ending, 408, name)
        else:
            check(ending == "close" or isinstance(ending, OSError),
                  f"{name}: ended with {ending!r}, neither a 408 nor a close")


def garbage_cases(rng):
    """Random bytes, and valid requests with random damage. Yields (what, bytes, complete),
    complete meaning the bytes hold a whole request head (so an answer is due)."""
    for n in range(50):
        data = rng.randbytes(rng.randrange(1, 400))
        if n % 3 == 0:
            data = rng.choice([b"GET", b"POST", b"\r\n", b"GET / HTTP/1.1\r\n"]) + data
        while any(end in data for end in (b"\n\n", b"\n\r\n")):
            data = data.replace(b"\n\n", b"\n").replace(b"\n\r\n", b"\n")
        yield f"random bytes #{n}", data + b"\r\n\r\n", True
    valid = [hc.request_bytes("GET", "/health"),
             hc.request_bytes("POST", "/v1/completions", {"prompt": "x", "max_tokens": 2}),
             b"POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"d\r\n{\"content\":1}\r\n0\r\n\r\n"]
    for n in range(40):
        data = bytearray(rng.choice(valid))
        for _ in range(rng.randrange(1, 5)):
            at = rng.randrange(len(data))
            action = rng.randrange(4)
            if action == 0:
                data[at] = rng.randrange(256)
            elif action == 1:
                data.insert(at, rng.choice(b"\r\n :\0\x7f\xff0123456789abcdef"))
            elif action == 2:
                del data[at]
            else:
                data[at:at] = data[at:at + rng.randrange(1, 20)]
        yield f"damaged request #{n}", bytes(data), False


@test(10, "garbage never crashes or wedges the server", timeout=120)
def garbage(m):
    """90 seeded random inputs (the seed is in any failure message): random bytes ending in
    a blank line must get an error status with the error body; damaged valid requests may get
    any documented status or need more bytes, but whatever comes back must be well-formed
    HTTP. After every input /health is answered on a new connection."""
    server = hc.boot_http(m)
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    for what, data, complete in garbage_cases(rng):
        what = f"{what} (seed {seed}): {data[:60]!r}"
        sock = server.connect()
        reader = hc.Reader(sock, server.seconds(10) if complete else 1.0)
        try:
            sock.sendall(data)
            response = reader.response()
        except socket.timeout:
            check(not complete, f"{what}: no answer to a complete head")
            response = None
        except (hc.ConnectionClosed, hc.ProtocolError, OSError) as error:
            server.require_running(what)
            fail(f"{what}: {error}")
        finally:
            sock.close()
        if complete:
            check(response is not None, f"{what}: the server closed without answering")
            check(response.status in hc.ERROR_STATUSES,
                  f"{what}: status {response.status} for random bytes")
        if response is not None and response.status >= 400:
            hc.check_error(response, response.status, what)
        elif response is not None:
            check(response.status == 200, f"{what}: {response.describe()}")
        server.health(f"after {what}")


# ---------------------------------------------------------------------------------------------
# A crowd
#
# Hundreds of clients connecting in the same moment cannot come through QEMU's port forward:
# it loses connects from such a burst before the guest ever sees them (it loses some of 512
# even to Linux and nginx as the guest). So the crowd is Linux in a network namespace of the
# test's own, wired straight to the e1000 (lossy.LossyRelay without faults: a plain cable),
# running http_crowd.py; the kernel keeps its default address.

KERNEL_ADDRESS = "10.0.2.15"
# Deadlines on KVM, scaled like every client timeout under TCG: a whole crowd's (it takes a
# few seconds; those whose SYNs are dropped come back after 1, 3, 7, 15 and 31 s), and one
# request's.
CROWD_DEADLINE = 60
ONE_REQUEST_DEADLINE = 10
# Enough frames to hold a whole crowd of 512 (handshakes, 20 requests and answers, closes).
CROWD_TRACE_FRAMES = 60000


@test(20, "256 clients at once, 50 keep-alive requests each, all served", timeout=100)
def crowd_served(m):
    """256 clients connect in the same moment and each sends 50 requests for /health, one
    after another, on its one keep-alive connection. With the grader's 256 MiB the server
    serves several hundred connections at once, so all 256 must be served: every client gets
    its 50 answers, none is refused, reset, closed early or left waiting, and `tcp` shows that
    the kernel sent no reset meanwhile, nor dropped a SYN (the table and the accept queue have
    room for the whole burst). Afterwards /health still answers."""
    with crowd_wire(m, "crowd_served") as namespace:
        served = served_at_once(m)
        check(served >= 256, f"with 256 MiB the server serves only {served} connections at "
                             "once, fewer than a crowd of 256")
        result, changes = crowd_with_counters(m, namespace, clients=256, requests=50)
        check(result["completed"] == 256 and not result["failures"],
              f"256 clients of 50 requests each: {describe_crowd(result, changes)}")
        check_no_resets(changes)
        check(not changes.get("refused"), f"the kernel dropped {changes.get('refused')} SYNs "
              f"of a burst of 256 it has room for (`tcp` counters changed by {changes})")
        check_still_serving(m, namespace)


@test(20, "512 clients against room for 192: served or refused with 503", timeout=100)
def crowd_beyond_capacity(m):
    """Booted with `connections=256`, the server serves 192 connections at once and answers
    32 more with 503. 512 clients connect in the same moment, each to send 20 keep-alive
    requests for /health. Every client must end cleanly: its 20 answers, or a 503 with
    OpenAI's error body and Retry-After. Those beyond even the 503s must still get in: their
    SYNs are dropped, not reset, so Linux sends them again a second or more later, when others
    have left. At least 192 must be served and at least one refused (else the crowd was not
    beyond capacity), and `tcp` shows that the kernel sent no reset. Afterwards /health still
    answers."""
    with crowd_wire(m, "crowd_beyond_capacity", "connections=256") as namespace:
        served = served_at_once(m)
        check(served == 192, f"with connections=256 the server says it serves {served} "
                             "connections at once, not 192")
        result, changes = crowd_with_counters(m, namespace, clients=512, requests=20)
        ended_cleanly = result["completed"] + result["refused"]
        check(ended_cleanly == 512 and not result["failures"],
              f"of 512 clients only {ended_cleanly} were served or refused with a proper 503: "
              f"{describe_crowd(result, changes)}")
        check(result["refused"] >= 1, f"512 clients against 192 served, yet none got a 503: "
                                      f"{describe_crowd(result, changes)}")
        check(result["completed"] >= 192, f"fewer than the 192 the server serves at once "
                                          f"completed: {describe_crowd(result, changes)}")
        check_no_resets(changes)
        check_still_serving(m, namespace)


@contextlib.contextmanager
def crowd_wire(m, name, cmdline=""):
    """Boot with the e1000 cabled to a namespace of the test's own, the shell's input
    connected; yields the namespace. On a failure the relay's latest frames are saved."""
    trace = m.run.log_dir / f"07_{name}.frames.txt"
    trace.unlink(missing_ok=True)
    with lossy.Namespace() as namespace, \
            lossy.LossyRelay(m, namespace.open_tap(), seed=name,
                             trace_length=CROWD_TRACE_FRAMES) as relay:
        shell.boot_with_console(m, cmdline=f"noping {cmdline}".strip(),
                                extra_args=relay.nic_args())
        m.expect(rf"^http: listening on port {hc.GUEST_PORT}$")
        m.expect(r"^ready$")
        try:
            yield namespace
            check(relay.error is None, f"grader error: the relay failed: {relay.error}")
        except TestFailure as failure:
            relay.write_trace(trace)
            raise TestFailure(f"{failure} (the last frames are in {trace})") from None


def served_at_once(m):
    """How many connections the server said at boot it serves at once."""
    line = re.search(r"^http: (\d+) connections at once, \d+ more answered 503$", m.output,
                     re.MULTILINE)
    check(line, "the server did not say at boot `http: N connections at once, M more "
                "answered 503`")
    return int(line[1])


def crowd_with_counters(m, namespace, clients, requests):
    """Run a crowd; returns its report and what changed in `tcp`'s counters meanwhile."""
    before, _ = shell.tcp_status(m)
    result = run_crowd(m, namespace, clients, requests)
    after, _ = shell.tcp_status(m)
    return result, shell.counter_changes(before, after)


def run_crowd(m, namespace, clients, requests, deadline=CROWD_DEADLINE):
    result = namespace.run_http_crowd(KERNEL_ADDRESS, hc.GUEST_PORT, clients, requests,
                                      deadline=deadline * m.run.timeout_scale)
    shell.require_running(m, f"a crowd of {clients} clients")
    return result


def describe_crowd(result, changes):
    examples = "; ".join(result["examples"]) or "none"
    return (f"{result['completed']} completed, {result['refused']} refused, failures "
            f"{result['failures'] or 'none'} ({examples}), {result['responses']} responses in "
            f"{result['seconds']:.0f}s; `tcp` counters changed by {changes}")


def check_no_resets(changes):
    check(not changes.get("resets_sent"),
          f"the kernel sent {changes.get('resets_sent')} TCP resets during the crowd; a "
          f"connection must be served, answered 503, or its SYN dropped (`tcp` counters "
          f"changed by {changes})")


def check_still_serving(m, namespace):
    result = run_crowd(m, namespace, clients=1, requests=1, deadline=ONE_REQUEST_DEADLINE)
    check(result["completed"] == 1, f"GET /health after the crowd: "
                                    f"{'; '.join(result['examples']) or result}")
