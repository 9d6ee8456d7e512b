#!/usr/bin/python3
"""Benchmark inference: the kernel in QEMU against the host reference, same model, same run.

    bench_infer.py [STEP] [--prompt TEXT] [--tokens N] [--runs N] [--model FILE --tokenizer FILE]

STEP is a step folder with the inference engine (default: the last step that has
transformer.c); the model is the one its MANIFEST names (`modules:`) unless --model and
--tokenizer name others. Both sides generate the same text from the same prompt: greedily, or,
when the greedy text ends early, sampled with the first seed whose text runs to --tokens:

- the host reference (build/STEP/reference: the same engine source, the kernel's compiler
  flags, one thread) with --bench, which times itself;
- the kernel under KVM when qemu.py finds it usable (ACCEL=kvm forces it, even where booting
  under it is very slow, as under PVM), else under TCG, which the report says: a TCG figure
  measures QEMU's emulation, not the kernel.
  The kernel is timed from the host over HTTP: time to first token is a request for one
  token (prompt, first token, and one round trip through QEMU's user network); tokens per
  second is the extra tokens of a long request over the extra time it took, so the prompt
  and the round trip cancel out.

Each figure is the best of --runs. It prints the machine, the date, the figures and the
kernel/host ratios. It never fails on speed, only when a measurement could not be made (a
build failed, the kernel did not boot, or the kernel's text differs from the reference's,
which would mean the two did different work).
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import qemu  # noqa: E402  (common/qemu.py)
import steps  # noqa: E402  (common/steps.py)

REPO = Path(__file__).resolve().parent.parent
PROMPT = "The kernel of an operating system is"
BOOT_TIMEOUT = {"kvm": 900, "tcg": 120}  # seconds: under PVM, GRUB loads modules very slowly


class BenchError(Exception):
    """A measurement could not be made."""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", help="step folder, e.g. 08-inference")
    parser.add_argument("--prompt", default=PROMPT, help=f"default: {PROMPT!r}")
    parser.add_argument("--tokens", type=int, default=128, help="tokens to generate (128)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the best counts")
    parser.add_argument("--model", type=Path, help="a llama2.c checkpoint (with --tokenizer)")
    parser.add_argument("--tokenizer", type=Path, help="its tokenizer.bin")
    args = parser.parse_args()
    if (args.model is None) != (args.tokenizer is None):
        parser.error("--model and --tokenizer go together")
    return args


def last_inference_step():
    found = sorted(path.name for path in (REPO / "steps").iterdir()
                   if (path / "transformer.c").exists())
    if not found:
        raise BenchError("no step has the inference engine (transformer.c)")
    return found[-1]


def manifest_model(step):
    fields, _ = steps.read_manifest(REPO / "steps" / step)
    files = [REPO / name for name in fields.get("modules", "").split()]
    model = [f for f in files if f.name == "model.bin"]
    tokenizer = [f for f in files if f.name == "tokenizer.bin"]
    if not model or not tokenizer:
        raise BenchError(f"steps/{step}/MANIFEST names no model.bin and tokenizer.bin modules")
    return model[0], tokenizer[0]


def make(*arguments):
    result = subprocess.run(["make", "-s", *arguments], cwd=REPO, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise BenchError(f"make {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")


def build(step, model, tokenizer, folder):
    """The host reference, and an ISO of the kernel loading these model files."""
    out = f"build/{step}"
    make("-f", "common/reference/reference.mk", f"STEP_DIR=steps/{step}", f"OUT={out}")
    make("-f", "common/kernel.mk", f"STEP_DIR=steps/{step}", f"OUT={out}", "kernel")
    for name, source in (("model.bin", model), ("tokenizer.bin", tokenizer)):
        (folder / name).symlink_to(source.resolve())
    iso = folder / "bench.iso"
    result = subprocess.run(["sh", "common/mkiso.sh", f"{out}/kernel.elf", str(iso), "",
                             str(folder / "model.bin"), str(folder / "tokenizer.bin")],
                            cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"mkiso.sh failed: {result.stderr.strip()}")
    return REPO / out / "reference", iso


# ---------------------------------------------------------------------------------------------
# The host reference

def reference_run(binary, model, tokenizer, prompt, tokens, bench, seed=0):
    argv = [str(binary), str(model), str(tokenizer), "--prompt", prompt, "--steps", str(tokens),
            *sampling_options(seed)]
    result = subprocess.run(argv + (["--bench"] if bench else []), capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        raise BenchError(f"the reference failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def sampling_options(seed):
    """Seed 0: greedy. Else sampling at temperature 0.8, top_p 0.9 with that seed."""
    return ["--temperature", "0.8", "--top-p", "0.9", "--seed", str(seed)] if seed else []


def long_generation_seed(binary, model, tokenizer, prompt, tokens):
    """A seed (0 meaning greedy) whose text runs to `tokens` rather than ending early: the
    model says a fortune is over with BOS, and a short generation measures little."""
    for seed in range(0, 33):
        if len(reference_run(binary, model, tokenizer, prompt, tokens, False,
                             seed)["tokens"]) == tokens:
            return seed
    raise BenchError(f"no seed of 0..32 makes {tokens} tokens from {prompt!r}")


def measure_host(binary, model, tokenizer, prompt, tokens, runs, seed):
    results = [reference_run(binary, model, tokenizer, prompt, tokens, True, seed)
               for _ in range(runs)]
    return {"tokens_per_second": max(r["tokens_per_second"] for r in results),
            "ttft_ms": min(r["time_to_first_token_ms"] for r in results),
            "generated": results[0]["generated"], "isa": results[0].get("isa", "?")}


# ---------------------------------------------------------------------------------------------
# The kernel

def choose_accel():
    """(accelerator, how the report names it): KVM when qemu.py finds it usable, else TCG,
    saying why, since a TCG figure measures QEMU's emulation rather than the kernel."""
    accel = qemu.choose_accel()
    if accel == "kvm":
        return accel, "KVM"
    return accel, (f"TCG ({qemu.describe_accel(accel).removeprefix('qemu: ')}): the kernel's "
                   "figures measure QEMU's emulation, not the kernel")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def boot(iso, accel, memory):
    """QEMU running the kernel, forwarding a port to its HTTP server; (process, port, lines)."""
    port = free_port()
    argv = qemu.build_argv(iso, memory=memory, accel=accel, serial="stdio", extra_args=[
        "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:80",
        "-device", "e1000,netdev=net0"])
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    ready = threading.Event()
    lines = []

    def read_serial():
        for raw in process.stdout:
            lines.append(raw.decode(errors="replace").rstrip("\r\n"))
            if lines[-1] == "ready":
                ready.set()
    threading.Thread(target=read_serial, daemon=True).start()
    deadline = time.monotonic() + BOOT_TIMEOUT[accel]
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise BenchError("the kernel did not get ready; last serial lines:\n" +
                             "\n".join(lines[-5:]))
    return process, port, lines


def stop(process):
    if process.poll() is None:
        process.kill()
    process.wait()


def complete(port, prompt, max_tokens, seed):
    """(seconds, answer) of one completion, not streamed, with sampling_options(seed)."""
    settings = {"temperature": 0.8, "top_p": 0.9, "seed": seed} if seed else {"temperature": 0}
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, **settings})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        started = time.perf_counter()
        connection.request("POST", "/v1/completions", body,
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    if response.status != 200:
        raise BenchError(f"the kernel answered {response.status}: {data[:200]!r}")
    return seconds, json.loads(data)


def measure_kernel(port, prompt, tokens, runs, seed, expected_text):
    complete(port, prompt, tokens, seed)  # warm-up: TCG translates hot paths on first use
    firsts, longs = [], []
    for _ in range(runs):
        firsts.append(complete(port, prompt, 1, seed)[0])
        seconds, answer = complete(port, prompt, tokens, seed)
        longs.append(seconds)
        text = answer["choices"][0]["text"]
        if text != expected_text:
            raise BenchError(f"the kernel wrote {text!r}, the reference {expected_text!r}: "
                             "they did not do the same work")
    generated = answer["usage"]["completion_tokens"]
    extra = min(longs) - min(firsts)
    return {"tokens_per_second": (generated - 1) / extra if generated > 1 and extra > 0 else 0,
            "ttft_ms": min(firsts) * 1e3, "generated": generated}


# ---------------------------------------------------------------------------------------------
# The report

def machine_lines(accel_label):
    with open("/proc/cpuinfo") as info:
        models = re.findall(r"^model name\s*:\s*(.+)$", info.read(), re.MULTILINE)
    cpu = models[0] if models else platform.processor() or "unknown CPU"
    version = subprocess.run([qemu.QEMU, "--version"], capture_output=True,
                             text=True).stdout.splitlines()
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    return [f"date:     {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
            f"machine:  {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
            f"compiler: {gcc.splitlines()[0] if gcc else 'gcc'} (both sides, one thread)",
            f"qemu:     {version[0] if version else 'unknown'}; kernel under {accel_label}"]


def main():
    args = parse_args()
    step = args.step or last_inference_step()
    model, tokenizer = (args.model, args.tokenizer) if args.model else manifest_model(step)
    accel, accel_label = choose_accel()
    with tempfile.TemporaryDirectory(prefix="ringzero-bench-") as folder:
        reference, iso = build(step, model, tokenizer, Path(folder))
        # The kernel refuses max_tokens over the context; generate what fits.
        context = struct.unpack("<7i", model.read_bytes()[:28])[6]
        prompt_tokens = len(reference_run(reference, model, tokenizer, args.prompt, 0,
                                          False)["prompt_tokens"])
        tokens = min(args.tokens, context - prompt_tokens)
        seed = long_generation_seed(reference, model, tokenizer, args.prompt, tokens)
        want = reference_run(reference, model, tokenizer, args.prompt, tokens, False, seed)
        host = measure_host(reference, model, tokenizer, args.prompt, tokens, args.runs, seed)
        memory = max(qemu.memory_for([model, tokenizer]), "256M",
                     key=lambda size: int(size[:-1]))
        process, port, lines = boot(iso, accel, memory)
        try:
            kernel = measure_kernel(port, args.prompt, tokens, args.runs, seed, want["text"])
        finally:
            stop(process)
    how = f"temperature 0.8, top_p 0.9, seed {seed}" if seed else "greedy"
    print(f"Inference benchmark: {how}, prompt {args.prompt!r} "
          f"({prompt_tokens} tokens), up to {tokens} tokens, best of "
          f"{args.runs}")
    for line in machine_lines(accel_label):
        print(line)
    model_line = next((line for line in lines if line.startswith("model: ")), "model: ?")
    cpu_line = next((line for line in lines if line.startswith("cpu: ")), "cpu: ?")
    print(f"model:    {model.relative_to(REPO) if model.is_relative_to(REPO) else model}: "
          f"{model_line[len('model: '):]}")
    print(f"vectors:  host reference {host['isa']}; kernel `{cpu_line}`\n")
    print(f"  {'':28} {'tokens/s':>10} {'first token ms':>15} {'generated':>10}")
    for label, figures in (("host reference", host), (f"kernel ({accel.upper()})", kernel)):
        print(f"  {label:28} {figures['tokens_per_second']:>10.1f} {figures['ttft_ms']:>15.2f} "
              f"{figures['generated']:>10}")
    print()
    ratio = kernel["tokens_per_second"] / host["tokens_per_second"]
    print(f"kernel/host tokens per second: {ratio:.2f} (goal: at least 1.00)")
    print(f"kernel/host time to first token: {kernel['ttft_ms'] / host['ttft_ms']:.2f} "
          "(the kernel's includes one HTTP round trip through QEMU)")
    if accel == "tcg":
        print("note: measured under TCG; the kernel/host ratio says little about the kernel")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        sys.exit(f"bench_infer: {error}")
