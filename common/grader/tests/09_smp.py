"""Step 09: every CPU at work, and the answers do not depend on how many there are.

The kernel is booted with 1, 2, 4 and 8 virtual CPUs. At each count it must find them all
(`CPUs online: N/N`) and print boot-time self-tests whose counts agree with N. Inference
splits its matrix products and attention heads among the CPUs, but each row and each head is
still computed whole by one CPU in a fixed order, so greedy text and embeddings must be the
same bits at every count, and the host reference's (one thread). The network loop stays on
the boot CPU: /health answers while a generation runs on four.

Under TCG every virtual CPU is a host thread, and this machine may have fewer cores than 8:
the tests use few, short generations so that they stay quick even then.
"""
import base64
import http.client
import json
import re
import struct
import threading
import time

import http_clients as hc
import inference
import nic
from gradelib import check, test

CPU_COUNTS = (1, 2, 4, 8)
PROMPTS = ["Linux is", "The best way to"]
MAX_TOKENS = 24
EMBED_TEXT = "A fortune a day"
# Sizes that no CPU count divides evenly: 6 heads, 36 + 2 x 12 rows of q, k and v, 100 hidden
# units, rows of 36 and 100 floats (not multiples of 8, so every dot product has a tail).
ODD_SHAPE = inference.Checkpoint(dim=36, hidden_dim=100, n_layers=2, n_heads=6, n_kv_heads=2,
                                 vocab_size=0, seq_len=64, shared_classifier=False)


def boot(m, cpus, iso=None):
    """Boot with `cpus` virtual CPUs and the HTTP port forwarded; returns the Server."""
    port = nic.free_port()
    m.boot(iso=iso, extra_args=["-smp", str(cpus),
                                *nic.user_nic(forwards=[(port, hc.GUEST_PORT)])])
    m.expect(r"^ready$")
    return hc.Server(m, port)


def reference_for(m):
    model, tokenizer, header, _ = inference.run_model(m.run)
    return inference.Reference(m.run, model, tokenizer), header


def boot_line(m, regex, what):
    """The match of the first serial line matching regex (anchored at both ends)."""
    pattern = re.compile(regex)
    found = next(filter(None, map(pattern.fullmatch, m.lines())), None)
    check(found, f"{what}: no serial line matches /{regex}/")
    return found


def check_cpus_and_selftests(m, cpus):
    """`CPUs online: N/N` and the three self-test lines, each count consistent with N."""
    boot_line(m, rf"CPUs online: {cpus}/{cpus}", f"-smp {cpus}")
    counters = boot_line(m, r"smp selftest counters: (\d+) CPUs x (\d+) = (\d+) locked "
                            r"increments, (\d+) per-CPU", f"-smp {cpus}")
    n, each, locked, per_cpu = map(int, counters.groups())
    check(n == cpus and locked == per_cpu == n * each,
          f"-smp {cpus}: {counters[0]!r}: expected {cpus} CPUs and {cpus} x {each} increments")
    total = boot_line(m, r"smp selftest sum: 1\.\.(\d+) = (\d+) on (\d+) CPUs \(expected (\d+)\)",
                      f"-smp {cpus}")
    limit, got, n, stated = map(int, total.groups())
    check(n == cpus and got == stated == limit * (limit + 1) // 2,
          f"-smp {cpus}: {total[0]!r}: 1..{limit} sums to {limit * (limit + 1) // 2}")
    barrier = boot_line(m, r"smp selftest barrier: (\d+) rounds on (\d+) CPUs, (\d+) arrivals, "
                           r"(\d+) errors", f"-smp {cpus}")
    rounds, n, arrivals, errors = map(int, barrier.groups())
    check(n == cpus and arrivals == rounds * cpus and errors == 0,
          f"-smp {cpus}: {barrier[0]!r}: expected {rounds * cpus} arrivals and no errors")
    # smp_selftest.c prints each line once; the grader builds a student's lab with its own copy.
    for kind in ("counters", "sum", "barrier"):
        said = [line for line in m.lines() if line.startswith(f"smp selftest {kind}:")]
        check(len(said) == 1, f"-smp {cpus}: `smp selftest {kind}:` printed {len(said)} times; "
                              "only smp_selftest.c prints it, once")


def greedy(server, prompt, **settings):
    """(text, completion tokens, finish_reason) of a completion, greedy unless settings say."""
    body = {"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0, **settings}
    answer = server.call_json("POST", "/v1/completions", body, timeout=120)
    text = hc.check_completion(answer, f"POST /v1/completions {body}")
    return text, answer["usage"]["completion_tokens"], answer["choices"][0]["finish_reason"]


def embedding(server):
    """The embedding of EMBED_TEXT as its raw bytes (base64: every bit of every float)."""
    answer = server.call_json("POST", "/v1/embeddings",
                              {"input": EMBED_TEXT, "encoding_format": "base64"}, timeout=60)
    return base64.b64decode(answer["data"][0]["embedding"])


# ---------------------------------------------------------------------------------------------

@test(10, "boots with 1, 2, 4 and 8 CPUs: CPUs online N/N, self-test counts agree", timeout=60)
def boots_at_every_count(m):
    """At each count, the kernel reaches `ready`, prints `CPUs online: N/N`, and its counter,
    sum and barrier self-tests report N CPUs, N times the increments, the right sum, and N
    arrivals per barrier round with no errors."""
    for cpus in CPU_COUNTS:
        boot(m, cpus)
        check_cpus_and_selftests(m, cpus)


@test(15, "greedy text and embeddings are the same at 1, 2, 4 and 8 CPUs, and the reference's",
      timeout=150)
def same_answers_at_every_count(m):
    """Greedy completions of two prompts equal the host reference's text, token count and
    finish_reason at every CPU count; an embedding is the same bits at every count (base64)
    and the reference's within 1e-5."""
    reference, _ = reference_for(m)
    same_at_every_count(m, reference)


@test(10, "an int8 model: the same text and embeddings at 1, 2, 4 and 8 CPUs, the reference's",
      timeout=150)
def int8_at_every_count(m):
    """The committed model as an int8 checkpoint (llama2.c's version 2, written now by
    export.py --quantize), booted at each count: greedy completions of two prompts equal the
    host reference's on the same file, and an embedding is the same bits at every count."""
    model, tokenizer_path, _, _ = inference.run_model(m.run)
    int8 = m.run.unique_path("model-q8.bin")
    inference.write_int8_checkpoint(model, int8)
    same_at_every_count(m, inference.Reference(m.run, int8, tokenizer_path),
                        inference.model_iso(m.run, int8, tokenizer_path))


def same_at_every_count(m, reference, iso=None):
    """Boots iso (the step's own by default) at each of CPU_COUNTS and compares."""
    wants = {prompt: reference.generate(prompt, MAX_TOKENS) for prompt in PROMPTS}
    want_embedding = reference.embedding(EMBED_TEXT)
    first_embedding = None
    for cpus in CPU_COUNTS:
        server = boot(m, cpus, iso=iso)
        for prompt, want in wants.items():
            text, count, finish = greedy(server, prompt)
            check((text, count, finish) == (want["text"], len(want["tokens"]),
                                             want["finish_reason"]),
                  f"-smp {cpus}, {prompt!r}: the kernel wrote {text!r} ({count} tokens, "
                  f"{finish}); the reference {want['text']!r} ({len(want['tokens'])} tokens, "
                  f"{want['finish_reason']})")
        raw = embedding(server)
        first_embedding = first_embedding or raw
        check(raw == first_embedding,
              f"-smp {cpus}: the embedding of {EMBED_TEXT!r} differs from the one at "
              f"-smp {CPU_COUNTS[0]}: the split changed the arithmetic")
        vector = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        check(hc.close_enough(vector, want_embedding, 1e-5),
              f"-smp {cpus}: the embedding of {EMBED_TEXT!r} differs from the reference's")


@test(10, "a model of odd sizes, split unevenly over 3 CPUs, still gives the reference's text",
      timeout=90)
def uneven_split(m):
    """A random-weight checkpoint written now (seed 9) whose rows, hidden units and heads no
    CPU count divides evenly, booted with 3 CPUs: a greedy and a seeded completion equal the
    reference's on the same files. Then the same model in int8 (groups of 4, which the AVX2
    path leaves to plain C): a greedy completion equals the reference's."""
    _, tokenizer_path, _, tokenizer = inference.run_model(m.run)
    shape = inference.Checkpoint(**{**ODD_SHAPE.__dict__, "vocab_size": len(tokenizer.pieces)})
    model = m.run.unique_path("odd.bin")
    inference.write_random_checkpoint(model, shape, seed=9)
    int8 = m.run.unique_path("odd-q8.bin")
    inference.write_int8_checkpoint(model, int8)
    for path, runs in ((model, ({}, {"temperature": 0.8, "top_p": 0.9, "seed": 5})),
                       (int8, ({},))):
        server = boot(m, 3, iso=inference.model_iso(m.run, path, tokenizer_path))
        reference = inference.Reference(m.run, path, tokenizer_path)
        for settings in runs:
            want = reference.generate(PROMPTS[0], MAX_TOKENS, **settings)
            text, count, _ = greedy(server, PROMPTS[0], **settings)
            check((text, count) == (want["text"], len(want["tokens"])),
                  f"-smp 3, odd model {path.name}, {settings or 'greedy'}: the kernel wrote "
                  f"{text!r} ({count} tokens); the reference {want['text']!r} "
                  f"({len(want['tokens'])} tokens)")


@test(10, "with 4 CPUs, /health answers while a generation streams", timeout=90)
def health_while_generating(m):
    """A long seeded generation streams on 4 CPUs; /health on new connections answers three
    times while it runs, each within 2 s under TCG, and the stream still ends with the
    reference's text."""
    reference, header = reference_for(m)
    server = boot(m, 4)
    prompt, max_tokens = PROMPTS[1], header.seq_len - 16
    # The seed (of 1..8) whose text runs longest, so that the generation outlasts the asking.
    seed, want = max(((seed, reference.generate(prompt, max_tokens, temperature=0.8,
                                                 top_p=0.9, seed=seed)) for seed in range(1, 9)),
                     key=lambda candidate: len(candidate[1]["tokens"]))
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "top_p": 0.9,
            "seed": seed, "stream": True}
    lines, outcome = [], {}

    def read_stream():
        connection = http.client.HTTPConnection(server.host, server.port,
                                                timeout=server.seconds(120))
        try:
            connection.request("POST", "/v1/completions", json.dumps(body),
                               {"Content-Type": "application/json"})
            lines.extend((time.monotonic(), line) for line in connection.getresponse())
        except (OSError, http.client.HTTPException) as error:
            outcome["error"] = f"{type(error).__name__}: {error}"
        finally:
            connection.close()

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    time.sleep(0.5)
    latencies = []
    for _ in range(3):
        started = time.monotonic()
        server.health("while a generation streams on 4 CPUs")
        latencies.append(time.monotonic() - started)
    asked = time.monotonic()
    reader.join(timeout=server.seconds(120))
    check(not reader.is_alive() and "error" not in outcome,
          f"the stream did not end well: {outcome.get('error', 'still running')}")
    check(max(latencies) <= server.seconds(2 / 3),
          f"/health took {max(latencies):.2f}s while a generation ran on 4 CPUs")
    events = hc.parse_sse(b"".join(line for _, line in lines), "the stream")
    check(any(at > asked and line.startswith(b"data: {") for at, line in lines),
          "the generation ended before /health was asked: the test proves nothing")
    text = hc.stream_text(events, "the stream")
    check(text == want["text"], f"the stream wrote {text!r}; the reference {want['text']!r}")
