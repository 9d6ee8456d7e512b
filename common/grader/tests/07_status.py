"""Step 07: what the server says about itself (GET /metrics, /props, /slots, in the shapes of
llama.cpp's server), and generation requests beyond its slots: a bounded line, then 503.

Every test boots the kernel with QEMU's user networking and a port forward, as 07_http.py's do.
/metrics is read by Prometheus's own Python parser (Debian's python3-prometheus-client).
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
from gradelib import check, fail, test


@test(10, "GET /metrics parses as Prometheus text and counts what happened", timeout=60)
def metrics(m):
    """After a known mix of requests (three /health, one completion, one 404), GET /metrics is
    read by Prometheus's own Python parser (Debian's python3-prometheus-client), and the
    figures agree with what happened: llama.cpp's token counters equal the completion's usage,
    the responses by status count the 200s and the 404, the connection table's capacity is
    the one the boot announced, the heap and free frames are plausible, and the NIC's line has
    interrupted."""
    server = hc.boot_http(m)
    capacity = int(re.search(r"^tcp: room for (\d+) connections$", m.output, re.M)[1])
    for _ in range(3):
        server.health("before /metrics")
    usage = server.call_json("POST", "/v1/completions",
                             {"prompt": "Once upon a time", "max_tokens": 5})["usage"]
    check(server.call("GET", "/no/such/path").status == 404, "GET /no/such/path is not 404")
    response = server.call("GET", "/metrics")
    check(response.status == 200 and (response.header("Content-Type") or "")
          .startswith("text/plain"), f"GET /metrics: {response.describe()}")
    values = parse_metrics(response.body.decode())
    expect_metric(values, "llamacpp:prompt_tokens_total", usage["prompt_tokens"])
    expect_metric(values, "llamacpp:tokens_predicted_total", usage["completion_tokens"])
    expect_metric(values, "llamacpp:requests_processing", 0)
    expect_metric(values, "llamacpp:requests_deferred", 0)
    expect_metric(values, "ringzero_tcp_connections_capacity", capacity)
    expect_metric(values, "ringzero_http_responses_total", 1, status="404")
    # The three /health and the completion; /metrics counts its own answer only once it is sent.
    expect_metric(values, "ringzero_http_responses_total", 4, status="200")
    check(values.get(("ringzero_heap_used_bytes", ()), 0) > 0 and
          values.get(("ringzero_heap_free_bytes", ()), -1) >= 0,
          "the heap's used and free bytes are missing or zero")
    check(values.get(("ringzero_free_frames", ()), 0) > 1000,
          f"ringzero_free_frames is {values.get(('ringzero_free_frames', ()))}, with 256 MiB")
    nic_lines = [value for (name, labels), value in values.items()
                 if name == "ringzero_interrupts_total" and ("device", "e1000") in labels]
    check(nic_lines and nic_lines[0] > 0, f"the e1000's interrupts: {nic_lines}")


def parse_metrics(text):
    """{(sample name, sorted label pairs): value} through prometheus_client's parser."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        fail("grader error: python3-prometheus-client is not installed (make deps)")
    try:
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples}
    except ValueError as error:
        fail(f"GET /metrics is not Prometheus text: {error}\n{text[:600]}")


def expect_metric(values, name, expected, **labels):
    value = values.get((name, tuple(sorted(labels.items()))))
    check(value == expected, f"{name}{labels or ''} is {value}, expected {expected}")


@test(10, "GET /props and /slots: the model, the slots, and a slot at work", timeout=60)
def props_and_slots(m):
    """Booted with `slots=2`: /props names the model of /v1/models, its context, the default
    generation settings (16 tokens) and 2 slots; /slots lists 2 idle slots. While a streamed
    completion runs (its client reads nothing, so it stays in its slot), /slots shows one slot
    processing it, with its task and the tokens decoded so far; once the client leaves, both
    slots are idle again and /metrics says no request is processing."""
    server = hc.boot_http(m, cmdline="slots=2")
    props = server.call_json("GET", "/props")
    context = server.context_length()
    check(props.get("model_alias") == server.model()["id"] and props.get("n_ctx") == context
          and props.get("total_slots") == 2, f"GET /props: {props}")
    settings = props.get("default_generation_settings") or {}
    check(settings.get("n_ctx") == context and
          (settings.get("params") or {}).get("n_predict") == 16,
          f"GET /props: default_generation_settings {settings}")
    require_idle_slots(server, 2)
    with stalled_stream(server):
        busy = wait_for_slots(server, lambda slots: any(decoding(s) for s in slots),
                              "a slot that has decoded tokens of the stream")
        slot = next(s for s in busy if decoding(s))
        check(slot.get("id_task", 0) >= 1 and slot.get("stream") is True and
              slot.get("n_prompt_tokens", 0) >= 1, f"GET /slots while a stream runs: {slot}")
    require_idle_slots(server, 2)
    expect_metric(parse_metrics(server.call("GET", "/metrics").body.decode()),
                  "llamacpp:requests_processing", 0)


def decoding(slot):
    """A slot that has read its prompt and written a token or more."""
    return slot.get("is_processing") and (slot.get("next_token") or {}).get("n_decoded", 0) >= 1


def long_generation(server):
    """A completion request that takes long: for the placeholder, a long prompt it replays;
    for a real model, nearly the whole context, sampled with the first seed whose text does
    not end sooner (a model ends most of its texts early). Found once per boot."""
    if server.is_placeholder():
        length = server.context_length() // 2 - 8
        return {"prompt": "a" * length, "max_tokens": length}
    if not hasattr(server, "long_generation"):
        server.long_generation = find_long_generation(server)
    return dict(server.long_generation)


def find_long_generation(server):
    body = {"prompt": "Once upon a time", "max_tokens": server.context_length() - 16,
            "temperature": 1.5}
    for seed in range(100):
        body["seed"] = seed
        answer = server.call_json("POST", "/v1/completions", body, timeout=60)
        if answer["usage"]["completion_tokens"] == body["max_tokens"]:
            return body
    fail(f"none of 100 seeds made the model write {body['max_tokens']} tokens: {body}")


@contextlib.contextmanager
def stalled_stream(server):
    """A streamed long generation whose client reads nothing, with a small receive buffer, so
    its output backs up and the generation holds its slot until the client closes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.settimeout(server.seconds(10))
    sock.connect((server.host, server.port))
    body = dict(long_generation(server), stream=True)
    sock.sendall(hc.request_bytes("POST", "/v1/completions", json.dumps(body).encode(),
                                  headers=["Content-Type: application/json"]))
    try:
        yield
    finally:
        sock.close()


def wait_for_slots(server, condition, what, seconds=10):
    deadline = time.monotonic() + server.seconds(seconds)
    while True:
        slots = server.call_json("GET", "/slots")
        if condition(slots) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check(condition(slots), f"GET /slots never showed {what}: {slots}")
    return slots


def require_idle_slots(server, count):
    slots = wait_for_slots(server, lambda slots: not any(s.get("is_processing") for s in slots),
                           "every slot idle")
    check(len(slots) == count and [s.get("id") for s in slots] == list(range(count)) and
          all(s.get("n_ctx") == server.context_length() for s in slots),
          f"GET /slots with {count} slots: {slots}")


@test(10, "generations beyond the slots wait in a bounded line; beyond it, 503", timeout=90)
def generation_line(m):
    """Booted with `slots=1`, the server runs one generation and lets 8 wait. 13 clients,
    connected beforehand, send a long completion at the same moment: the one in the slot and
    the 8 in line all get their 200 (the line moves on as the slot frees), and the rest a 503
    with OpenAI's error JSON that says the server is busy, and `Retry-After`. /health answers
    while they run, /metrics counts the refusals, and afterwards nothing is left processing or
    deferred."""
    server = hc.boot_http(m, cmdline="slots=1")
    body = json.dumps(dict(long_generation(server))).encode()
    request = hc.request_bytes("POST", "/v1/completions", body,
                               headers=["Content-Type: application/json"])
    sockets = [server.connect() for _ in range(13)]
    try:
        for sock in sockets:
            sock.sendall(request[:-1])
        for sock in sockets:
            sock.sendall(request[-1:])
        server.health("while 13 generations arrive at once")
        responses = [server.read(hc.Reader(sock, server.seconds(60)), f"generation client {n}")
                     for n, sock in enumerate(sockets)]
    finally:
        for sock in sockets:
            sock.close()
    refused = [r for r in responses if r.status == 503]
    served = [r for r in responses if r.status == 200]
    check(len(served) + len(refused) == 13, "every client gets 200 or 503: " +
          ", ".join(r.describe() for r in responses if r.status not in (200, 503)))
    check(len(served) >= 9 and refused, f"{len(served)} of 13 served and {len(refused)} "
          "refused; expected the slot and the line of 8 to be served and the rest refused")
    for response in refused:
        hc.check_error(response, 503, "a generation beyond the line", mentions=["busy"])
        check(response.header("Retry-After") == "1",
              f"a 503 for a full line says Retry-After: {response.header('Retry-After')!r}")
    for response in served:
        hc.check_completion(response.json(), "a generation served from the line")
    values = parse_metrics(server.call("GET", "/metrics").body.decode())
    expect_metric(values, "ringzero_generations_refused_total", len(refused))
    expect_metric(values, "llamacpp:requests_processing", 0)
    expect_metric(values, "llamacpp:requests_deferred", 0)


# ---------------------------------------------------------------------------------------------
# A soak

SOAK_REQUESTS = 20000
SOAK_WORKERS = 8
# Of every 100 requests: /health, completions, streamed completions, bad requests (a body
# that is not JSON, an unknown path), and streams whose client leaves after the first event.
# Generations are few, so that a real model (steps 08 and 09 run this test too) keeps the soak
# within minutes under TCG.
SOAK_MIX = (("health", 84), ("completion", 3), ("stream", 2), ("bad", 10), ("leave", 1))


@test(15, "a soak of 20,000 mixed requests leaves the heap and frames as they were",
      timeout=400)
def soak(m):
    """8 clients on keep-alive connections send 20,000 requests between them, in a seeded mix:
    /health, completions, streamed completions, bad input, and streams whose client closes the
    connection after the first event. Every answer must be right. Before and after, once
    TIME_WAIT is over, /metrics must show the same heap bytes used and free frames, and no
    connection but the one asking. The heap keeps the frames it grew by, so "before" comes after
    a warm-up that reaches the soak's peak: the same mix while long generations fill every
    slot."""
    server = hc.boot_http(m)
    warm_up(server)
    before = quiet_metrics(server)
    failures = run_soak(server, requests=SOAK_REQUESTS, seed=2)
    check(not failures, f"{len(failures)} of {SOAK_REQUESTS} soak requests went wrong: "
          + "; ".join(failures[:3]))
    after = quiet_metrics(server)
    for name in ("ringzero_heap_used_bytes", "ringzero_free_frames"):
        check(after[(name, ())] == before[(name, ())], f"{name} was {before[(name, ())]:.0f} "
              f"before the soak and is {after[(name, ())]:.0f} after it")
    requests_seen = sum(value for (name, _), value in after.items()
                        if name == "ringzero_http_responses_total")
    check(requests_seen >= SOAK_REQUESTS, f"the server counted {requests_seen:.0f} responses "
          f"in all, fewer than the {SOAK_REQUESTS} of the soak")


def warm_up(server):
    slots = server.call_json("GET", "/props")["total_slots"]
    generation = long_generation(server)
    generations = [threading.Thread(target=server.call_json,
                                    args=("POST", "/v1/completions", generation),
                                    kwargs={"timeout": 120})
                   for _ in range(slots)]
    for thread in generations:
        thread.start()
    failures = run_soak(server, requests=1000, seed=1)
    for thread in generations:
        thread.join()
    check(not failures, "the warm-up before the soak went wrong: " + "; ".join(failures[:3]))


def quiet_metrics(server):
    """/metrics once only the asking connection is open (TIME_WAIT lasts 2 s) and nothing
    generates."""
    deadline = time.monotonic() + server.seconds(10)
    while True:
        values = parse_metrics(server.call("GET", "/metrics").body.decode())
        quiet = (values[("ringzero_tcp_connections_open", ())] == 1 and
                 values[("llamacpp:requests_processing", ())] == 0 and
                 values[("llamacpp:requests_deferred", ())] == 0)
        if quiet or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    check(quiet, "connections or generations were left over after the soak: " + ", ".join(
        f"{name} {value:.0f}" for (name, _), value in values.items()
        if name in ("ringzero_tcp_connections_open", "llamacpp:requests_processing",
                    "llamacpp:requests_deferred")))
    return values


def run_soak(server, requests, seed):
    """requests requests of SOAK_MIX from SOAK_WORKERS threads; the list of what went wrong."""
    failures = []
    kinds = [kind for kind, share in SOAK_MIX for _ in range(share)]
    counts = [requests // SOAK_WORKERS + (n < requests % SOAK_WORKERS)
              for n in range(SOAK_WORKERS)]
    workers = [threading.Thread(target=soak_worker,
                                args=(server, random.Random(f"{seed}:{n}"), count, kinds,
                                      failures))
               for n, count in enumerate(counts)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return failures


# The server closes a keep-alive connection that stays idle for 10 s (a worker's can, while it
# waits for a slot on another connection); like real clients, a worker does not reuse one
# that has been idle for half of that.
IDLE_REUSE_LIMIT = 5


def soak_worker(server, rng, count, kinds, failures):
    connection, last_used = None, 0.0
    for number in range(count):
        kind = rng.choice(kinds)
        if connection and time.monotonic() - last_used > IDLE_REUSE_LIMIT:
            connection.close()
            connection = None
        try:
            if kind == "leave":
                leave_mid_stream(server)
                continue
            if connection is None:
                connection = http.client.HTTPConnection(server.host, server.port,
                                                        timeout=server.seconds(30))
            problem = soak_request(connection, kind, rng)
            last_used = time.monotonic()
        except (OSError, http.client.HTTPException) as error:
            problem = f"{type(error).__name__}: {error}"
            connection = None
        if problem:
            failures.append(f"request {number} ({kind}): {problem}")
            connection = None
        if len(failures) > 20:
            return
    if connection:
        connection.close()


def soak_request(connection, kind, rng):
    """One request of kind on connection; what was wrong with the answer, or None."""
    headers = {"Content-Type": "application/json"}
    if kind == "health":
        connection.request("GET", "/health")
        expected = 200
    elif kind == "bad":
        if rng.random() < 0.5:
            connection.request("POST", "/v1/completions", body=b'{"prompt": ', headers=headers)
            expected = 400
        else:
            connection.request("GET", f"/no/such/{rng.randrange(1000)}")
            expected = 404
    else:
        body = {"prompt": f"Soak {rng.randrange(1000)}", "max_tokens": 2,
                "stream": kind == "stream"}
        connection.request("POST", "/v1/completions", body=json.dumps(body), headers=headers)
        expected = 200
    response = connection.getresponse()
    body = response.read()
    if response.status != expected:
        return f"status {response.status}, expected {expected}: {body[:120]!r}"
    if kind == "stream" and not body.rstrip().endswith(b"data: [DONE]"):
        return f"the stream did not end with data: [DONE]: {body[-120:]!r}"
    if kind == "bad" and b'"error"' not in body:
        return f"no error body: {body[:120]!r}"
    return None


def leave_mid_stream(server):
    """A long streamed completion whose client closes after the first event."""
    with server.connect() as sock:
        body = dict(long_generation(server), stream=True)
        sock.sendall(hc.request_bytes("POST", "/v1/completions", json.dumps(body).encode(),
                                      headers=["Content-Type: application/json"]))
        received = b""
        while b"data: " not in received:
            data = sock.recv(4096)
            if not data:
                raise OSError("closed before the first event")
            received += data
