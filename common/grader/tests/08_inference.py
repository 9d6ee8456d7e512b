"""Step 08: a real transformer behind the API, judged against the host reference.

The model and tokenizer are read out of the ISO the kernel boots, so every expectation comes
from the files the kernel was given: the checkpoint's header for the boot lines and
/v1/models, and the host reference program (built from the repository's own step 08 engine,
never a student's) for every token of text. The engine is specified to compute bit-identical
floats on every path (SSE, AVX2, host), so generated text must be equal, not just similar, and
embeddings equal within 1e-5. A random-weight model of another shape, written at test time,
checks that nothing is tied to the committed model's shape.

These tests also run against step 09. They are short enough for TCG: a few dozen tokens each.
"""
import base64
import http.client
import json
import math
import re
import shutil
import struct
import threading
import time

import http_clients as hc
import inference
from gradelib import check, fail, test

PROMPTS = ["", "Linux is", "The best way to"]
CHAT_MESSAGE = "Tell me a fortune."
SAMPLING = {"temperature": 0.8, "top_p": 0.9, "seed": 42}


# ---------------------------------------------------------------------------------------------
# Helpers

def boot(m, **boot_arguments):
    """Boot the step's ISO; returns (server, reference, model files) for its model."""
    files = inference.run_model(m.run)
    reference = inference.Reference(m.run, files[0], files[1])
    return hc.boot_http(m, **boot_arguments), reference, files


def boot_line(m, prefix):
    """The serial line starting with `prefix: ` (the kernel prints it before `ready`)."""
    lines = [line for line in m.lines() if line.startswith(prefix + ": ")]
    check(lines, f"the kernel printed no `{prefix}: ` line at boot")
    return lines[0]


def request(prompt, max_tokens, chat=False, **settings):
    """(path, body) of a completion of prompt, or a chat of one user message."""
    body = {"max_tokens": max_tokens, "temperature": 0, **settings}
    if chat:
        return "/v1/chat/completions", {"messages": [{"role": "user", "content": prompt}],
                                        **body}
    return "/v1/completions", {"prompt": prompt, **body}


def expected(reference, prompt, max_tokens, chat=False, **settings):
    """The reference's answer to request(prompt, max_tokens, chat, **settings)."""
    return reference.generate(prompt, max_tokens, chat=chat,
                              temperature=settings.get("temperature", 0),
                              top_p=settings.get("top_p", 1), seed=settings.get("seed", 0))


def complete(server, prompt, max_tokens, chat=False, **settings):
    """(text, usage, finish_reason) of the kernel's answer, not streamed."""
    path, body = request(prompt, max_tokens, chat, **settings)
    answer = server.call_json("POST", path, body, timeout=120)
    text = hc.check_completion(answer, f"POST {path} {body}", chat=chat)
    return text, answer["usage"], answer["choices"][0]["finish_reason"]


def check_same(what, text, usage, finish, want):
    """The kernel's text, usage and finish_reason are the reference's `want`."""
    check(text == want["text"],
          f"{what}: the kernel wrote {text!r}; the host reference wrote {want['text']!r}")
    check(usage["prompt_tokens"] == len(want["prompt_tokens"]),
          f"{what}: usage.prompt_tokens is {usage['prompt_tokens']}; the prompt is "
          f"{len(want['prompt_tokens'])} tokens (BOS included): {want['prompt_tokens']}")
    check(usage["completion_tokens"] == len(want["tokens"]),
          f"{what}: usage.completion_tokens is {usage['completion_tokens']}; the reference "
          f"generated {len(want['tokens'])}: {want['tokens']}")
    check(finish == want["finish_reason"],
          f"{what}: finish_reason {finish!r}; the reference's is {want['finish_reason']!r}")


def same_as_reference(server, reference, prompt, max_tokens, chat=False, **settings):
    """Ask the kernel and the reference the same; require the same answer. Returns it."""
    want = expected(reference, prompt, max_tokens, chat, **settings)
    what = f"{'chat' if chat else 'completion'} of {prompt!r} ({max_tokens} tokens, {settings})"
    check_same(what, *complete(server, prompt, max_tokens, chat, **settings), want)
    return want


def stream(server, path, body, what):
    """The events of a streamed answer, read with http.client."""
    response = server.call("POST", path, {**body, "stream": True}, timeout=120)
    check(response.status == 200, f"{what}: {response.describe()}")
    check((response.header("Content-Type") or "").startswith("text/event-stream"),
          f"{what}: Content-Type {response.header('Content-Type')!r}")
    return hc.parse_sse(response.body, what)


def tokenize(server, text, with_bos=False):
    """The kernel's /tokenize of text as it answered, or without a leading BOS if it adds
    one (llama.cpp's server leaves that to a flag, so either is allowed)."""
    tokens = server.call_json("POST", "/tokenize", {"content": text}).get("tokens")
    check(isinstance(tokens, list) and all(isinstance(t, int) for t in tokens),
          f"/tokenize of {text!r}: tokens {tokens!r}")
    return tokens if with_bos or tokens[:1] != [inference.BOS] else tokens[1:]


def check_models(server, header, model_id=None):
    """/v1/models: the id (the boot line's), owned_by, and meta from the file's header."""
    entry = server.model()
    meta = entry.get("meta") or {}
    check(isinstance(entry.get("id"), str) and entry["id"] and
          isinstance(entry.get("owned_by"), str) and entry["owned_by"],
          f"/v1/models entry has no id or owned_by: {entry}")
    if model_id is not None:
        check(entry["id"] == model_id, f"/v1/models id {entry['id']!r}, expected {model_id!r}")
    for key, value in (("n_params", header.parameters), ("n_vocab", header.vocab_size),
                       ("n_ctx_train", header.seq_len), ("n_embd", header.dim)):
        check(meta.get(key) == value,
              f"/v1/models meta.{key} is {meta.get(key)!r}; the model file says {value}")
    check(not str(meta.get("description", "")).startswith("placeholder"),
          f"/v1/models still describes a placeholder: {meta}")
    return entry["id"]


def check_boot_lines(m, header, tokenizer, cpu_features=None):
    """The `cpu:`, `model:` and `tokenizer:` lines agree with the CPU and the files; returns
    the model's id from the `model:` line. cpu_features: what this virtual CPU must list."""
    features = boot_line(m, "cpu").split()[1:]
    cpu_features = cpu_features or expected_cpu_features(m.run.accel)
    check(features == cpu_features,
          f"`cpu:` lists {features}; this virtual CPU has {cpu_features} of sse2 avx avx2")
    line = boot_line(m, "model")
    match = re.fullmatch(r"model: (\S+), (\d+) parameters, dim (\d+), (\d+) layers, "
                         r"(\d+) heads \((\d+) kv\), vocabulary (\d+), context (\d+)", line)
    check(match, f"`model:` line not in the documented form: {line!r}")
    printed = tuple(map(int, match.groups()[1:]))
    want = (header.parameters, header.dim, header.n_layers, header.n_heads, header.n_kv_heads,
            header.vocab_size, header.seq_len)
    check(printed == want, f"{line!r}, but the model file has {want[0]} parameters, dim "
                           f"{want[1]}, {want[2]} layers, {want[3]} heads ({want[4]} kv), "
                           f"vocabulary {want[5]}, context {want[6]}")
    tokenizer_line = boot_line(m, "tokenizer")
    counts = re.fullmatch(r"tokenizer: (\d+) tokens, longest (\d+) bytes", tokenizer_line)
    check(counts and int(counts[1]) == len(tokenizer.pieces) and
          int(counts[2]) in (tokenizer.longest, tokenizer.max_token_length),
          f"{tokenizer_line!r}, but tokenizer.bin has {len(tokenizer.pieces)} tokens, the "
          f"longest {tokenizer.longest} bytes")
    return match[1]


def expected_cpu_features(accel):
    """What the default virtual CPU offers: TCG's `max` has AVX2 since QEMU 7.2 (Debian 12's);
    KVM's `host` has what the host has."""
    if accel == "tcg":
        return ["sse2", "avx", "avx2"]
    with open("/proc/cpuinfo") as cpuinfo:
        flags = set(re.search(r"^flags\s*: (.*)$", cpuinfo.read(), re.MULTILINE)[1].split())
    return ["sse2"] + [f for f in ("avx", "avx2") if f in flags and "xsave" in flags]


# ---------------------------------------------------------------------------------------------
# Boot, and the math on both vector paths

@test(5, "boot lines and /v1/models match the model file; SSE-only CPU = reference", timeout=60)
def boot_report(m):
    """Booted on QEMU's qemu64 CPU (SSE2, no AVX): `cpu: sse2`, the `model:` and `tokenizer:`
    lines give the numbers in the files' headers (which the test reads out of the ISO), and
    /v1/models has the same id, owned_by and meta (n_params counts every weight but the
    rotary tables). A greedy completion on this SSE path equals the host reference's."""
    server, reference, (_, _, header, tokenizer) = boot(m, cpu="qemu64")
    model_id = check_boot_lines(m, header, tokenizer, cpu_features=["sse2"])
    check_models(server, header, model_id)
    same_as_reference(server, reference, PROMPTS[1], 16)


@test(10, "greedy completions and chat equal the host reference, token for token; 3 at once",
      timeout=90)
def greedy_reference(m):
    """With the default CPU (AVX2 when the host or TCG has it), at temperature 0: three
    completions (the empty prompt among them) and a chat give exactly the reference's text,
    usage (prompt and completion tokens) and finish_reason; /tokenize gives the reference's
    prompt tokens. Then three generations at once (two greedy, one seeded) each still give
    the reference's answer: no two share a key/value cache."""
    server, reference, (_, _, header, tokenizer) = boot(m)
    check_boot_lines(m, header, tokenizer)
    for prompt in PROMPTS:
        want = same_as_reference(server, reference, prompt, 24)
        got = tokenize(server, prompt)
        check(got == want["prompt_tokens"][1:],
              f"/tokenize of {prompt!r} gave {got}; the reference encodes it as "
              f"{want['prompt_tokens'][1:]} (after BOS)")
    same_as_reference(server, reference, CHAT_MESSAGE, 24, chat=True)
    at_once(server, reference)


def at_once(server, reference):
    """Three generations running together (their tokens interleave, one per poll) each give
    the reference's text: every one has a key/value cache of its own."""
    jobs = [(PROMPTS[1], False, {}), (PROMPTS[2], False, SAMPLING), (CHAT_MESSAGE, True, {})]
    results = [None] * len(jobs)

    def run(index, prompt, chat, settings):
        try:
            results[index] = complete(server, prompt, 24, chat, **settings)
        except Exception as error:  # reported below, with the other threads' results
            results[index] = error
    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=server.seconds(120))
    for (prompt, chat, settings), result in zip(jobs, results):
        what = f"{prompt!r} ({settings or 'greedy'}) while two others ran"
        check(result is not None and not isinstance(result, Exception),
              f"{what}: {result or 'no answer'}")
        check_same(what, *result, expected(reference, prompt, 24, chat, **settings))


@test(10, "seeded sampling: same seed, same text, equal to the reference's", timeout=90)
def seeded_sampling(m):
    """temperature 0.8, top_p 0.9, seed 42: a completion and a chat equal the reference's
    with the same settings, and asking again gives the same text. Seed 0 is a seed like any
    other (the reference's --seed 0)."""
    server, reference, _ = boot(m)
    want = same_as_reference(server, reference, PROMPTS[1], 32, **SAMPLING)
    again = complete(server, PROMPTS[1], 32, **SAMPLING)[0]
    check(again == want["text"], f"the same seed gave {again!r} the second time, "
                                 f"{want['text']!r} the first")
    same_as_reference(server, reference, CHAT_MESSAGE, 24, chat=True, **SAMPLING)
    same_as_reference(server, reference, PROMPTS[2], 16, **{**SAMPLING, "seed": 0})


# ---------------------------------------------------------------------------------------------
# Tokens and embeddings

@test(5, "tokenize/detokenize: llama.cpp shapes, the reference's ids, byte fallback", timeout=60)
def tokenize_round_trip(m):
    """/tokenize {"content"} gives {"tokens"}: the reference's encoding, byte fallback
    included (é, ☃ have no tokens of their own), with or without BOS first; /detokenize of
    exactly those {"tokens"} gives {"content"} back. /detokenize of the tokens the reference
    generated gives the text their pieces in tokenizer.bin spell, and three byte tokens make
    one UTF-8 character."""
    server, reference, (_, _, _, tokenizer) = boot(m)
    for text in ["Naïve café ☃", "Hello, world!\n\tTabs and  two spaces.", "x"]:
        want = reference(text, "--steps", 0)["prompt_tokens"][1:]
        answered = tokenize(server, text, with_bos=True)
        got = answered[1:] if answered[:1] == [inference.BOS] else answered
        check(got == want, f"/tokenize of {text!r} gave {got}; the reference's is {want}")
        back = server.call_json("POST", "/detokenize", {"tokens": answered}).get("content")
        check(back == text, f"/detokenize of {answered} gave {back!r}, not {text!r}")
    generated = expected(reference, PROMPTS[1], 24)["tokens"]
    back = server.call_json("POST", "/detokenize", {"tokens": generated}).get("content")
    decoded = tokenizer.decode(generated).decode(errors="replace")
    check(back == decoded, f"/detokenize of the generated tokens {generated} gave {back!r}; "
                           f"their pieces in tokenizer.bin spell {decoded!r}")
    snowman = [3 + byte for byte in "☃".encode()]
    back = server.call_json("POST", "/detokenize", {"tokens": snowman}).get("content")
    check(back == "☃", f"/detokenize of the byte tokens {snowman} gave {back!r}, not '☃'")


@test(5, "embeddings: dimension dim, unit length, equal to the reference's", timeout=60)
def embeddings(m):
    """Two inputs: each embedding has the model's dim numbers, L2 norm 1 within 1e-5, and
    equals the reference's --embed within 1e-5 per component; the two differ. The base64
    encoding decodes to the same floats."""
    server, reference, (_, _, header, _) = boot(m)
    inputs = ["Linux is", "A fortune cookie"]
    answer = server.call_json("POST", "/v1/embeddings", {"input": inputs}, timeout=60)
    vectors = [item.get("embedding") for item in answer.get("data", [])]
    check(len(vectors) == 2, f"/v1/embeddings of 2 inputs: {str(answer)[:300]}")
    for text, vector in zip(inputs, vectors):
        hc.check_embedding(vector, header.dim, f"embedding of {text!r}")
        norm = math.sqrt(sum(x * x for x in vector))
        check(abs(norm - 1) <= 1e-5, f"the embedding of {text!r} has L2 norm {norm:.7f}")
        want = reference.embedding(text)
        worst = max(range(len(want)), key=lambda i: abs(vector[i] - want[i]))
        check(hc.close_enough(vector, want, 1e-5),
              f"the embedding of {text!r} differs from the reference's: component {worst} is "
              f"{vector[worst]!r}, the reference's {want[worst]!r}")
    check(not hc.close_enough(vectors[0], vectors[1], 1e-3),
          "two different texts got the same embedding")
    answer = server.call_json("POST", "/v1/embeddings",
                              {"input": inputs[0], "encoding_format": "base64"})
    raw = base64.b64decode(answer["data"][0]["embedding"])
    decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    check(hc.close_enough(decoded, vectors[0], 1e-6),
          "the base64 embedding decodes to other numbers than the float one")


# ---------------------------------------------------------------------------------------------
# Where generation ends

def prompt_of_length(reference, count):
    """A prompt the reference encodes into exactly count tokens (BOS included): the shortest
    prefix of a long text with that many, found by bisection."""
    text = "Linux is a fortune cookie of a kernel, said the quick brown fox. " * count
    low, high = 0, len(text)
    while low < high:
        middle = (low + high) // 2
        low, high = ((low, middle) if reference.count_tokens(text[:middle]) >= count
                     else (middle + 1, high))
    for end in range(low, low + 8):
        if reference.count_tokens(text[:end]) == count:
            return text[:end]
    fail(f"grader error: no prompt of {count} tokens found")


def stop_prefix_tokens(tokenizer, tokens, stop, previous):
    """How many of tokens are generated before their text first contains stop."""
    for count in range(1, len(tokens) + 1):
        if stop.encode() in tokenizer.decode(tokens[:count], previous):
            return count
    fail(f"grader error: {stop!r} is not in the text of {tokens}")


@test(10, "limits: max_tokens, a full context, stop sequences, a prompt too long", timeout=90)
def limits(m):
    """- max_tokens 5: finish_reason "length", completion_tokens 5, the reference's text.
    - A prompt a few tokens short of the context: generation ends with "length" when the
      context is full, after as many tokens as the reference generates.
    - A stop sequence taken from the middle of the greedy text: the text ends right before
      it, finish_reason "stop", completion_tokens counts the tokens up to the one that
      completed it; streamed, the stop sequence never reaches the client either.
    - A prompt longer than the context: 400 whose message gives its token count and the
      context's size."""
    server, reference, (_, _, header, tokenizer) = boot(m)
    context = header.seq_len
    text, usage, finish = complete(server, PROMPTS[1], 5)
    want = expected(reference, PROMPTS[1], 5)
    check(finish == "length" and usage["completion_tokens"] == 5,
          f"max_tokens 5: finish_reason {finish!r}, usage {usage}")
    check_same("max_tokens 5", text, usage, finish, want)

    for room in range(4, 12):  # a prompt whose continuation fills the context, no BOS first
        long_prompt = prompt_of_length(reference, context - room)
        want = expected(reference, long_prompt, context)
        if want["finish_reason"] == "length":
            break
    check(want["finish_reason"] == "length" and
          len(want["prompt_tokens"]) + len(want["tokens"]) == context,
          f"grader error: no prompt of {context - 11}..{context - 4} tokens fills the "
          f"context: {want}")
    check_same(f"a prompt of {context - room} tokens in a context of {context}",
               *complete(server, long_prompt, context), want)

    want = expected(reference, PROMPTS[2], 32)
    words = re.findall(r"\S{3,}", want["text"])
    check(words, f"grader error: no word to stop at in {want['text']!r}")
    stop = words[len(words) // 2]
    cut = want["text"].index(stop)
    count = stop_prefix_tokens(tokenizer, want["tokens"], stop, want["prompt_tokens"][-1])
    path, body = request(PROMPTS[2], 32, stop=[stop, "\x01never"])
    for what, (text, usage, finish) in (
            ("stop", complete(server, PROMPTS[2], 32, stop=[stop, "\x01never"])),
            ("stop, streamed", streamed_answer(server, path, body, "a streamed stop"))):
        check(text == want["text"][:cut] and finish == "stop",
              f"{what} {stop!r}: text {text!r} ({finish}); expected {want['text'][:cut]!r} "
              f"(the greedy text is {want['text']!r})")
        check(usage["completion_tokens"] == count,
              f"{what} {stop!r}: completion_tokens {usage['completion_tokens']}; the stop "
              f"sequence is complete after {count} tokens")

    too_long = "fortune " * (context + 8)
    count = reference.count_tokens(too_long)
    response = server.call("POST", "/v1/completions", {"prompt": too_long, "max_tokens": 4})
    message = hc.check_error(response, 400, "a prompt longer than the context",
                             mentions=("prompt", str(count), str(context)))
    check(re.search(r"\bcontext\b", message), f"the 400 does not mention the context: {message!r}")
    server.health("after the 400")


def streamed_answer(server, path, body, what):
    """(text, usage, finish_reason) of a streamed answer."""
    events = stream(server, path, body, what)
    text = hc.stream_text(events, what, chat=path.endswith("chat/completions"))
    return text, events[-1]["usage"], events[-1]["choices"][0]["finish_reason"]


# ---------------------------------------------------------------------------------------------
# Streams, and /health while one runs

@test(10, "streams: the reference's text through http.client and curl -N; /health meanwhile",
      timeout=120)
def streaming(m):
    """A chat streamed through http.client and a completion through `curl -N` give the
    reference's text, usage and finish_reason, in more than one event. While a long seeded
    generation streams, /health on new connections answers within 2 s under TCG (0.7 s on
    KVM) each time, and the generation goes on afterwards, ending with the reference's text."""
    server, reference, (_, _, header, _) = boot(m)
    path, body = request(CHAT_MESSAGE, 24, chat=True)
    want = expected(reference, CHAT_MESSAGE, 24, chat=True)
    events = stream(server, path, body, "a streamed chat")
    text = hc.stream_text(events, "a streamed chat", chat=True)
    check_same("a streamed chat", text, events[-1]["usage"],
               events[-1]["choices"][0]["finish_reason"], want)
    check(len(want["tokens"]) < 2 or sum(1 for e in events if
                                            e["choices"][0]["delta"].get("content")) >= 2,
          f"the chat came in {len(events)} events: it was not streamed token by token")

    path, body = request(PROMPTS[1], 20)
    want = expected(reference, PROMPTS[1], 20)
    output = hc.curl(server, ["-N", "--header", "Content-Type: application/json",
                              "--data-binary", json.dumps({**body, "stream": True}),
                              server.url(path)], timeout=60)
    events = hc.parse_sse(output, "curl -N")
    check_same("curl -N", hc.stream_text(events, "curl -N"), events[-1]["usage"],
               events[-1]["choices"][0]["finish_reason"], want)

    health_during_generation(server, reference, header)


def health_during_generation(server, reference, header):
    """Stream a long seeded generation (the seed, of 1..8, whose text is longest) and ask
    /health three times while it runs."""
    prompt = PROMPTS[2]
    max_tokens = header.seq_len - 16
    candidates = [({**SAMPLING, "seed": seed}, expected(reference, prompt, max_tokens,
                                                         **{**SAMPLING, "seed": seed}))
                  for seed in range(1, 9)]
    settings, want = max(candidates, key=lambda candidate: len(candidate[1]["tokens"]))
    path, body = request(prompt, max_tokens, **settings)
    arrivals = []  # (time, line)
    outcome = {}

    def read_stream():
        connection = http.client.HTTPConnection(server.host, server.port,
                                                timeout=server.seconds(120))
        try:
            connection.request("POST", path, json.dumps({**body, "stream": True}),
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            for line in response:
                arrivals.append((time.monotonic(), line))
        except (OSError, http.client.HTTPException) as error:
            outcome["error"] = f"{type(error).__name__}: {error}"
        finally:
            connection.close()

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    deadline = time.monotonic() + server.seconds(30)
    while not arrivals and reader.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    check(arrivals, f"the long stream sent nothing: {outcome.get('error', 'no data')}")
    latencies = []
    for _ in range(3):
        started = time.monotonic()
        server.health("while a generation streams")
        latencies.append(time.monotonic() - started)
    asked = time.monotonic()
    reader.join(timeout=server.seconds(120))
    check(not reader.is_alive(), "the long stream did not end")
    check("error" not in outcome, f"the long stream failed: {outcome.get('error')}")
    limit = server.seconds(2 / 3)
    check(max(latencies) <= limit,
          f"/health took {max(latencies):.2f}s (limit {limit:.1f}s) while a generation ran")
    later = [line for at, line in arrivals if at > asked and line.startswith(b"data: {")]
    check(later, "the generation had ended before /health was asked: the test proves nothing "
                 "(it needs a longer or slower generation)")
    events = hc.parse_sse(b"".join(line for _, line in arrivals), "the long stream")
    check_same("the long stream", hc.stream_text(events, "the long stream"),
               events[-1]["usage"], events[-1]["choices"][0]["finish_reason"], want)


# ---------------------------------------------------------------------------------------------
# Real clients: the openai package and a browser

@test(10, "the openai npm client gets the reference's text, plain and streamed", timeout=120)
def openai_npm_model(m):
    """common/npm/openai_model_check.mjs drives the official `openai` package: a greedy
    completion, a seeded completion and a greedy chat, each plain and streamed, must hand the
    application exactly the reference's text, finish_reason and completion token count."""
    server, reference, _ = boot(m)
    cases = []
    for name, prompt, chat, settings in (("greedy completion", PROMPTS[1], False, {}),
                                         ("seeded completion", PROMPTS[2], False, SAMPLING),
                                         ("greedy chat", CHAT_MESSAGE, True, {})):
        want = expected(reference, prompt, 16, chat, **settings)
        cases.append({"name": name, "chat": chat, "prompt": prompt,
                      "settings": {"max_tokens": 16, "temperature": 0, **settings},
                      "text": want["text"], "completion_tokens": len(want["tokens"]),
                      "finish_reason": want["finish_reason"]})
    report = hc.run_node(server, "openai_model_check.mjs", [server.url("/v1"),
                                                            json.dumps(cases)], timeout=120)
    server.require_running("the openai client")
    failed = [c for c in report["checks"] if not c["ok"]]
    check(not failed, f"{len(failed)} of {len(report['checks'])} openai client checks failed: " +
          "; ".join(f"{c['name']}: {c['error'].splitlines()[0]}" for c in failed))
    check(report["exit_status"] == 0 and len(report["checks"]) == 1 + 2 * len(cases),
          f"the check script ran {len(report['checks'])} checks and exited with status "
          f"{report['exit_status']}")


@test(10, "the chat page in headless Chromium streams the model's reply", timeout=120)
def chat_page(m):
    """GET / in Debian's Chromium (driven by playwright-core): set temperature 0 and 24
    tokens, type a message, click send. data-state goes idle → streaming → done with no page
    error; the transcript grew while streaming and ends with the reply; the page asked
    /v1/chat/completions with stream: true and the message; that request, sent again, streams
    the same reply, which equals the host reference's chat of that message."""
    server, reference, _ = boot(m)
    if not shutil.which("chromium"):
        fail("Chromium is not installed (Debian package chromium; `make deps` installs it)")
    message = "Hello, kernel. " + CHAT_MESSAGE
    report = hc.run_node(server, "chat_page_check.mjs",
                         [server.url("/"), message, "temperature=0", "max-tokens=24"],
                         timeout=120)
    server.require_running("the chat page")
    check(report.get("status") == 200 and "text/html" in (report.get("contentType") or ""),
          f"GET / answered {report.get('status')} {report.get('contentType')!r}")
    check(not report["errors"], f"the page reported errors: {report['errors'][:3]}")
    check(report["done"] and report["states"][:1] == ["idle"] and
          report["states"][-2:] == ["streaming", "done"],
          f"data-state went {report['states']}, not idle → streaming → done")
    check(len(report["requests"]) == 1, f"the page sent {len(report['requests'])} chat "
                                        "requests for one message")
    body = json.loads(report["requests"][0])
    check(body.get("stream") is True and body.get("messages", [{}])[-1] ==
          {"role": "user", "content": message},
          f"the page's request is not a stream of the typed message: {body}")
    events = stream(server, "/v1/chat/completions", body, "the page's request, sent again")
    reply = hc.stream_text(events, "the page's request", chat=True)
    transcript = report["transcript"] or ""
    check(reply and transcript.endswith(reply) and message in transcript,
          f"the transcript {transcript[-300:]!r} does not end with the reply {reply!r}")
    grew = {snapshot for snapshot in report["snapshots"] if message in snapshot}
    check(len(grew) >= 3 or len(expected(reference, message, 24, chat=True)["tokens"]) < 3,
          f"the transcript changed {len(grew)} times while streaming: not token by token")
    if body.get("temperature") == 0 and len(body["messages"]) == 1:
        want = expected(reference, message, body.get("max_tokens", 16), chat=True)
        check(reply == want["text"], f"the page's reply {reply!r} is not the reference's "
                                     f"{want['text']!r}")
    else:
        fail(f"the page did not send temperature 0 as set, so its reply cannot be checked: "
             f"{body}")


# ---------------------------------------------------------------------------------------------
# Other model files

SWAPPED = inference.Checkpoint(dim=48, hidden_dim=136, n_layers=3, n_heads=6, n_kv_heads=2,
                               vocab_size=0, seq_len=80, shared_classifier=False)


@test(10, "another model: random weights, other shape, own classifier = reference", timeout=90)
def swapped_model(m):
    """A checkpoint written now with seeded random weights (seed 8), in a shape unlike the committed
    model's (dim 48, 3 layers, 6 heads sharing 2 kv heads, context 80, a classifier of its
    own), booted as the model.bin module with model=NAME on the command line: the boot lines
    and /v1/models describe it under that name, and greedy and seeded completions, a chat and
    an embedding equal the reference's on the same files. A prompt over its 80 tokens is
    refused."""
    _, tokenizer_path, _, tokenizer = inference.run_model(m.run)
    shape = inference.Checkpoint(**{**SWAPPED.__dict__, "vocab_size": len(tokenizer.pieces)})
    model = m.run.unique_path("random.bin")
    inference.write_random_checkpoint(model, shape, seed=8)
    server = hc.boot_http(m, iso=inference.model_iso(m.run, model, tokenizer_path,
                                                     "model=random-weights"))
    reference = inference.Reference(m.run, model, tokenizer_path)
    check(check_boot_lines(m, shape, tokenizer) == "random-weights",
          f"the cmdline said model=random-weights; the kernel printed {boot_line(m, 'model')!r}")
    check_models(server, shape, "random-weights")
    same_as_reference(server, reference, PROMPTS[1], 20)
    same_as_reference(server, reference, PROMPTS[2], 20, **SAMPLING)
    same_as_reference(server, reference, CHAT_MESSAGE, 12, chat=True)
    vector = server.call_json("POST", "/v1/embeddings", {"input": "Linux"})["data"][0]
    check(hc.close_enough(vector["embedding"], reference.embedding("Linux"), 1e-5),
          "the embedding differs from the reference's")
    response = server.call("POST", "/v1/completions", {"prompt": "fortune " * 90})
    hc.check_error(response, 400, "a prompt over this model's 80 tokens",
                   mentions=("prompt", str(shape.seq_len)))


@test(10, "an int8 checkpoint (llama2.c version 2, Q8_0) = reference", timeout=90)
def int8_model(m):
    """The committed model written as llama2.c's version 2 at test time (export.py --quantize:
    int8 weights in groups of 64, one float scale per group) and booted as model.bin with
    model=int8: the boot lines and /v1/models give the float model's shape and parameter
    count, and greedy and seeded completions, a chat and an embedding equal the host
    reference's on the same file."""
    model, tokenizer_path, header, tokenizer = inference.run_model(m.run)
    int8 = m.run.unique_path("model-q8.bin")
    inference.write_int8_checkpoint(model, int8)
    server = hc.boot_http(m, iso=inference.model_iso(m.run, int8, tokenizer_path, "model=int8"))
    reference = inference.Reference(m.run, int8, tokenizer_path)
    check(check_boot_lines(m, header, tokenizer) == "int8",
          f"the cmdline said model=int8; the kernel printed {boot_line(m, 'model')!r}")
    check_models(server, header, "int8")
    same_as_reference(server, reference, PROMPTS[1], 24)
    same_as_reference(server, reference, PROMPTS[2], 24, **SAMPLING)
    same_as_reference(server, reference, CHAT_MESSAGE, 16, chat=True)
    vector = server.call_json("POST", "/v1/embeddings", {"input": "Linux"})["data"][0]
    check(hc.close_enough(vector["embedding"], reference.embedding("Linux"), 1e-5),
          "the int8 model's embedding differs from the reference's")


@test(5, "a malformed model file: a clear `model:` line, then a panic", timeout=90)
def bad_model(m):
    """The committed checkpoint cut short by 4 bytes, then one whose header claims 0 layers,
    then an int8 (version 2) one whose group size is 3: each boot prints `model: ...: <why>`
    naming the problem and panics (exit status 3) instead of reading past the module."""
    model, tokenizer_path, header, _ = inference.run_model(m.run)
    data = model.read_bytes()
    short = m.run.unique_path("short.bin")
    short.write_bytes(data[:-4])
    zero = m.run.unique_path("zero-layers.bin")
    zero.write_bytes(data[:8] + struct.pack("<i", 0) + data[12:])
    int8 = m.run.unique_path("model-q8.bin")
    inference.write_int8_checkpoint(model, int8)
    group3 = m.run.unique_path("group-3.bin")
    group3.write_bytes(int8.read_bytes()[:37] + struct.pack("<i", 3) + int8.read_bytes()[41:])
    for what, path, words in (("a checkpoint 4 bytes short", short,
                               r"size|short|bytes|truncat|end|small"),
                              ("a checkpoint with 0 layers", zero, r"layer"),
                              ("an int8 checkpoint with groups of 3", group3, r"group")):
        m.boot(iso=inference.model_iso(m.run, path, tokenizer_path))
        line = m.expect(r"^model: .*: .+$", timeout=30)[0]
        check(re.search(words, line, re.IGNORECASE),
              f"{what}: the kernel said {line!r}, which does not name the problem")
        m.expect_exit(3, timeout=30)
